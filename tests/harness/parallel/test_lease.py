"""Leases on items: compare-and-swap refs naming their holder; who is alive."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

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
    assert lease.ref == "refs/harness/lease/CALC-001" and lease.remote is None
    with pytest.raises(leases.LeaseRefused, match=rf"\[CALC-001\] is leased by pid {me.pid} on {me.host}"):
        leases.acquire(repo, "CALC-001", me, identity=IDENTITY)  # held: not taken twice
    assert leases.read(repo, "CALC-001") == lease
    assert [held.item_id for held in leases.all_leases(repo)] == ["CALC-001"]
    message = git(Path(repo.working_tree_dir), "log", "-1", "--format=%B", lease.ref)
    assert f"Harness-Lease-Pid: {me.pid}" in message and f"Harness-Lease-Host: {me.host}" in message
    assert leases.release(repo, lease) is True
    assert leases.read(repo, "CALC-001") is None and leases.release(repo, lease) is False
    assert leases.acquire(repo, "CALC-001", me, identity=IDENTITY).item_id == "CALC-001"


def test_a_holder_is_alive_only_while_its_own_process_runs() -> None:
    me = Holder.this_process()
    assert me.alive() is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert replace(me, pid=child.pid).alive() is False  # exited
    assert replace(me, started="2000-01-01T00:00:00Z").alive() is False  # the pid was reused by another process
    assert replace(me, host=me.host + "-elsewhere").alive() is None  # another machine: unknown from here
    assert "pid" in me.describe() and me.host in me.describe()


def test_with_a_remote_the_lease_is_taken_there_too_and_a_refusal_gives_the_local_one_back(
        make_repo, tmp_path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    here, there = gitops.open_repo(make_repo()), gitops.open_repo(make_repo())
    me = Holder.this_process()
    other = replace(me, host="other-machine", pid=4242)
    theirs = leases.acquire(there, "CALC-001", other, identity=IDENTITY, remote=str(remote))
    assert theirs.remote == str(remote)
    assert git(tmp_path, "--git-dir", str(remote), "rev-parse", "refs/harness/lease/CALC-001").strip() == theirs.sha
    with pytest.raises(leases.LeaseRefused, match=r"\[CALC-001\] is leased on .* by another harness"):
        leases.acquire(here, "CALC-001", me, identity=IDENTITY, remote=str(remote))
    assert leases.read(here, "CALC-001") is None  # the local half was given back
    mine = leases.acquire(here, "CALC-002", me, identity=IDENTITY, remote=str(remote))
    stale = replace(theirs, sha=mine.sha)  # a lease on CALC-001 that the remote does not hold
    assert leases.release_remote(here, stale, str(remote)) is None  # refused there: the holder's stays
    assert git(tmp_path, "--git-dir", str(remote), "rev-parse", "refs/harness/lease/CALC-001").strip() == theirs.sha
    assert leases.release(here, mine) and leases.release_remote(here, mine, str(remote)) is None
    listed = git(tmp_path, "--git-dir", str(remote), "for-each-ref", "--format=%(refname)", "refs/harness/")
    assert listed.split() == ["refs/harness/lease/CALC-001"]
    with pytest.raises(leases.LeaseRefused, match="could not be taken on .*unreachable.*check the remote"):
        leases.acquire(here, "CALC-003", me, identity=IDENTITY, remote=str(tmp_path / "unreachable.git"))
    assert leases.read(here, "CALC-003") is None
