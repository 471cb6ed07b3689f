"""Leases on items: compare-and-swap refs naming their holder; who is alive."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from harness import gitops
from harness.parallel import lease as leases
from harness.parallel.lease import Holder
from tests.conftest import git

IDENTITY = ("Harness Test", "harness@example.invalid")


def test_a_lease_is_taken_once_names_its_holder_and_is_given_back(make_repo) -> None:
    repo = gitops.open_repo(make_repo())
    me = Holder.this_process()
    assert me.host == socket.gethostname() and me.pid == os.getpid() and me.started.startswith("20")
    lease = leases.acquire(repo, "CALC-001", me, identity=IDENTITY)
    assert lease is not None and lease.ref == "refs/harness/lease/CALC-001"
    assert leases.acquire(repo, "CALC-001", me, identity=IDENTITY) is None  # held: not taken twice
    assert leases.read(repo, "CALC-001") == lease
    assert [held.item_id for held in leases.all_leases(repo)] == ["CALC-001"]
    message = git(Path(repo.working_tree_dir), "log", "-1", "--format=%B", lease.ref)
    assert f"Harness-Lease-Pid: {me.pid}" in message and f"Harness-Lease-Host: {me.host}" in message
    assert leases.release(repo, lease) is True
    assert leases.read(repo, "CALC-001") is None and leases.release(repo, lease) is False
    assert leases.acquire(repo, "CALC-001", me, identity=IDENTITY) is not None


def test_a_holder_is_alive_only_while_its_own_process_runs() -> None:
    me = Holder.this_process()
    assert me.alive() is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert replace(me, pid=child.pid).alive() is False  # exited
    assert replace(me, started="2000-01-01T00:00:00Z").alive() is False  # the pid was reused by another process
    assert replace(me, host=me.host + "-elsewhere").alive() is None  # another machine: unknown from here
    assert "pid" in me.describe() and me.host in me.describe()
