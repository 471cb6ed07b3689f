"""The stages after the agent, in order: collect -> RED -> GREEN -> regression -> full suite -> lint.

The first stage that fails stops the run; the ones after it are reported as not run. GREEN and the gates
run in `green_cwd` (the working tree, or a worktree at `head` for `harness verify`); RED runs in a
temporary worktree at the base commit holding only the change's test files.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import git

from harness.changes import ChangeSet
from harness.gates import collect_gate, full_suite_gate, regression_gate
from harness.gitops import copy_working_files, temp_worktree, write_files_at_rev
from harness.iteration.records import IterationRequest, Progress
from harness.lint_gate import lint_change
from harness.locking import Journal
from harness.proof import prove_green, prove_red
from harness.pytest_runner import Selector, parse_selector
from harness.stage_records import LintDetail, PytestSettings, StageResult, skipped_stage


def _selectors(raw: tuple[str, ...]) -> tuple[Selector, ...]:
    return tuple(parse_selector(text) for text in raw)


def run_stages(request: IterationRequest, changeset: ChangeSet, staging: Path, green_cwd: Path,
               repo: git.Repo, journal: Journal, progress: Progress, *,
               red_only: bool = False) -> list[StageResult]:
    """Run the stages in order and stop at the first that fails (later stages are reported as not run).

    `red_only`: collect and the RED proof only (the first phase of a two-phase agent iteration).
    """
    cfg, item = request.config, request.item
    pytest = PytestSettings.from_config(cfg)
    if request.head is not None:  # GREEN and the gates run in a worktree at head
        pytest = pytest.isolated_from(request.root)
    red, regression = _selectors(item.red), _selectors(item.regression)
    stages: list[StageResult] = []

    def stage(name: str, fn: Callable[[], StageResult]) -> bool:
        journal.update(stage=name)
        progress(f"{item.id}: {name} ...")
        started = time.monotonic()
        result = fn()
        if not result.duration_s:
            result = replace(result, duration_s=time.monotonic() - started)
        stages.append(result)
        progress(f"{item.id}: {name}: {'ok' if result.ok else 'FAILED'} ({result.reason})")
        return result.ok

    # In the red phase the new test cannot import what the change has yet to add: the RED proof judges it.
    if cfg.gates.collect and not red_only and not stage(
        "collect", lambda: collect_gate(red + regression, cwd=green_cwd, out_dir=staging / "collect",
                                        pytest=pytest)):
        return stages

    if item.mode in ("chore", "docs"):
        stages.append(skipped_stage("red", f"not required: Mode {item.mode} items skip the RED proof"))
    else:
        def red_stage() -> StageResult:
            with temp_worktree(repo, request.base) as worktree:
                if request.head is None:
                    copy_working_files(request.root, worktree, changeset.tests)
                else:
                    write_files_at_rev(repo, request.head, changeset.tests, worktree)
                return prove_red(red, worktree=worktree, out_dir=staging / "red",
                                 pytest=pytest.isolated_from(request.root),
                                 has_test_changes=changeset.has_test_changes)

        if not stage("red", red_stage) or red_only:
            return stages

    if red or item.mode == "tdd":
        if not stage("green", lambda: prove_green(red, cwd=green_cwd, out_dir=staging / "green",
                                                  pytest=pytest)):
            return stages
    else:
        stages.append(skipped_stage("green", "no RED selectors named"))

    if cfg.gates.regression and not stage(
        "regression", lambda: regression_gate(regression, cwd=green_cwd, out_dir=staging / "gates",
                                              pytest=pytest)):
        return stages

    if cfg.gates.full_suite and not stage("full_suite", lambda: full_suite_gate(
            cwd=green_cwd, out_dir=staging / "gates", args=tuple(cfg.gates.full_suite_args),
            known_failures=cfg.known_failures, pytest=pytest)):
        return stages

    if cfg.gates.lint is not None:
        def lint_stage() -> StageResult:
            with temp_worktree(repo, request.base) as base_tree:
                _, _, verdict = lint_change(cfg.gates.lint.command, base_cwd=base_tree, head_cwd=green_cwd,
                                            out_dir=staging / "gates", timeout_s=cfg.pytest.timeout_s)
            detail = LintDetail(new_findings=tuple(f.describe() for f in verdict.new_findings),
                                fixed_findings=len(verdict.fixed_findings))
            return StageResult("lint", verdict.ok, verdict.reason, detail=detail)

        stage("lint", lint_stage)
    return stages
