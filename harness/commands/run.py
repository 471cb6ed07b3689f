"""`harness run [ITEM] [--no-agent]`: one verified iteration (the agent makes the change, or it is already there);
with `push` and `leases.enabled`, under the item's lease on the remote (harness.parallel.remote.leased)."""
from __future__ import annotations

from pathlib import Path

from harness.commands._shared import print_result, repo_lock
from harness.errors import ExitCode
from harness.parallel.remote.leased import attempt_and_publish
from harness.workspace import open_workspace


def run(*, repo: Path, item_id: str | None, no_agent: bool = False, keep_open: bool = False,
        allow_dirty: bool = False) -> int:
    ws = open_workspace(repo)
    with repo_lock(ws, "harness run"):
        done = attempt_and_publish(ws, item_id=item_id, use_agent=not no_agent, keep_open=keep_open,
                                   allow_dirty=allow_dirty)
    print_result(done.result)
    for note in done.notes:
        print(f"  lease: {note}")
    if done.lost is not None:
        print(f"  lease lost: {done.lost}")
        return ExitCode.REFUSED
    if done.pushed is not None:
        print(f"  push: {done.pushed.message}")
    return ExitCode.OK if done.result.succeeded else ExitCode.REFUSED
