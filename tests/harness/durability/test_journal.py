"""The journal: atomic rewrites, a clear error when corrupt, and kill -9 of its writer loses nothing."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from harness.durability.journal import Journal
from harness.errors import LockError


@pytest.fixture
def git_dir(tmp_path: Path) -> Path:
    d = tmp_path / ".git"
    d.mkdir()
    return d


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
    from harness.durability.journal import Journal
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
