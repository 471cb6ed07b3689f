"""The stages after the agent, in order: collect -> integrity -> RED -> GREEN -> acceptance -> mutation ->
regression -> full suite -> lint.

The first stage that fails in this order is the iteration's failure; no stage after it starts (see
harness.proof.stage_runner, which also runs stages in different trees at once with
`concurrent_stages`). GREEN and the gates run in `green_cwd` (the working tree, or a worktree at `head`
for `harness verify`); RED runs in a temporary worktree at the base commit holding only the change's
test files; acceptance and mutation build temporary trees of their own (harness.iteration.gate_plans).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import git

from harness.durability.journal import Journal
from harness.gates.lint import lint_change
from harness.gitops import copy_working_files, temp_worktree, write_files_at_rev
from harness.iteration.gate_plans import proof_plans
from harness.iteration.records import IterationRequest, Progress
from harness.proof.changes import ChangeSet
from harness.proof.red_green import prove_green, prove_red
from harness.proof.stage_records import LintDetail, StageResult, skipped_stage
from harness.proof.stage_runner import StagePlan, run_plan, stages_at_once, usable_cores
from harness.proof.suite_gates import collect_gate, full_suite_gate, regression_gate
from harness.pytest_run.runner import PytestSettings, Selector, parse_selector
from harness.pytest_run.xdist_jobs import full_suite_args


def _selectors(raw: tuple[str, ...]) -> tuple[Selector, ...]:
    return tuple(parse_selector(text) for text in raw)


def run_stages(request: IterationRequest, changeset: ChangeSet, staging: Path, green_cwd: Path,
               repo: git.Repo, journal: Journal, progress: Progress, *,
               red_only: bool = False) -> list[StageResult]:
    """Run the stages (see the module docstring); later stages that did not start are reported as not run.

    `red_only`: the RED proof only (the first phase of a two-phase agent iteration).
    """
    cfg, item = request.config, request.item
    pytest = PytestSettings.from_config(cfg)
    if request.head is not None:  # GREEN and the gates run in a worktree at head
        pytest = pytest.isolated_from(request.root)
    red, regression = _selectors(item.red), _selectors(item.regression)
    finished: dict[str, StageResult] = {}
    plans: list[StagePlan] = []

    # In the red phase the new test cannot import what the change has yet to add: the RED proof judges it.
    if cfg.gates.collect and not red_only:
        plans.append(StagePlan("collect", lambda: collect_gate(red + regression, cwd=green_cwd,
                                                               out_dir=staging / "collect", pytest=pytest)))
    gates = proof_plans(request, changeset, staging, green_cwd, repo, pytest, finished) if not red_only else {}
    if "integrity" in gates:
        plans.append(gates["integrity"])

    if item.mode in ("chore", "docs"):
        def red_stage() -> StageResult:
            return skipped_stage("red", f"not required: Mode {item.mode} items skip the RED proof")
    else:
        def red_stage() -> StageResult:
            with temp_worktree(repo, request.base) as worktree:
                if request.head is None:
                    copy_working_files(request.root, worktree, changeset.tests)
                else:
                    write_files_at_rev(repo, request.head, changeset.tests, worktree)
                return prove_red(red, worktree=worktree, out_dir=staging / "red",
                                 pytest=pytest.isolated_from(request.root),
                                 has_test_changes=changeset.has_test_changes, reruns=cfg.gates.reruns)
    plans.append(StagePlan("red", red_stage, tree=None, after=("collect",)))

    if not red_only:
        if red or item.mode == "tdd":
            def green_stage() -> StageResult:
                return prove_green(red, cwd=green_cwd, out_dir=staging / "green", pytest=pytest,
                                   reruns=cfg.gates.reruns)
        else:
            def green_stage() -> StageResult:
                return skipped_stage("green", "no RED selectors named")
        plans.append(StagePlan("green", green_stage, after=("collect",)))
        plans += [gates[name] for name in ("acceptance", "mutation") if name in gates]
        _gate_plans(request, staging, green_cwd, repo, pytest, regression, plans)

    def started(name: str) -> None:
        journal.update(stage=name)
        progress(f"{item.id}: {name} ...")

    def ended(result: StageResult) -> None:
        finished[result.name] = result
        progress(f"{item.id}: {result.name}: {'ok' if result.ok else 'FAILED'} ({result.reason})")

    return run_plan(plans, concurrent=stages_at_once(cfg.concurrent_stages, usable_cores()), on_start=started,
                    on_end=ended)


def _gate_plans(request: IterationRequest, staging: Path, green_cwd: Path, repo: git.Repo,
                pytest: PytestSettings, regression: tuple[Selector, ...], plans: list[StagePlan]) -> None:
    cfg = request.config
    if cfg.gates.regression:
        plans.append(StagePlan("regression", lambda: regression_gate(
            regression, cwd=green_cwd, out_dir=staging / "gates", pytest=pytest), after=("green",)))

    if cfg.gates.full_suite:
        def full_suite_stage() -> StageResult:
            args, note = full_suite_args(cfg.gates.full_suite_args, cfg.gates.full_suite_jobs, pytest.command,
                                         green_cwd)
            result = full_suite_gate(cwd=green_cwd, out_dir=staging / "gates", args=args,
                                     known_failures=cfg.known_failures, pytest=pytest)
            return replace(result, reason=f"{result.reason} ({note})") if note else result
        plans.append(StagePlan("full_suite", full_suite_stage, after=("green",)))

    if cfg.gates.lint is not None:
        lint = cfg.gates.lint

        def lint_stage() -> StageResult:
            with temp_worktree(repo, request.base) as base_tree:
                _, _, verdict = lint_change(lint.command, base_cwd=base_tree, head_cwd=green_cwd,
                                            out_dir=staging / "gates", timeout_s=cfg.pytest.timeout_s)
            detail = LintDetail(new_findings=tuple(f.describe() for f in verdict.new_findings),
                                fixed_findings=len(verdict.fixed_findings))
            return StageResult("lint", verdict.ok, verdict.reason, detail=detail)
        # it reads the tree the tests run in (they may write into it), so it waits for it
        plans.append(StagePlan("lint", lint_stage, after=("collect",)))
