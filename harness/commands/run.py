"""`harness run [ITEM] --no-agent`: prove and record the change that is in the working tree."""
from __future__ import annotations

from pathlib import Path

from harness.commands._shared import print_result, repo_lock
from harness.errors import HarnessError, LedgerError, NothingActionable
from harness.gitops import commit_paths, head_sha, working_changes
from harness.iteration import IterationRequest, execute
from harness.ledger import Ledger, ensure_plain_names, load_ledger, with_status, write_ledger_atomic
from harness.selection import explain, select_next
from harness.workspace import Workspace, open_workspace


def block_exhausted(ws: Workspace, ledger: Ledger, to_block: tuple[tuple[str, str], ...]) -> Ledger:
    """Mark items whose last max_attempts attempts all failed as blocked (with the reason) and commit that."""
    text = ledger.text
    for item_id, reason in to_block:
        text = with_status(text, item_id, "blocked", reason, path=ws.config.ledger)
        print(f"blocked [{item_id}]: {reason}")
    new = write_ledger_atomic(ws.ledger_path, text)
    ids = ", ".join(item_id for item_id, _ in to_block)
    commit_paths(ws.repo, [ws.config.ledger], f"harness: block {ids} after repeated failed attempts",
                 identity=ws.config.commit.identity,
                 trailers=[("Harness-Item", item_id) for item_id, _ in to_block])
    return new


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
            if selection.to_block:
                ledger = block_exhausted(ws, ledger, selection.to_block)
            if selection.item is None:
                raise NothingActionable(f"nothing actionable in {ws.config.ledger}: {selection.reason}")
            item = selection.item
            print(f"selected [{item.id}] {item.title}: {selection.reason}")
        ensure_plain_names(item)
        if not working_changes(ws.repo):
            raise HarnessError("the working tree holds no change to prove; make the change (test first) "
                               "and run again, or use `harness verify --base REV` for committed work")
        request = IterationRequest(root=ws.root, config=ws.config, item=item, base=head_sha(ws.repo),
                                   keep_open=keep_open, ledger=ledger)
        result = execute(request, ws.repo)
    print_result(result)
    return 0 if result.succeeded else 1
