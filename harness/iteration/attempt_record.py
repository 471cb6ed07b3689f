"""Facts of an attempt for machines (attempt.json) and people (analysis/summary.md), and commit trailers."""
from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import git

from harness.clock import iso
from harness.durability.evidence import render_template
from harness.gates.records import AcceptanceDetail, IntegrityDetail, MutationDetail
from harness.gitops import numstat, numstat_between
from harness.iteration.gate_plans import integrity_wanted, mutation_wanted
from harness.iteration.records import IterationRequest, Proof
from harness.proof.changes import ChangeSet
from harness.proof.stage_records import (
    AgentTurnDetail,
    FullSuiteDetail,
    LintDetail,
    MergeDetail,
    StageDetail,
    StageResult,
)
from harness.proof.stage_runner import stages_at_once, usable_cores
from harness.pytest_run.environment import removed_variables
from harness.pytest_run.results import PytestRun


def _rel(path: Path | str | None, staging: Path) -> str | None:
    if path is None:
        return None
    path = Path(path)
    try:
        return path.relative_to(staging).as_posix()
    except ValueError:
        return path.as_posix()


def _failing(run: PytestRun) -> list[dict]:
    return [
        {"nodeid": r.nodeid, "outcome": r.outcome, "phase": r.phase, "failure_kind": r.failure_kind,
         "exc_type": r.exc_type, "message": r.message}
        for r in run.failing()
    ]


def stage_dict(stage: StageResult, staging: Path) -> dict:
    """A stage as attempt.json holds it (docs/specs/evidence.md); file paths relative to `staging`."""
    selectors = []
    for outcome in stage.outcomes:
        run = outcome.run
        selectors.append({
            "selector": outcome.selector.raw,
            "ok": outcome.ok,
            "reason": outcome.reason,
            "command": list(run.command),
            "returncode": run.returncode,
            "timed_out": run.timed_out,
            "duration_s": round(run.duration_s, 3),
            "counts": run.counts(),
            "collected": len(run.collected),
            "failing": _failing(run),
            "log": _rel(run.log_path, staging),
            "junit": _rel(run.junit_path, staging),
            "reruns": [{"returncode": again.returncode, "counts": again.counts(), "log": _rel(again.log_path, staging)}
                       for again in outcome.reruns],
        })
    return {"name": stage.name, "ok": stage.ok, "skipped": stage.skipped, "reason": stage.reason,
            "duration_s": round(stage.duration_s, 3), "wall_s": round(stage.wall_s, 3),
            "start_s": round(stage.start_s, 3), "counts": stage.counts, "selectors": selectors,
            **_detail_fields(stage.detail)}


def _detail_fields(detail: StageDetail | None) -> dict[str, Any]:
    """The stage-specific keys of a stage in attempt.json (docs/specs/evidence.md)."""
    if isinstance(detail, FullSuiteDetail):
        return {"new_failures": list(detail.new_failures), "tolerated": list(detail.tolerated),
                "now_passing": list(detail.now_passing), "known_failures_file": detail.known_failures_file}
    if isinstance(detail, LintDetail):
        return {"new_findings": list(detail.new_findings), "fixed_findings": detail.fixed_findings}
    if isinstance(detail, AgentTurnDetail):
        return {"exit_code": detail.exit_code, "timed_out": detail.timed_out, "argv": list(detail.argv),
                "preset": detail.preset, "discarded_edits": list(detail.discarded_edits), "phase": detail.phase}
    if isinstance(detail, MergeDetail):
        return {"onto": detail.onto, "merged_tree": detail.merged_tree, "conflicts": list(detail.conflicts)}
    if isinstance(detail, IntegrityDetail):
        return {"findings": [{"kind": f.kind, "file": f.file, "test": f.test, "detail": f.detail,
                              "allowed": f.allowed} for f in detail.findings],
                "allowed_kinds": list(detail.allowed_kinds), "files_checked": len(detail.files_checked)}
    if isinstance(detail, AcceptanceDetail):
        return {"acceptance": [{"nodeid": n, "outcome": o} for n, o in detail.results],
                "holdout_files": detail.holdout_files}
    if isinstance(detail, MutationDetail):
        return {**_mutation_facts(detail), "timed_out": detail.timed_out, "not_importable": detail.not_importable,
                "candidates": detail.candidates, "min_score": detail.min_score,
                "changed_lines": detail.changed_lines, "survivors": [m.describe() for m in detail.survivors],
                "mutants": [{"path": m.path, "line": m.line, "operator": m.operator, "original": m.original,
                             "mutant": m.mutant, "status": m.status} for m in detail.mutants]}
    return {}


def _mutation_facts(detail: MutationDetail) -> dict[str, Any]:
    score = detail.score
    return {"score": None if score is None else round(score, 4), "killed": detail.killed,
            "survived": detail.survived, "total": len(detail.mutants)}


def _mutation_summary(stages: Sequence[StageResult]) -> dict[str, Any] | None:
    """attempt.json's `mutation`: the last mutation stage's score and counts (None: it did not run)."""
    details = [s.detail for s in stages if isinstance(s.detail, MutationDetail)]
    return _mutation_facts(details[-1]) if details else None


def line_counts(repo: git.Repo, base: str, head: str | None, changeset: ChangeSet) -> tuple[int, int]:
    """Lines added and removed by the change, as git counts them: a new file counts all its lines, a
    binary file none, a rename is a deletion plus an addition. A git failure raises GitError."""
    paths = [c.path for c in changeset.changes]
    if not paths:
        return 0, 0
    if head is None:
        _, added, removed = numstat(repo, base, paths)
    else:
        _, added, removed = numstat_between(repo, base, head, paths)
    return added, removed


CHECK_TEXT = {
    "collect": "every RED and Regression selector collects at least one test",
    "red": "RED: the RED selectors fail at the base commit with only the change's test files",
    "green": "GREEN: every test the RED selectors select passes with the change",
    "regression": "the Regression selectors pass with the change",
    "full_suite": "the full suite fails only where known failures are recorded",
    "integrity": "integrity: no test removed, skipped or weakened, no known failure or test filter added, "
                 "beyond what the item allows",
    "acceptance": "acceptance: every held-out test the Acceptance selectors select passes",
    "mutation": "mutation: the new tests kill enough of the mutants made on the changed lines",
    "lint": "static analysis: the change adds no new findings",
    "agent": "the agent exited 0 within its timeout",
    "agent_red": "the agent (phase red) exited 0 within its timeout",
    "agent_green": "the agent (phase green) exited 0 within its timeout",
    "merge": "the change applies onto the branch's current head without a textual conflict",
    "merged-gates": "on the merged tree: the RED selectors and the Regression selectors pass, and the full "
                    "suite fails only where known failures are recorded",
}


def _checks(stages: Sequence[StageResult], expected: tuple[str, ...]) -> list[dict]:
    checks = []
    for stage in stages:
        text = CHECK_TEXT.get(stage.name, stage.name)
        if stage.skipped:
            text = f"{stage.name}: {stage.reason.split(': ', 1)[-1]}"
        checks.append({"text": text, "held": stage.ok})
    ran = {s.name for s in stages}
    checks += [{"text": f"{CHECK_TEXT[n]} (not run)", "held": False} for n in expected if n not in ran]
    return checks


def expected_stages(request: IterationRequest, integrity: bool) -> tuple[str, ...]:
    """The stages this item runs with this configuration, in order (those missing are `not_run`); integrity:
    whether the proof owes the integrity gate (proof_stages.integrity_wanted)."""
    cfg, item = request.config, request.item
    return tuple(name for name, wanted in (
        ("collect", True), ("integrity", integrity), ("red", True), ("green", True),
        ("acceptance", bool(item.acceptance)), ("mutation", mutation_wanted(item, cfg.gates.mutation.enabled)),
        ("regression", True), ("full_suite", True), ("lint", cfg.gates.lint is not None)) if wanted)


def attempt_record(*, request: IterationRequest, proof: Proof, attempt: int, started: datetime,
                   finished: datetime, saved_ref: str | None, evidence_rel: str, staging: Path,
                   repo: git.Repo, harness_version: str) -> dict:
    """Everything the summary says, as JSON-safe data; the summary is rendered from this record."""
    item, stages, changeset, failed = request.item, proof.stages, proof.changeset, proof.failed
    test_paths = {c.path for c in changeset.tests}
    added, removed = line_counts(repo, request.base, request.head, changeset)
    ran = {s.name for s in stages}
    expected = expected_stages(request, integrity_wanted(request, changeset, repo))
    not_run = [name for name in expected if name not in ran]
    return {
        "schema": 1,
        "harness_version": harness_version,
        "item": {"id": item.id, "title": item.title, "initiative": item.initiative, "slug": item.slug,
                 "mode": item.mode, "spec": item.spec, "exit_criteria": list(item.exit_criteria),
                 "red": list(item.red), "regression": list(item.regression),
                 "acceptance": list(item.acceptance), "allow": list(item.allow), "mutation": item.mutation},
        "attempt": attempt,
        "outcome": "GREEN" if proof.succeeded else "FAILED",
        "failed_stage": failed.name if failed else None,
        "reason": proof.reason,
        "started": iso(started),
        "finished": iso(finished),
        "duration_s": round((finished - started).total_seconds(), 3),
        "base_commit": request.base,
        "head": request.head or "working tree",
        "evidence_dir": evidence_rel,
        "saved_ref": saved_ref,
        "stages": [stage_dict(s, staging) for s in stages],
        "not_run": not_run,
        "checks": _checks(stages, expected),
        "changes": {
            "files": [{"path": c.path, "kind": c.kind, "bytes": c.size_bytes, "test": c.path in test_paths}
                      for c in changeset.changes],
            "left_out": [{"path": p, "reason": why} for p, why in changeset.left_out],
            "left_out_ref": proof.left_out_ref,
            "harness_owned_edits": list(changeset.harness_owned),
            "tests_changed": len(test_paths),
            "lines_added": added,
            "lines_removed": removed,
        },
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "mutation": _mutation_summary(stages),
        "timing": {"stages_sum_s": round(sum(s.wall_s for s in stages), 3),
                   "stages_span_s": round(max((s.start_s + s.wall_s for s in stages), default=0.0), 3),
                   **_stages_schedule(request.config.concurrent_stages)},
        "agent": _agent_facts(stages),
        "sandbox": _sandbox_facts(stages, held_out_tests=bool(item.acceptance)),
        "settings": request.judged.record() if request.judged is not None else None,
        "pytest_environment": {"removed": list(removed_variables(os.environ, request.config.pytest.env)),
                               "set_by_harness_yaml": sorted(request.config.pytest.env)},
    }


def _stages_schedule(setting: bool | str) -> dict:
    """How the stages were scheduled: `concurrent_stages` whether they ran at once, decided from the
    setting in harness.yaml and the cores this process may use (harness.proof.stage_runner)."""
    cores = usable_cores()
    return {"concurrent_stages": stages_at_once(setting, cores), "concurrent_stages_setting": setting,
            "cores": cores}


def _agent_facts(stages: Sequence[StageResult]) -> list[dict]:
    """The agent's turns as the harness saw them: argv (and the preset it came from), exit code, timeout,
    duration, edits taken back."""
    turns = []
    for stage in stages:
        turn = stage.detail
        if not isinstance(turn, AgentTurnDetail):
            continue
        turns.append({"stage": stage.name, "phase": turn.phase, "argv": list(turn.argv),
                      "preset": turn.preset, "exit_code": turn.exit_code, "timed_out": turn.timed_out,
                      "duration_s": round(stage.duration_s, 3), "log": f"agent/{stage.name}.log",
                      "prompt": f"agent/{stage.name}.prompt.md",
                      "discarded_edits": list(turn.discarded_edits)})
    return turns


def _sandbox_facts(stages: Sequence[StageResult], *, held_out_tests: bool) -> dict | None:
    """What the agent could reach (its first turn's sandbox: every turn of an attempt gets the same one)
    and the warnings it earned; None where no agent ran."""
    views = [s.detail.sandbox for s in stages if isinstance(s.detail, AgentTurnDetail) and s.detail.sandbox]
    if not views:
        return None
    return {**views[0].record(), "warnings": views[0].status.warnings(held_out_tests=held_out_tests)}


def render_summary(record: dict) -> str:
    return render_template("summary.md.j2", r=record)


def _stage(stages: Sequence[StageResult], name: str) -> StageResult | None:
    return next((s for s in stages if s.name == name), None)


def trailer_red(stages: Sequence[StageResult]) -> str:
    red = _stage(stages, "red")
    if red is None:
        return "not run"
    if red.skipped:
        return red.reason
    failing = sum(len(o.run.failing()) for o in red.outcomes)
    if red.ok:
        return f"proven: {len(red.outcomes)} selector(s), {failing} test(s) failing at base"
    return f"not proven: {red.reason}"


def trailer_green(stages: Sequence[StageResult]) -> str:
    green = _stage(stages, "green")
    if green is None:
        return "not run"
    counts = green.counts
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items())) or "nothing ran"
    return f"{'passed' if green.ok else 'failed'}: {summary}"
