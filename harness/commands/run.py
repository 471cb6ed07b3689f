"""`harness run [ITEM] [--no-agent]`: one verified iteration (the agent makes the change, or it is already there)."""
from __future__ import annotations

from pathlib import Path

from harness.commands._shared import print_result, repo_lock
from harness.errors import ExitCode
from harness.iteration.pick import publish, run_iteration
from harness.workspace import open_workspace


def run(*, repo: Path, item_id: str | None, no_agent: bool = False, keep_open: bool = False,
        allow_dirty: bool = False) -> int:
    ws = open_workspace(repo)
    with repo_lock(ws, "harness run"):
        result = run_iteration(ws, item_id=item_id, use_agent=not no_agent, keep_open=keep_open,
                               allow_dirty=allow_dirty)
        pushed = publish(ws, result, progress=print)
    print_result(result)
    if pushed is not None:
        print(f"  push: {pushed.message}")
    return ExitCode.OK if result.succeeded else ExitCode.REFUSED
