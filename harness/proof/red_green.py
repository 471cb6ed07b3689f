"""RED and GREEN proof: RED runs at the base commit plus only the change's test files; GREEN with the change.

The harness, never the agent, runs these. A RED selector is proven only when a test it selects fails or
errors without the change; GREEN needs every selected test to pass with it.

A proof holds only if it repeats: with `gates.reruns: N` (harness.yaml, default 1) a proven selector is run
N more times, unchanged, in the same tree. Every test that failed for RED must fail again; for GREEN every
run must pass. A test that fails, then passes (or the other way round) is flaky: the selector is not
proven, and the reason says which test and which run. The reruns' pytest files are `<name>.rerun-K.*`
beside the first run's.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from harness.proof.stage_records import SelectorOutcome, StageResult
from harness.proof.verdicts import Verdict, green_verdict, red_verdict
from harness.pytest_run.results import PytestRun
from harness.pytest_run.runner import PytestSettings, Selector, run_pytest

# (selector, the proven run, its verdict, a rerun) -> why the rerun does not repeat the proof, or None
Confirm = Callable[[Selector, PytestRun, Verdict, PytestRun], str | None]


def run_each_selector(
    stage: str,
    selectors: Sequence[Selector],
    *,
    cwd: Path,
    out_dir: Path,
    verdict: Callable[[Selector, PytestRun], Verdict],
    pytest: PytestSettings,
    collect_only: bool = False,
    reruns: int = 0,
    confirm: Confirm | None = None,
) -> StageResult:
    """Run each selector in its own pytest process (so results map to selectors exactly) and judge it;
    with `confirm`, a proven selector runs `reruns` more times and each rerun must repeat the proof."""
    outcomes: list[SelectorOutcome] = []
    for index, selector in enumerate(selectors, start=1):
        name = stage if len(selectors) == 1 else f"{stage}-{index}"

        def run(run_name: str, selector: Selector = selector) -> PytestRun:
            return run_pytest(selector.args, cwd=cwd, out_dir=out_dir, name=run_name, collect_only=collect_only,
                              command=pytest.command, env=pytest.env, timeout_s=pytest.timeout_s,
                              warm_start=pytest.warm_start)

        first = run(name)
        judged = verdict(selector, first)
        again: list[PytestRun] = []
        while judged.ok and confirm is not None and len(again) < reruns:
            again.append(run(f"{name}.rerun-{len(again) + 1}"))
            why = confirm(selector, first, judged, again[-1])
            if why is not None:
                judged = replace(judged, ok=False, reason=f"{why} (rerun {len(again)} of {reruns}, "
                                                          f"{out_dir.name}/{again[-1].log_path.name})")
        outcomes.append(SelectorOutcome(selector, first, bool(judged.ok), str(judged.reason), judged, tuple(again)))
    failed = [o for o in outcomes if not o.ok]
    ok = bool(outcomes) and not failed
    if not outcomes:
        reason = f"{stage}: no selectors to run"
    elif failed:
        reason = failed[0].reason
    else:
        reason = "; ".join(o.reason for o in outcomes)
    return StageResult(stage, ok, reason, tuple(outcomes),
                       sum(r.duration_s for o in outcomes for r in (o.run, *o.reruns)))


def red_repeats(selector: Selector, first: PytestRun, judged: Verdict, rerun: PytestRun) -> str | None:
    """Every test whose failure proved RED fails again."""
    if rerun.record_problems or rerun.timed_out:
        return f"RED not proven: {selector.raw} could not be confirmed: {rerun.untrusted_reason() or rerun.exit_meaning}"
    again = {r.nodeid: r for r in rerun.results}
    for test in judged.tests:
        result = again.get(test.nodeid)
        if result is None or not result.failing:
            how = "did not run" if result is None else str(result.outcome)
            return (f"RED not proven: {test.nodeid} is flaky: it failed, then {how} when run again unchanged "
                    "without the change")
    return None


def green_repeats(selector: Selector, first: PytestRun, judged: Verdict, rerun: PytestRun) -> str | None:
    """The selector passes again, every test of it."""
    again = green_verdict(selector, rerun)
    if again.ok:
        return None
    if again.tests:
        test = again.tests[0]
        return (f"GREEN not proven: {test.nodeid} is flaky: it passed, then {test.outcome} when run again "
                f"unchanged: {test.message}")
    return f"GREEN not proven: {selector.raw} could not be confirmed: {again.reason}"


def prove_red(selectors: Sequence[Selector], *, worktree: Path, out_dir: Path,
              pytest: PytestSettings, has_test_changes: bool, reruns: int = 0) -> StageResult:
    """RED at base + test files (already placed in `worktree`); every selector must fail there."""
    if not has_test_changes:
        return StageResult("red", False, "RED not proven: the change has no test-file changes, so no new "
                           "or changed test can fail without it")
    if not selectors:
        return StageResult("red", False, "RED not proven: the item names no RED selector")
    return run_each_selector("red", selectors, cwd=worktree, out_dir=out_dir, verdict=red_verdict,
                             pytest=pytest, reruns=reruns, confirm=red_repeats)


def prove_green(selectors: Sequence[Selector], *, cwd: Path, out_dir: Path,
                pytest: PytestSettings, reruns: int = 0) -> StageResult:
    """GREEN with the change: every test the RED selectors select must pass (skips are not passes)."""
    if not selectors:
        return StageResult("green", False, "GREEN not proven: the item names no RED selector")
    return run_each_selector("green", selectors, cwd=cwd, out_dir=out_dir, verdict=green_verdict,
                             pytest=pytest, reruns=reruns, confirm=green_repeats)
