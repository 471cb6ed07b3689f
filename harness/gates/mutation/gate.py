"""The `mutation` stage: would the item's new tests notice if the changed code were wrong?

Mutants are made only on the lines the change added or modified in non-test Python files
(harness.gates.mutation.mutants). Each runs against the item's RED selectors in its own copy of the GREEN tree
(a worktree at the base plus the change, or a worktree at `head`), `jobs` copies at once. A mutant is
killed when a selected test fails (a timeout counts as killed), survives when every selected test passes,
and counts as neither when the mutated code cannot be collected. Score = killed / (killed + survived).

Before any mutant, the RED selectors must pass in an unmutated copy: otherwise every mutant would be
"killed" by whatever breaks the copy, and the score would mean nothing.
"""
from __future__ import annotations

import os
import queue
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import git

from harness.atomic import atomic_write_json
from harness.config.gates import AUTO, MutationSettings
from harness.gates.records import MutantOutcome, MutationDetail
from harness.gitops import blob_text, changed_lines, copy_working_files, temp_worktree
from harness.proof.changes import ChangeSet
from harness.proof.stage_records import StageResult
from harness.pytest_run.results import PytestRun
from harness.pytest_run.runner import PytestSettings, Selector, run_pytest

MIN_TIMEOUT_S = 10.0
TIMEOUT_FACTOR = 4.0


@dataclass(frozen=True)
class MutationInputs:
    repo: git.Repo
    root: Path
    base: str
    head: str | None
    changeset: ChangeSet
    red: tuple[Selector, ...]
    settings: MutationSettings
    green_wall_s: float


def _status(run: PytestRun) -> str:
    """What one selector's run says about a mutant: killed, timeout, not_importable or survived."""
    if run.timed_out:
        return "timeout"
    if run.collection_errors() or run.returncode in (3, 4) or run.returncode < 0 or not run.results:
        return "not_importable"
    if run.failing() or run.returncode != 0 or run.record_problems:  # the tests noticed: the run broke
        return "killed"
    return "survived"


def _jobs(settings: MutationSettings, mutants: int) -> int:
    wanted = (os.cpu_count() or 1) if settings.jobs == AUTO else int(settings.jobs)
    return max(1, min(wanted, mutants))


def _source_files(inputs: MutationInputs) -> list[str]:
    tests = {c.path for c in inputs.changeset.tests}
    return [c.path for c in inputs.changeset.changes
            if c.kind != "deleted" and c.path.endswith(".py") and c.path not in tests]


def _read(inputs: MutationInputs, path: str) -> str:
    if inputs.head is not None:
        return blob_text(inputs.repo, inputs.head, path) or ""
    return (inputs.root / path).read_text(encoding="utf-8", errors="replace")


def _run_selectors(selectors: Sequence[Selector], tree: Path, logs: Path, name: str, timeout_s: float,
                   pytest: PytestSettings) -> tuple[str, list[PytestRun]]:
    """Run the selectors in order; the first that kills (or cannot import) the mutant decides."""
    runs = []
    for index, selector in enumerate(selectors, start=1):
        run = run_pytest(("-x", *selector.args), cwd=tree, out_dir=logs, name=f"{name}-{index}",
                         command=pytest.command, env=pytest.env, timeout_s=timeout_s,
                         warm_start=pytest.warm_start)
        runs.append(run)
        status = _status(run)
        if status != "survived":
            return status, runs
    return "survived", runs


def _score_reason(detail: MutationDetail) -> tuple[bool, str]:
    score = detail.score
    counts = (f"{detail.killed} killed ({detail.timed_out} by timeout), {detail.survived} survived, "
              f"{detail.not_importable} not importable, of {len(detail.mutants)} mutant(s)")
    if score is None:
        return True, f"mutation: no mutant could be scored on the {detail.changed_lines} changed line(s) ({counts})"
    if score < detail.min_score:
        survivors = "; ".join(m.describe() for m in detail.survivors[:3])
        more = f" (+{len(detail.survivors) - 3} more)" if len(detail.survivors) > 3 else ""
        return False, (f"mutation: score {score:.2f} is below {detail.min_score:.2f} ({counts}); the new tests "
                       f"pass with: {survivors}{more}")
    return True, f"mutation: score {score:.2f} >= {detail.min_score:.2f} ({counts})"


def mutation_gate(inputs: MutationInputs, *, out_dir: Path, pytest: PytestSettings) -> StageResult:
    # cosmic-ray and parso take a third of a second to import; only an iteration that mutates pays it
    from harness.gates.mutation.mutants import candidates, choose, make_mutant

    settings = inputs.settings
    paths = _source_files(inputs)
    lines = changed_lines(inputs.repo, inputs.base, inputs.head, paths) if paths else {}
    sources = {path: _read(inputs, path) for path in paths}
    found = [c for path in paths for c in candidates(path, sources[path], lines.get(path, ()))]
    chosen = [m for c in choose(found, settings.max_mutants) if (m := make_mutant(c, sources[c.path]))]
    changed = sum(len(v) for v in lines.values())
    timeout_s = float(settings.timeout_s or MIN_TIMEOUT_S + TIMEOUT_FACTOR * inputs.green_wall_s)
    isolated = pytest.isolated_from(inputs.root)
    outcomes: list[MutantOutcome | None] = [None] * len(chosen)
    baseline_failed: PytestRun | None = None
    out_dir.mkdir(parents=True, exist_ok=True)
    runnable = [i for i, m in enumerate(chosen) if m.source is not None]
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="harness-mutants-") as logs_dir:
        logs = Path(logs_dir)
        trees: queue.Queue[Path] = queue.Queue()
        for _ in range(_jobs(settings, len(runnable)) if runnable else 0):
            tree = stack.enter_context(temp_worktree(inputs.repo, inputs.head or inputs.base))
            if inputs.head is None:
                copy_working_files(inputs.root, tree, inputs.changeset.changes)
            trees.put(tree)
        if runnable:
            tree = trees.get()
            status, runs = _run_selectors(inputs.red, tree, out_dir, "mutation-baseline", timeout_s, isolated)
            trees.put(tree)
            if status != "survived":
                baseline_failed = runs[-1]

        def run_one(index: int) -> None:
            mutant = chosen[index]
            tree = trees.get()
            target = tree / mutant.path
            original = target.read_bytes()
            try:
                target.write_text(mutant.source or "", encoding="utf-8")
                status, runs = _run_selectors(inputs.red, tree, logs, f"mutant-{index + 1}", timeout_s, isolated)
            finally:
                target.write_bytes(original)
                trees.put(tree)
            if status == "survived":
                for number, run in enumerate(runs, start=1):  # what the tests printed while it survived
                    shutil.copy2(run.log_path, out_dir / f"mutation-survivor-{index + 1}.{number}.log")
            outcomes[index] = MutantOutcome(mutant.path, mutant.line, mutant.operator, mutant.original,
                                            mutant.mutant, status, round(sum(r.duration_s for r in runs), 3))

        if runnable and baseline_failed is None:
            with ThreadPoolExecutor(max_workers=trees.qsize(), thread_name_prefix="mutant") as pool:
                list(pool.map(run_one, runnable))
    for index, mutant in enumerate(chosen):
        if outcomes[index] is None and mutant.source is None:
            outcomes[index] = MutantOutcome(mutant.path, mutant.line, mutant.operator, mutant.original,
                                            mutant.mutant, "not_importable", 0.0)
    detail = MutationDetail(tuple(o for o in outcomes if o is not None), len(found), settings.min_score, changed)
    if baseline_failed is not None:
        ok, reason = False, (f"mutation: the RED selectors do not pass in an unmutated copy of the tree "
                             f"({baseline_failed.summary()}; see gates/{baseline_failed.log_path.name}), so no "
                             "mutant can be judged")
    else:
        ok, reason = _score_reason(detail)
    atomic_write_json(out_dir / "mutation.json", {
        "ok": ok, "score": detail.score, "killed": detail.killed, "survived": detail.survived,
        "timed_out": detail.timed_out, "not_importable": detail.not_importable, "total": len(detail.mutants),
        "candidates": detail.candidates, "min_score": detail.min_score, "changed_lines": changed,
        "timeout_s": timeout_s,
        "mutants": [{"path": m.path, "line": m.line, "operator": m.operator, "original": m.original,
                     "mutant": m.mutant, "status": m.status, "duration_s": m.duration_s} for m in detail.mutants],
    })
    return StageResult("mutation", ok, reason, detail=detail)
