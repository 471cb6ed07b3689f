"""`harness run [ITEM] --no-agent`: prove and record the change that is in the working tree."""
from __future__ import annotations

from pathlib import Path

from harness.commands._shared import print_result, repo_lock
from harness.errors import HarnessError, LedgerError, NothingActionable
from harness.gitops import head_sha, working_changes
from harness.iteration import IterationRequest, execute
from harness.ledger import ensure_plain_names, load_ledger
from harness.selection import explain, select_next
from harness.workspace import open_workspace


def run(*, repo: Path, item_id: str | None, no_agent: bool = True, keep_open: bool = False) -> int:
    if not no_agent:
        raise HarnessError("this harness runs no agent yet: make the change in the working tree, then "
                           "`harness run --no-agent [ITEM]` proves and records it")
    ws = open_workspace(repo)
    with repo_lock(ws, "harness run"):
        ledger = load_ledger(ws.ledger_path)
        if item_id:
            item = ledger.get(item_id)
            actionable, why = explain(ledger, item.id, max_attempts=ws.config.max_attempts)
            if not actionable:
                raise LedgerError(f"item {item.id} is not actionable: {why}")
        else:
            selection = select_next(ledger, max_attempts=ws.config.max_attempts)
            if selection.item is None:
                raise NothingActionable(f"nothing actionable in {ws.config.ledger}: {selection.reason}")
            item = selection.item
            print(f"selected [{item.id}] {item.title}: {selection.reason}")
        ensure_plain_names(item)
        if not working_changes(ws.repo):
            raise HarnessError("the working tree holds no change to prove; make the change (test first) "
                               "and run again, or use `harness verify --base REV` for committed work")
        request = IterationRequest(root=ws.root, config=ws.config, item=item, base=head_sha(ws.repo),
                                   keep_open=keep_open)
        result = execute(request, ws.repo)
    print_result(result)
    return 0 if result.succeeded else 1
