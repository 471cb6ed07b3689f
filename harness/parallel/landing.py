"""The merge queue's step: one worker's attempt at a time lands on the branch, in the main thread, while the
repository lock is held.

A proven change is merged onto the branch's current head in the object store (gitops.merge_trees); a
textual conflict fails the stage `merge`. The gates then run again on the merged tree (`merged-gates`, in
a temporary worktree at the merge result): every test the RED selectors select passes, the Regression
selectors pass, the full suite fails only on known failures. A failure there is a semantic conflict: two
changes that pass alone and break together. When nothing but harness-owned files (the ledger, evidence)
changed since the worker's base, the merged tree is the tree the worker proved, and the gates are not run
twice (the stage says so).

Then the attempt is recorded as `harness run` records one (harness.iteration write_evidence and
record_and_commit): one commit holding the change as merged, the evidence and the ledger line, with the
usual trailers plus `Harness-Merged-Onto: <head>`, and the main checkout moves to it. A failed attempt's
change is saved on `refs/harness/failed/<ITEM>/<n>` (a commit whose parent is the worker's base) and only
its evidence and ledger line are committed; the item goes back to the queue.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from harness.clock import utc_now
from harness.config import Config, judging_settings
from harness.gitops import (
    changes_between,
    commit_tree,
    head_sha,
    merge_trees,
    open_repo,
    set_ref,
    temp_worktree,
    write_files_at_rev,
)
from harness.iteration.commit import record_and_commit
from harness.iteration.records import IterationResult, Proof
from harness.iteration.write_evidence import failed_work_ref, write_evidence
from harness.parallel.worker import WorkerDone, WorkerJob
from harness.proof.changes import split_owned
from harness.proof.red_green import prove_green
from harness.proof.stage_records import MergeDetail, StageResult, skipped_stage
from harness.proof.suite_gates import full_suite_gate, regression_gate
from harness.pytest_run.runner import PytestSettings, parse_selector
from harness.pytest_run.xdist_jobs import full_suite_args
from harness.workspace import Workspace

MERGED_GATES = "merged-gates"


def merge_stage(ws: Workspace, job: WorkerJob, change: str | None, onto: str) -> tuple[StageResult, str | None]:
    """Merge the worker's change commit onto `onto`: the stage, and the merge result (a commit no ref
    points to) when it applied."""
    started = time.monotonic()
    if change is None:
        return StageResult("merge", True, "merge: the change holds no file to commit; nothing to merge",
                           duration_s=time.monotonic() - started,
                           detail=MergeDetail(onto, None, ())), onto
    merged = merge_trees(ws.repo, onto, change)
    if merged.tree is None:
        shown = ", ".join(merged.conflicts[:8]) + (" ..." if len(merged.conflicts) > 8 else "")
        reason = (f"merge: the change conflicts with the branch head {onto[:10]} in {shown}; it is saved and "
                  f"the item is retried from the new head")
        return StageResult("merge", False, reason, duration_s=time.monotonic() - started,
                           detail=MergeDetail(onto, None, merged.conflicts)), None
    result = commit_tree(ws.repo, merged.tree, onto, f"[{job.request.item.id}] merged onto {onto[:10]}",
                         identity=ws.config.commit.identity)
    return StageResult("merge", True, f"merge: applied onto {onto[:10]} without conflict",
                       duration_s=time.monotonic() - started,
                       detail=MergeDetail(onto, merged.tree, ())), result


def _code_moved(ws: Workspace, config: Config, base: str, onto: str) -> list[str]:
    """Paths other than harness-owned ones that changed between the worker's base and `onto`."""
    work, _ = split_owned(changes_between(ws.repo, base, onto), config)
    return [c.path for c in work]


def merged_gates_stage(ws: Workspace, job: WorkerJob, merged: str, onto: str) -> StageResult:
    """RED selectors (as GREEN), Regression selectors and the full suite on the merged tree, under the
    harness.yaml of `onto` (the settings in force on the branch it lands on; harness.config.judging); the
    first that fails stops the stage."""
    item, base = job.request.item, job.request.base
    if onto == base:
        return skipped_stage(MERGED_GATES, f"the merged tree is the tree the worker proved (the branch is still "
                             f"at its base {base[:10]})")
    cfg = judging_settings(ws.repo, onto, ws.config).config
    moved = _code_moved(ws, cfg, base, onto)
    if not moved:
        return skipped_stage(MERGED_GATES, f"the merged tree is the tree the worker proved (since its base "
                             f"{base[:10]} only harness-owned files changed on the branch)")
    started = time.monotonic()
    out_dir = job.attempt.staging / "merged"
    pytest = PytestSettings.from_config(cfg).isolated_from(ws.root)
    red = tuple(parse_selector(s) for s in item.red)
    regression = tuple(parse_selector(s) for s in item.regression)
    parts: list[StageResult] = []
    with temp_worktree(ws.repo, merged) as tree:
        steps: list[Callable[[], StageResult]] = []
        if red or item.mode == "tdd":
            steps.append(lambda: prove_green(red, cwd=tree, out_dir=out_dir, pytest=pytest))
        if cfg.gates.regression:
            steps.append(lambda: regression_gate(regression, cwd=tree, out_dir=out_dir, pytest=pytest))
        if cfg.gates.full_suite:
            def full_suite() -> StageResult:  # with the same xdist choice as the worker's own full suite
                args, _ = full_suite_args(cfg.gates.full_suite_args, cfg.gates.full_suite_jobs, pytest.command, tree)
                return full_suite_gate(cwd=tree, out_dir=out_dir, args=args, known_failures=cfg.known_failures,
                                       pytest=pytest)

            steps.append(full_suite)
        for step in steps:
            parts.append(step())
            if not parts[-1].ok:
                break
    outcomes = tuple(o for part in parts for o in part.outcomes)
    detail = next((p.detail for p in parts if p.name == "full_suite"), None)
    where = f"on the merged tree ({len(moved)} path(s) changed on the branch since the worker's base " \
            f"{base[:10]}; merged onto {onto[:10]})"
    failed = next((p for p in parts if not p.ok), None)
    if failed is not None:
        reason = f"{MERGED_GATES}: {failed.name} failed {where}: {failed.reason}"
    else:
        reason = f"{MERGED_GATES}: passed {where}: " + "; ".join(p.reason for p in parts)
    return StageResult(MERGED_GATES, failed is None, reason, outcomes, time.monotonic() - started,
                       detail=detail)


def land(ws: Workspace, done: WorkerDone, *, on_merging: Callable[[str], None]) -> IterationResult:
    """Merge (when proven), gate the merged tree, record and commit the attempt in the main checkout."""
    job = done.job
    assert done.proof is not None, "a stopped or crashed worker is recovered, not landed"
    journal, item = job.attempt.journal, job.request.item
    stages = list(done.proof.stages)
    onto = head_sha(ws.repo)
    merged: str | None = None
    if done.proof.succeeded:
        on_merging(onto)
        journal.update(stage="merge", onto=onto)
        stage, merged = merge_stage(ws, job, done.change_commit, onto)
        stages.append(stage)
        if stage.ok and merged is not None and merged != onto:
            journal.update(stage=MERGED_GATES)
            stages.append(merged_gates_stage(ws, job, merged, onto))
    proof = Proof(tuple(stages), done.proof.changeset)
    saved_ref = failed_work_ref(job.request, proof, job.attempt)
    if saved_ref and done.change_commit is not None:  # proven alone, refused at merge: keep the change
        set_ref(ws.repo, saved_ref, done.change_commit, reason=f"harness: {item.id} {proof.outcome}")
    worker_repo = open_repo(job.place.worktree)  # the change's line counts are taken against its base there
    evidence = write_evidence(job.request, proof, job.attempt, worker_repo, finished=utc_now())
    request = replace(job.request, root=ws.root)
    if proof.succeeded:
        landed = changes_between(ws.repo, onto, merged) if merged is not None and merged != onto else []
        journal.update(stage="land", main_paths=[c.path for c in landed])
        write_files_at_rev(ws.repo, merged or onto, landed, ws.root)
        # What the merge changed on the branch is what lands: the merge may also have moved a change along
        # a rename, and a path both sides changed alike differs in nothing.
        proof = Proof(proof.stages, replace(proof.changeset, commit_paths=tuple(c.path for c in landed)))
        request = replace(request, trailers=(("Harness-Merged-Onto", onto),))
    return record_and_commit(request, proof, job.attempt, evidence, ws.repo, work_saved=True)
