from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import LockError
from harness.locking import Journal, RepoLock

HOLDER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from harness.locking import RepoLock
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


def test_journal_round_trip(git_dir: Path) -> None:
    journal = Journal(git_dir)
    assert journal.load() is None
    with pytest.raises(RuntimeError, match=r"before Journal\.begin"):
        journal.update(stage="agent")
    journal.begin(item="ITEM-1", attempt=2, base="abc123", evidence_dir=Path("plans/x"))
    journal.update(stage="agent", agent_pgid=4321)
    journal.update(stage="proof", red_exit=1)
    record = journal.load()
    assert record is not None
    keys = ("item", "attempt", "base", "evidence_dir", "stage", "agent_pgid", "red_exit")
    assert {k: record[k] for k in keys} == {
        "item": "ITEM-1", "attempt": 2, "base": "abc123", "evidence_dir": "plans/x",
        "stage": "proof", "agent_pgid": 4321, "red_exit": 1,
    }
    assert record["pid"] == os.getpid() and record["started"].endswith("Z")
    journal.clear()
    assert journal.load() is None and not journal.path.exists()
    journal.clear()


def test_corrupt_journal_is_a_clear_error(git_dir: Path) -> None:
    journal = Journal(git_dir)
    journal.path.parent.mkdir(parents=True)
    journal.path.write_text("{not json")
    with pytest.raises(LockError, match=r"not valid JSON.*delete it"):
        journal.load()


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from harness.locking import Journal
    journal = Journal(Path(sys.argv[1]))
    journal.begin(item="ITEM-9", attempt=1, base="f00", payload="x" * 200_000)
    print("begun", flush=True)
    i = 0
    while True:
        i += 1
        journal.update(stage=f"step-{i}", payload=str(i) * 200_000)
    """
)


def test_journal_survives_kill_9_of_the_writer(git_dir: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(git_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "begun"
        journal = Journal(git_dir)
        deadline = time.monotonic() + 10
        while (journal.load() or {}).get("stage", "begin") == "begin" and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    record = json.loads(journal.path.read_text())
    assert record["item"] == "ITEM-9" and record["stage"].startswith("step-")
    step = int(record["stage"].removeprefix("step-"))
    assert step >= 1 and record["payload"] == str(step) * 200_000


def test_a_journal_may_have_a_name_of_its_own(git_dir: Path) -> None:
    main, worker = Journal(git_dir), Journal(git_dir, "workers/CALC-001/journal.json")
    worker.begin(item="CALC-001", attempt=1)
    assert worker.path == git_dir / "harness" / "workers" / "CALC-001" / "journal.json"
    assert main.load() is None and worker.load()["item"] == "CALC-001"
    worker.clear()
    assert worker.load() is None
