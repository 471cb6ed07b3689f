"""The merge queue's step: one worker's attempt at a time lands on the branch, in the main thread, while the
repository lock is held.

A proven change is merged onto the branch's current head in the object store (gitops.merge_trees); a
textual conflict fails the stage `merge`. The gates then run again on the merged tree (`merged-gates`, in
a temporary worktree at the merge result, harness.proof.tree_gates): every test the RED selectors select
passes, the Regression selectors pass, the full suite fails only on known failures. A failure there is a
semantic conflict: two changes that pass alone and break together. When nothing but harness-owned files (the
ledger, evidence) changed since the worker's base, the merged tree is the tree the worker proved, and the
gates are not run twice (the stage says so).

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
from harness.config import judging_settings
from harness.gitops import (
    changes_between,
    commit_tree,
    head_sha,
    merge_trees,
    open_repo,
    set_ref,
    write_files_at_rev,
)
from harness.iteration.commit import record_and_commit
from harness.iteration.records import IterationResult
from harness.iteration.write_evidence import failed_work_ref, write_evidence
from harness.parallel.worker import WorkerDone, WorkerJob
from harness.proof.stage_records import MergeDetail, StageResult, skipped_stage
from harness.proof.tree_gates import ProvenClaim, code_moved, gates_on_commit, gates_stage
from harness.pytest_run.runner import PytestSettings
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


def merged_gates_stage(ws: Workspace, job: WorkerJob, merged: str, onto: str) -> StageResult:
    """RED selectors (as GREEN), Regression selectors and the full suite on the merged tree
    (harness.proof.tree_gates), under the harness.yaml of `onto` (the settings in force on the branch it
    lands on; harness.config.judging); the first that fails stops the stage."""
    item, base = job.request.item, job.request.base
    if onto == base:
        return skipped_stage(MERGED_GATES, f"the merged tree is the tree the worker proved (the branch is still "
                             f"at its base {base[:10]})")
    cfg = judging_settings(ws.repo, onto, ws.config).config
    moved = code_moved(ws.repo, cfg, base, onto)
    if not moved:
        return skipped_stage(MERGED_GATES, f"the merged tree is the tree the worker proved (since its base "
                             f"{base[:10]} only harness-owned files changed on the branch)")
    started = time.monotonic()
    pytest = PytestSettings.from_config(cfg).isolated_from(ws.root)
    claim = ProvenClaim.of(item.red, item.regression, item.mode)
    parts = gates_on_commit(ws.repo, merged, config=cfg, claim=claim, out_dir=job.attempt.staging / "merged",
                            pytest=pytest)
    where = f"on the merged tree ({len(moved)} path(s) changed on the branch since the worker's base " \
            f"{base[:10]}; merged onto {onto[:10]})"
    return gates_stage(MERGED_GATES, parts, where, started)


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
    proof = replace(done.proof, stages=tuple(stages))
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
        proof = replace(proof, changeset=replace(proof.changeset, commit_paths=tuple(c.path for c in landed)))
        request = replace(request, trailers=(*request.trailers, ("Harness-Merged-Onto", onto)))
    return record_and_commit(request, proof, job.attempt, evidence, ws.repo, work_saved=True)
