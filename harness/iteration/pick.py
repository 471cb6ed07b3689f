"""One iteration as `harness run` and `harness loop` start it: pick the item, check the tree, execute, push."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from harness.config import judging_settings
from harness.durability.push import PushResult, push_branch
from harness.errors import HarnessError, LedgerError, NothingActionable
from harness.gitops import commit_paths, head_sha, working_changes
from harness.iteration import IterationRequest, IterationResult, execute
from harness.ledger import Item, Ledger, ensure_plain_names, with_status, write_ledger_atomic
from harness.ledger.selection import explain, select_next
from harness.proof.changes import work_to_commit
from harness.workspace import Workspace


def block_exhausted(ws: Workspace, ledger: Ledger, to_block: tuple[tuple[str, str], ...],
                    progress: Callable[[str], None] = print) -> Ledger:
    """Mark items whose last max_attempts attempts all failed as blocked (with the reason) and commit that."""
    text = ledger.text
    for item_id, reason in to_block:
        text = with_status(text, item_id, "blocked", reason, path=ws.config.ledger)
        progress(f"blocked [{item_id}]: {reason}")
    new = write_ledger_atomic(ws.ledger_path, text)
    ids = ", ".join(item_id for item_id, _ in to_block)
    commit_paths(ws.repo, [ws.config.ledger], f"harness: block {ids} after repeated failed attempts",
                 identity=ws.config.commit.identity,
                 trailers=[("Harness-Item", item_id) for item_id, _ in to_block])
    return new


def pick_item(ws: Workspace, item_id: str | None, progress: Callable[[str], None] = print) -> tuple[Item, Ledger]:
    """The named item (if actionable) or the next actionable one; NothingActionable when there is none."""
    ledger = ws.load_ledger()
    max_attempts = ws.config.max_attempts
    if item_id:
        item = ledger.get(item_id)
        actionable, why = explain(ledger, item.id, max_attempts=max_attempts)
        if not actionable:
            raise LedgerError(f"item {item.id} is not actionable: {why}")
    else:
        selection = select_next(ledger, max_attempts=max_attempts)
        if selection.to_block:
            ledger = block_exhausted(ws, ledger, selection.to_block, progress)
        if selection.item is None:
            raise NothingActionable(f"nothing actionable in {ws.config.ledger}: {selection.reason}")
        item = ledger.get(selection.item.id)
        progress(f"selected [{item.id}] {item.title}: {selection.reason}")
    ensure_plain_names(item)
    return item, ledger


def run_iteration(ws: Workspace, *, item_id: str | None, use_agent: bool, keep_open: bool = False,
                  allow_dirty: bool = False, progress: Callable[[str], None] = print,
                  trailers: tuple[tuple[str, str], ...] = ()) -> IterationResult:
    """Pick, check preconditions, execute one attempt under HEAD's harness.yaml (harness.config.judging).
    The caller holds the lock (and has recovered). `trailers` go on the recording commit."""
    judged = judging_settings(ws.repo, head_sha(ws.repo), ws.config)
    ws = replace(ws, config=judged.config)
    item, ledger = pick_item(ws, item_id, progress)
    # the ledger and evidence are the harness's; files the commit leaves out are set aside from every proof
    dirty = work_to_commit(working_changes(ws.repo), ws.config)
    if use_agent:
        if not ws.config.agent.command:
            raise HarnessError("no agent is configured: set `agent.command` in harness.yaml, or make the change "
                               "yourself and run `harness run --no-agent`")
        if dirty and not allow_dirty:
            raise HarnessError("the working tree is not clean (" + ", ".join(c.path for c in dirty[:5])
                               + (" ..." if len(dirty) > 5 else "") + "): commit or stash it, or pass "
                               "--allow-dirty to make those changes part of this iteration's change")
    elif not dirty:
        raise HarnessError("the working tree holds no change to prove; make the change (test first) and run "
                           "again, or use `harness verify --base REV` for committed work")
    request = IterationRequest(root=ws.root, config=ws.config, item=item, base=judged.commit,
                               keep_open=keep_open, ledger=ledger, judged=judged, trailers=trailers)
    return execute(request, ws.repo, progress=progress, use_agent=use_agent)


def publish(ws: Workspace, result: IterationResult, progress: Callable[[str], None] = lambda _: None, *,
            expected: str | None = None, lease: tuple[str, str] | None = None) -> PushResult | None:
    """Push after a commit when `push` is configured (commits replayed onto a remote that moved are proven
    again first: harness.durability.push; `expected`: the remote head, for a compare-and-swap push; `lease`:
    a lease ref and commit given back in the same atomic push); a
    push that cannot be made is kept pending, never lost."""
    if ws.config.push is None or result.commit is None:
        return None
    return push_branch(ws, progress=progress, expected=expected, lease=lease)
