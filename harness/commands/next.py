"""`harness next`: which item runs next and why (and why the ones before it do not).

It takes the repository lock like the commands that run attempts, so an attempt left behind by a harness
that was killed is recovered (recorded as ABORTED, its work saved) and reported before the answer (a
pending push is left to the commands that run attempts: it may re-prove commits). When
another harness holds the lock, the answer is read without it: it says so, and that it may change when the
other harness finishes."""
from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path

from harness.commands._shared import repo_lock
from harness.errors import ExitCode, RepositoryBusy
from harness.ledger.selection import select_next
from harness.workspace import Workspace, open_workspace


def next_item(*, repo: Path, as_json: bool = False) -> int:
    ws = open_workspace(repo)
    with ExitStack() as stack:
        try:
            stack.enter_context(repo_lock(ws, "harness next", retry_push=False))
            busy = None
        except RepositoryBusy as exc:
            busy = f"{exc}; this answer was read while that harness runs and may change when it finishes"
            print(f"harness: {busy}", file=sys.stderr)
        return _answer(ws, as_json=as_json, busy=busy)


def _answer(ws: Workspace, *, as_json: bool, busy: str | None) -> int:
    ledger = ws.load_ledger()
    selection = select_next(ledger, max_attempts=ws.config.max_attempts)
    item = selection.item
    if as_json:
        print(json.dumps({
            "id": item.id if item else None,
            "title": item.title if item else None,
            "reason": selection.reason,
            "passed_over": [{"id": i, "why": why} for i, why in selection.passed_over],
            "to_block": [{"id": i, "why": why} for i, why in selection.to_block],
            "another_harness": busy,
        }, indent=2))
    else:
        if item:
            print(f"next: [{item.id}] {item.title}")
            print(f"  why: {selection.reason}")
        else:
            print(f"nothing actionable: {selection.reason}")
        if selection.passed_over:
            print("  passed over:")
            for item_id, why in selection.passed_over:
                print(f"    - {item_id}: {why}")
        for item_id, why in selection.to_block:
            print(f"  will be blocked at the next run: {item_id} ({why})")
    return ExitCode.OK if item else ExitCode.NOTHING_ACTIONABLE
