"""Gates around the proof: every selector collects, regression selectors pass, the full suite holds."""
from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from harness.proof.red_green import run_each_selector
from harness.proof.stage_records import FullSuiteDetail, SelectorOutcome, StageResult
from harness.proof.verdicts import (
    collect_verdict,
    full_suite_verdict,
    load_known_failures,
    regression_verdict,
)
from harness.pytest_run.results import PytestRun
from harness.pytest_run.runner import PytestSettings, Selector, run_pytest
from harness.selectors.runs import assign


def collect_gate(selectors: Sequence[Selector], *, cwd: Path, out_dir: Path,
                 pytest: PytestSettings) -> StageResult:
    """Every RED and Regression selector must collect at least one test ("selector matches no tests").

    Selectors made only of paths and node ids collect in one pytest run (`collect.*`), each credited with
    the collected tests its paths and node ids name (harness.selectors.runs.assign, the rule `harness
    selectors collect` batches by): a pytest start per selector saved, which in a project
    whose conftest imports a large package is seconds each. Anything that leaves a doubt (an error, a
    selector credited with nothing, a run the recorder cannot vouch for) settles it the exact way: each
    selector in its own run (`collect-N.*`, or `collect.*` for a lone selector), whose verdict is the gate's.
    """
    if not selectors:
        return StageResult("collect", True, "collect: no selectors named")
    if len(selectors) > 1 and all(s.is_plain for s in selectors):
        together = _collect_together(selectors, cwd=cwd, out_dir=out_dir, pytest=pytest)
        if together is not None:
            return together
    return run_each_selector("collect", selectors, cwd=cwd, out_dir=out_dir, verdict=collect_verdict,
                             pytest=pytest, collect_only=True)


def _collect_together(selectors: Sequence[Selector], *, cwd: Path, out_dir: Path,
                      pytest: PytestSettings) -> StageResult | None:
    """The collect gate from one run of every selector's arguments, or None where that run leaves a doubt."""
    args = tuple(dict.fromkeys(arg for s in selectors for arg in s.args))
    run = run_pytest(args, cwd=cwd, out_dir=out_dir, name="collect", collect_only=True,
                     command=pytest.command, env=pytest.env, timeout_s=pytest.timeout_s,
                     warm_start=pytest.warm_start)
    if run.returncode != 0 or run.timed_out or run.record_problems or run.collection_errors():
        return None
    outcomes: list[SelectorOutcome] = []
    for selector, results, collected in zip(selectors, *assign(selectors, run, cwd), strict=True):
        if not collected:
            return None
        share: PytestRun = replace(run, collected=tuple(collected), results=tuple(results))
        verdict = collect_verdict(selector, share)
        if not verdict.ok:
            return None
        outcomes.append(SelectorOutcome(selector, share, True, str(verdict.reason), verdict))
    return StageResult("collect", True, "; ".join(o.reason for o in outcomes), tuple(outcomes), run.duration_s)


def regression_gate(selectors: Sequence[Selector], *, cwd: Path, out_dir: Path,
                    pytest: PytestSettings) -> StageResult:
    if not selectors:
        return StageResult("regression", True, "regression: no Regression selectors named")
    return run_each_selector("regression", selectors, cwd=cwd, out_dir=out_dir, verdict=regression_verdict,
                             pytest=pytest)


def full_suite_gate(*, cwd: Path, out_dir: Path, args: Sequence[str], known_failures: str | None,
                    pytest: PytestSettings) -> StageResult:
    """The whole suite; failing node ids must be a subset of the known failures (a repo-relative file;
    None: `known_failures: null` in harness.yaml, so no failure is tolerated)."""
    known = load_known_failures(cwd / known_failures) if known_failures is not None else frozenset()
    run = run_pytest(tuple(args), cwd=cwd, out_dir=out_dir, name="full_suite", command=pytest.command,
                     env=pytest.env, timeout_s=pytest.timeout_s, warm_start=pytest.warm_start)
    verdict = full_suite_verdict(run, known)
    selector = Selector(shlex.join(args) if args else "(whole suite)", tuple(args))
    outcome = SelectorOutcome(selector, run, bool(verdict.ok), str(verdict.reason), verdict)
    detail = FullSuiteDetail(new_failures=tuple(verdict.new_failures), tolerated=tuple(verdict.tolerated),
                             now_passing=tuple(verdict.now_passing), known_failures_file=known_failures)
    return StageResult("full_suite", bool(verdict.ok), str(verdict.reason), (outcome,), run.duration_s,
                       detail=detail)
