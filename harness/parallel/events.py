"""What `harness loop` prints about its workers: one line per worker event, a summary table at the end, and
with `--json` the same as JSON lines on stdout (one object per line, nothing else on stdout).

Events: `started`, `proven`, `merging`, `merged`, `failed` (each with the worker and the item id); `note`
(other news: an item blocked, a lease held elsewhere, a push); `summary` (the table's rows); `stopped`
(why the loop ended and its exit code).
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.atomic import to_jsonable
from harness.clock import iso, utc_now
from harness.proof.stage_records import AgentTurnDetail, StageResult

MERGE_STAGES = ("merge", "merged-gates")


@dataclass(frozen=True)
class SummaryRow:
    """One attempt of the run: who ran it, where its time went, how its merge ended."""

    item: str
    worker: str
    attempt: int
    agent_s: float
    proof_s: float
    merge_s: float
    outcome: str
    reason: str


def stage_times(stages: Sequence[StageResult]) -> tuple[float, float, float]:
    """(agent, proof, merge) seconds: the agent's turns, the worker's other stages, the merge stages."""
    agent = sum(s.duration_s for s in stages if isinstance(s.detail, AgentTurnDetail))
    merge = sum(s.duration_s for s in stages if s.name in MERGE_STAGES)
    proof = sum(s.duration_s for s in stages) - agent - merge
    return agent, proof, merge


class Console:
    """Where events go: timestamped lines for people, or JSON lines for machines (`as_json`)."""

    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json

    def _json(self, record: dict[str, Any]) -> None:
        print(json.dumps(to_jsonable({"time": iso(utc_now()), **record}), sort_keys=True), flush=True)

    def _line(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)  # as harness.commands._console.say

    def event(self, kind: str, worker: str, item: str, text: str, **data: Any) -> None:
        if self.as_json:
            self._json({"event": kind, "worker": worker, "item": item, "text": text, **data})
        else:
            self._line(f"{worker} [{item}] {kind}: {text}")

    def note(self, text: str) -> None:
        if self.as_json:
            self._json({"event": "note", "text": text})
        else:
            self._line(text)

    def summary(self, rows: Sequence[SummaryRow]) -> None:
        if self.as_json:
            self._json({"event": "summary", "rows": [asdict(r) for r in rows]})
            return
        if not rows:
            return
        print()
        print(table(rows))

    def stopped(self, reason: str, code: int) -> None:
        if self.as_json:
            self._json({"event": "stopped", "reason": reason, "exit_code": code})
        else:
            print(f"loop stopped: {reason}", file=sys.stderr if code else sys.stdout)


def table(rows: Sequence[SummaryRow]) -> str:
    lines = [f"{'item':<24} {'worker':<6} {'#':>3} {'agent':>8} {'proof':>8} {'merge':>8}  outcome"]
    lines += [f"{r.item:<24} {r.worker:<6} {r.attempt:>3} {r.agent_s:>7.1f}s {r.proof_s:>7.1f}s "
              f"{r.merge_s:>7.1f}s  {r.outcome}" for r in rows]
    return "\n".join(lines)
