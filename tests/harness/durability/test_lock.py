from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.durability.lock import RepoLock
from harness.errors import LockError

HOLDER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from harness.durability.lock import RepoLock
    with RepoLock(Path(sys.argv[1]), command="harness loop") as lock:
        print(json.dumps(lock.took_over_from), flush=True)
        sys.stdin.readline()  # hold until the test closes stdin, then release normally
    """
)


@pytest.fixture
def git_dir(tmp_path: Path) -> Path:
    d = tmp_path / ".git"
    d.mkdir()
    return d


@pytest.fixture
def holder(git_dir: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(git_dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "null"
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def test_second_process_gets_lock_error_naming_holder(git_dir: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(LockError) as info, RepoLock(git_dir):
        pytest.fail("the lock must not be granted while another process holds it")
    message = str(info.value)
    assert f"pid {holder.pid} on host {socket.gethostname()}" in message
    assert "`harness loop`" in message and "started 20" in message
    assert "wait for it to finish or stop it" in message


def test_killed_holder_is_taken_over(git_dir: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with RepoLock(git_dir, command="harness run") as lock:
        assert lock.took_over_from is not None
        assert lock.took_over_from["pid"] == holder.pid and lock.took_over_from["command"] == "harness loop"
        on_disk = json.loads((git_dir / "harness" / "lock").read_text())
        assert on_disk["pid"] == os.getpid() and on_disk["command"] == "harness run"
        assert on_disk["host"] == socket.gethostname() and on_disk["started"].endswith("Z")


def test_clean_release_is_not_a_takeover_and_file_stays(git_dir: Path, holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()
    assert holder.wait(timeout=10) == 0
    with RepoLock(git_dir) as lock:
        assert lock.took_over_from is None
    assert "released" in json.loads((git_dir / "harness" / "lock").read_text())
    # Released in-process too: it can be taken again, but never twice at once.
    with RepoLock(git_dir), pytest.raises(LockError, match=f"pid {os.getpid()}"), RepoLock(git_dir):
        pass


def test_child_processes_do_not_inherit_the_lock(git_dir: Path) -> None:
    with RepoLock(git_dir):
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with RepoLock(git_dir) as lock:  # the child still runs, yet the lock is free
            assert lock.took_over_from is None
    finally:
        child.kill()
        child.wait()
