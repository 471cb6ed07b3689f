"""`harness next`: which item runs next and why (and why the ones before it do not)."""
from __future__ import annotations

import json
from pathlib import Path

from harness.errors import ExitCode
from harness.ledger.selection import select_next
from harness.workspace import open_workspace


def next_item(*, repo: Path, as_json: bool = False) -> int:
    ws = open_workspace(repo)
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
