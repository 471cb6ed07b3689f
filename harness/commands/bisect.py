"""`harness bisect SELECTOR [--good REV] [--bad REV] [--json]`: the first commit where it stopped passing."""
from __future__ import annotations

import json
from pathlib import Path

from harness.atomic import to_jsonable
from harness.commands._shared import repo_lock
from harness.gitops import short
from harness.pytest_run.runner import PytestSettings
from harness.selectors.bisect import BisectReport, bisect_selector
from harness.selectors.history import load_history
from harness.workspace import open_workspace


def bisect(*, repo: Path, selector: str, good: str | None = None, bad: str | None = None,
           as_json: bool = False) -> int:
    """Exit 0 when the first bad commit is found, 1 otherwise (not confirmed, or hidden by skips)."""
    ws = open_workspace(repo)
    if ws.ledger_path.is_file():  # read here for its warnings; the bisect reads item titles from it later
        ws.load_ledger()
    history = load_history(ws.root / ws.config.selectors.history)
    # The lock keeps a starting `harness run` from pruning the bisect's worktree as a stale one.
    with repo_lock(ws, "harness bisect"):
        report = bisect_selector(ws.repo, selector, good=good, bad=bad, history=history,
                                 options=PytestSettings.from_config(ws.config), ledger_path=ws.ledger_path)
    if as_json:
        print(json.dumps(to_jsonable(report) | {"skipped": to_jsonable(report.skipped)}, indent=2))
    else:
        _print(report)
    return 0 if report.outcome == "found" else 1


def _print(r: BisectReport) -> None:
    print(f"bisect {r.selector!r}: good {short(r.good)} ({r.good_source}), bad {short(r.bad)}")
    for step in r.steps:
        print(f"  {short(step.commit)}  {step.verdict:4}  {step.status:8}  {step.detail}")
    if r.outcome == "not_confirmed":
        print(f"cannot bisect: {r.message}")
        return
    if r.first_bad is not None:
        c = r.first_bad
        print(f"first bad commit: {c.sha}")
        print(f"  author:  {c.author} <{c.email}>, {c.date}")
        lines = c.message.splitlines() or [""]
        print(f"  message: {lines[0]}")
        for line in lines[1:]:
            print(f"           {line}")
        for item_id, title in c.items:
            print(f"  ledger item (Harness-Item trailer): {item_id}{' ' + title if title else ''}")
        if not c.items:
            print("  ledger item: none (the commit has no Harness-Item trailer)")
    else:
        print(r.message)
    for step in r.skipped:
        print(f"  skipped {short(step.commit)}: {step.detail}")
