"""Gates around the proof: every selector collects, regression selectors pass, the full suite holds."""
from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path

from harness.proof.red_green import run_each_selector
from harness.proof.stage_records import FullSuiteDetail, SelectorOutcome, StageResult
from harness.proof.verdicts import (
    collect_verdict,
    full_suite_verdict,
    load_known_failures,
    regression_verdict,
)
from harness.pytest_run.runner import PytestSettings, Selector, run_pytest


def collect_gate(selectors: Sequence[Selector], *, cwd: Path, out_dir: Path,
                 pytest: PytestSettings) -> StageResult:
    """Every RED and Regression selector must collect at least one test ("selector matches no tests")."""
    if not selectors:
        return StageResult("collect", True, "collect: no selectors named")
    return run_each_selector("collect", selectors, cwd=cwd, out_dir=out_dir, verdict=collect_verdict,
                             pytest=pytest, collect_only=True)


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
                     env=pytest.env, timeout_s=pytest.timeout_s)
    verdict = full_suite_verdict(run, known)
    selector = Selector(shlex.join(args) if args else "(whole suite)", tuple(args))
    outcome = SelectorOutcome(selector, run, bool(verdict.ok), str(verdict.reason), verdict)
    detail = FullSuiteDetail(new_failures=tuple(verdict.new_failures), tolerated=tuple(verdict.tolerated),
                             now_passing=tuple(verdict.now_passing), known_failures_file=known_failures)
    return StageResult("full_suite", bool(verdict.ok), str(verdict.reason), (outcome,), run.duration_s,
                       detail=detail)
