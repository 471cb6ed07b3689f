"""`harness plan [--goal TEXT] [--apply] [--proposal FILE]`: the planner proposes ledger items; the harness
checks the proposal, shows the diff it makes to the ledger, and with --apply records it in one commit."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.agent.planner.step import PlanResult, plan_step
from harness.commands._shared import repo_lock
from harness.errors import ExitCode
from harness.workspace import open_workspace


def plan(*, repo: Path, goal: str | None = None, apply: bool = False, proposal: Path | None = None) -> int:
    """0: applied, proposed (a dry run) or no change; 1: refused (nothing written); 4: no proposal could be
    had (no planner configured, it failed or timed out, the ledger has uncommitted edits)."""
    ws = open_workspace(repo)
    with repo_lock(ws, "harness plan"):
        result = plan_step(ws, goal=goal, apply=apply, proposal=proposal)
    return report(result, apply=apply)


def report(result: PlanResult, *, apply: bool) -> int:
    """Print what the plan step did; its exit code."""
    if result.outcome == "refused":
        for line in result.problem_lines():
            print(line)
        print(f"harness plan: refused ({len(result.problems)} problem(s)); nothing was written"
              + (f"; the proposal: {result.proposal_path}" if result.proposal_path else ""), file=sys.stderr)
        return ExitCode.REFUSED
    if result.outcome == "unchanged":
        print(f"harness plan: the planner proposed no change ({result.planner})")
        return ExitCode.OK
    print(result.diff, end="")
    if result.outcome == "applied":
        print(f"harness plan: {result.summary}: committed {result.commit[:10] if result.commit else ''}")
    else:
        print(f"harness plan: {result.summary} (dry run: nothing written). To record exactly this proposal: "
              f"harness plan --apply --proposal {result.proposal_path}")
    return ExitCode.OK
