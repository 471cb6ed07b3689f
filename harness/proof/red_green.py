"""RED and GREEN proof: RED runs at the base commit plus only the change's test files; GREEN with the change.

The harness, never the agent, runs these. A RED selector is proven only when a test it selects fails or
errors without the change; GREEN needs every selected test to pass with it.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from harness.proof.stage_records import SelectorOutcome, StageResult
from harness.proof.verdicts import Verdict, green_verdict, red_verdict
from harness.pytest_run.results import PytestRun
from harness.pytest_run.runner import PytestSettings, Selector, run_pytest


def run_each_selector(
    stage: str,
    selectors: Sequence[Selector],
    *,
    cwd: Path,
    out_dir: Path,
    verdict: Callable[[Selector, PytestRun], Verdict],
    pytest: PytestSettings,
    collect_only: bool = False,
) -> StageResult:
    """Run each selector in its own pytest process (so results map to selectors exactly) and judge it."""
    outcomes: list[SelectorOutcome] = []
    for index, selector in enumerate(selectors, start=1):
        name = stage if len(selectors) == 1 else f"{stage}-{index}"
        run = run_pytest(selector.args, cwd=cwd, out_dir=out_dir, name=name, collect_only=collect_only,
                         command=pytest.command, env=pytest.env, timeout_s=pytest.timeout_s)
        judged = verdict(selector, run)
        outcomes.append(SelectorOutcome(selector, run, bool(judged.ok), str(judged.reason), judged))
    failed = [o for o in outcomes if not o.ok]
    ok = bool(outcomes) and not failed
    if not outcomes:
        reason = f"{stage}: no selectors to run"
    elif failed:
        reason = failed[0].reason
    else:
        reason = "; ".join(o.reason for o in outcomes)
    return StageResult(stage, ok, reason, tuple(outcomes), sum(o.run.duration_s for o in outcomes))


def prove_red(selectors: Sequence[Selector], *, worktree: Path, out_dir: Path,
              pytest: PytestSettings, has_test_changes: bool) -> StageResult:
    """RED at base + test files (already placed in `worktree`); every selector must fail there."""
    if not has_test_changes:
        return StageResult("red", False, "RED not proven: the change has no test-file changes, so no new "
                           "or changed test can fail without it")
    if not selectors:
        return StageResult("red", False, "RED not proven: the item names no RED selector")
    return run_each_selector("red", selectors, cwd=worktree, out_dir=out_dir, verdict=red_verdict,
                             pytest=pytest)


def prove_green(selectors: Sequence[Selector], *, cwd: Path, out_dir: Path,
                pytest: PytestSettings) -> StageResult:
    """GREEN with the change: every test the RED selectors select must pass (skips are not passes)."""
    if not selectors:
        return StageResult("green", False, "GREEN not proven: the item names no RED selector")
    return run_each_selector("green", selectors, cwd=cwd, out_dir=out_dir, verdict=green_verdict,
                             pytest=pytest)
