"""The journal: the current attempt's facts, rewritten atomically at each step, so that a harness restarted
after kill -9 knows what was running and can recover it (harness.durability.recovery)."""
from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

from harness.atomic import atomic_write_json
from harness.clock import iso, utc_now
from harness.durability.lock import STATE_DIR
from harness.errors import LockError

JOURNAL_NAME = "journal.json"
CRASH_AT_ENV = "HARNESS_CRASH_AT"


class Journal:
    """The current iteration's facts, `<git-dir>/harness/journal.json`, rewritten atomically on each step.

    A harness killed with kill -9 leaves it behind; the next start reads it (`load`) to clean up:
    end the recorded agent process group, put back what was set aside, save or discard the work, then
    `clear`. `keep_dir` holds the copies the journal names (harness.durability.set_aside).
    """

    def __init__(self, git_dir: Path, name: str = JOURNAL_NAME) -> None:
        """`name`: the journal's path under `<git-dir>/harness/` (a parallel worker keeps its own)."""
        self.path = Path(git_dir) / STATE_DIR / name
        self.keep_dir = self.path.with_suffix(".kept")

    def begin(self, **facts: Any) -> dict[str, Any]:
        """Start a new iteration's journal (item, attempt, base, evidence_dir, started, ...)."""
        shutil.rmtree(self.keep_dir, ignore_errors=True)  # copies no journal names: a crash before begin
        now = iso(utc_now())
        record = {"started": now, "stage": "begin", **facts, "pid": os.getpid(), "updated": now}
        atomic_write_json(self.path, record)
        return record

    def update(self, stage: str | None = None, agent_pgid: int | None = None, **facts: Any) -> dict[str, Any]:
        """Merge new facts into the journal; `stage` names the step now running."""
        record = self.load()
        if record is None:
            raise RuntimeError(f"Journal.update before Journal.begin: {self.path} does not exist")
        record.update(facts)
        if stage is not None:
            record["stage"] = stage
        if agent_pgid is not None:
            record["agent_pgid"] = agent_pgid
        record["updated"] = iso(utc_now())
        atomic_write_json(self.path, record)
        if stage is not None and os.environ.get(CRASH_AT_ENV) == stage:
            # Fault injection for the crash-safety tests: a real kill -9 of this harness at this stage.
            os.kill(os.getpid(), signal.SIGKILL)
        return record

    def load(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise LockError(
                f"{self.path} is not valid JSON ({exc}); inspect it, then delete it to start afresh"
            ) from exc
        if not isinstance(record, dict):
            raise LockError(f"{self.path} does not hold a JSON object; inspect it, then delete it")
        return record

    def clear(self) -> None:
        """Forget the attempt, then its copies (in this order: a journal never names a missing copy)."""
        self.path.unlink(missing_ok=True)
        shutil.rmtree(self.keep_dir, ignore_errors=True)
