"""The gates again, on a tree other than the one that was proven: a worker's change merged onto a newer
head (the merge queue, harness.parallel.landing) or a commit replayed onto a remote's head before a push
(harness.durability.reproof).

On a checkout of that commit every test the item's RED selectors select must pass (as GREEN), its
Regression selectors must pass and the full suite must fail only on known failures, with the settings and
the xdist choice of the iteration's own gates; the first gate that fails stops the run. Where nothing but
harness-owned files (the ledger, evidence) differs from the tree that was proven (`code_moved` is empty),
the gates would run on the proven code again, and the callers skip them and say so.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import git

from harness.config import Config
from harness.gitops import changes_between, temp_worktree
from harness.proof.changes import split_owned
from harness.proof.red_green import prove_green
from harness.proof.stage_records import StageResult
from harness.proof.suite_gates import full_suite_gate, regression_gate
from harness.pytest_run.runner import PytestSettings, Selector, parse_selector
from harness.pytest_run.xdist_jobs import full_suite_args


@dataclass(frozen=True)
class ProvenClaim:
    """What a GREEN attempt proved of its item: the RED selectors (GREEN's tests), the Regression
    selectors, and whether the item is a TDD item (which must name RED selectors)."""

    red: tuple[Selector, ...]
    regression: tuple[Selector, ...]
    tdd: bool

    @classmethod
    def of(cls, red: Sequence[str], regression: Sequence[str], mode: str) -> ProvenClaim:
        return cls(tuple(parse_selector(s) for s in red), tuple(parse_selector(s) for s in regression),
                   mode == "tdd")


def code_moved(repo: git.Repo, config: Config, proven: str, other: str) -> list[str]:
    """Paths other than harness-owned ones that differ between commits `proven` and `other`."""
    work, _ = split_owned(changes_between(repo, proven, other), config)
    return [c.path for c in work]


def gates_on_commit(repo: git.Repo, rev: str, *, config: Config, claim: ProvenClaim, out_dir: Path,
                    pytest: PytestSettings) -> tuple[StageResult, ...]:
    """GREEN (the RED selectors), regression and the full suite (as `config.gates` enables them) in a
    temporary checkout of `rev`, writing their pytest files to `out_dir`; stops after the first failure."""
    parts: list[StageResult] = []
    with temp_worktree(repo, rev) as tree:
        steps: list[Callable[[], StageResult]] = []
        if claim.red or claim.tdd:
            steps.append(lambda: prove_green(claim.red, cwd=tree, out_dir=out_dir, pytest=pytest,
                                             reruns=config.gates.reruns))
        if config.gates.regression:
            steps.append(lambda: regression_gate(claim.regression, cwd=tree, out_dir=out_dir, pytest=pytest))
        if config.gates.full_suite:
            def full_suite() -> StageResult:  # with the same xdist choice as the iteration's own full suite
                args, _ = full_suite_args(config.gates.full_suite_args, config.gates.full_suite_jobs,
                                          pytest.command, tree)
                return full_suite_gate(cwd=tree, out_dir=out_dir, args=args, known_failures=config.known_failures,
                                       pytest=pytest)

            steps.append(full_suite)
        for step in steps:
            parts.append(step())
            if not parts[-1].ok:
                break
    return tuple(parts)


def gates_stage(name: str, parts: Sequence[StageResult], where: str, started: float) -> StageResult:
    """One stage named `name` from the gates' results: failed at the first part that failed, `where`
    (e.g. "on the merged tree (...)") in its reason; `started` is its time.monotonic() start."""
    outcomes = tuple(o for part in parts for o in part.outcomes)
    detail = next((p.detail for p in parts if p.name == "full_suite"), None)
    failed = next((p for p in parts if not p.ok), None)
    if failed is not None:
        reason = f"{name}: {failed.name} failed {where}: {failed.reason}"
    else:
        reason = f"{name}: passed {where}: " + "; ".join(p.reason for p in parts)
    return StageResult(name, failed is None, reason, outcomes, time.monotonic() - started, detail=detail)
