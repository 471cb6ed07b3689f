"""One parallel worker: set up in the main thread, then run in a thread of its own.

Set-up (`start_worker`, the pool holds the item's lease): the attempt's journal and evidence folder
(harness.iteration.execute.begin_attempt, with the worker's own journal), then a worktree on a new branch
at the current head, under the git dir. The thread (`worker_thread`) runs the agent in that worktree with
the usual HARNESS_* environment and proves the change there exactly as `harness run` does
(harness.iteration.prove: collect, RED at the base with the test files only, GREEN, gates). A proven change
is committed on the worker's branch for the merge queue (harness.parallel.landing); a failed one is saved
on `refs/harness/failed/<ITEM>/<n>`. The files the commit leaves out (set aside while the stages ran) would
go away with the worktree: they are on the failed ref, or for a proven change on
`refs/harness/left-out/<ITEM>/<n>`. Nothing is recorded in the ledger here: the main thread does that.

The thread never prints: the agent's output goes to its log only, and the stages' progress is dropped
(the evidence holds all of it). A stop asked for through `cancel` takes effect before the next stage; the
pool ends the process groups the worker started (watched with harness.proc.watching_groups).
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

import git

from harness import proc
from harness.config import judging_settings
from harness.durability.journal import Journal
from harness.gitops import add_branch_worktree, commit_paths, head_sha, open_repo, snapshot_to_ref
from harness.iteration.execute import begin_attempt
from harness.iteration.prove import prove
from harness.iteration.records import AttemptContext, IterationRequest, Proof
from harness.iteration.write_evidence import failed_work_ref
from harness.ledger import Item, Ledger
from harness.parallel.lease import Lease
from harness.parallel.places import WorkerPlace, left_out_ref, place_for
from harness.workspace import Workspace


class WorkerStopped(Exception):
    """The pool asked the worker to stop (Ctrl-C, SIGTERM); its attempt is recovered as aborted."""


@dataclass(frozen=True)
class WorkerJob:
    """A started worker. `request.root` is its worktree and `request.base` the head it started from; the
    attempt's evidence folder is claimed in the main checkout, where the attempt is recorded."""

    name: str
    place: WorkerPlace
    lease: Lease
    request: IterationRequest
    attempt: AttemptContext


@dataclass(frozen=True)
class WorkerDone:
    """How a worker's thread ended: a proof (with the change committed on its branch when proven, or the
    ref its failed work was saved on), or stopped, or an unexpected `error` (its attempt is then recovered
    as aborted)."""

    job: WorkerJob
    proof: Proof | None
    change_commit: str | None = None
    saved_ref: str | None = None
    stopped: bool = False
    error: str | None = None


def start_worker(ws: Workspace, *, name: str, item: Item, ledger: Ledger, lease: Lease,
                 now: Callable[[], datetime]) -> WorkerJob:
    """Journal, evidence folder and worktree of a new attempt on `item`, from the current head."""
    place = place_for(ws.git_dir, ws.root.name, item.id)
    base = head_sha(ws.repo)
    judged = judging_settings(ws.repo, base, ws.config)  # the head's harness.yaml judges the worker's change
    journal = Journal(ws.git_dir, place.journal_name)
    request = IterationRequest(root=place.worktree, config=judged.config, item=item, base=base, ledger=ledger,
                               judged=judged)
    attempt = begin_attempt(replace(request, root=ws.root), ws.repo, now(), journal=journal)
    journal.update(stage="setup", worker=name, worktree=str(place.worktree), branch=place.branch,
                   lease=lease.ref)
    add_branch_worktree(ws.repo, place.worktree, place.branch, base)
    return WorkerJob(name, place, lease, request, attempt)


def run_worker(job: WorkerJob, cancel: threading.Event, groups: list[int]) -> WorkerDone:
    """The agent and the proof in the worker's worktree; `groups` collects the process groups it starts."""
    journal, cfg, item = job.attempt.journal, job.request.config, job.request.item

    def checkpoint(_text: str = "") -> None:
        if cancel.is_set():
            raise WorkerStopped(f"worker {job.name} on {item.id} was asked to stop")

    def watch(pgid: int) -> None:
        groups.append(pgid)
        journal.update(groups=sorted(set(groups)))

    repo = open_repo(job.place.worktree)
    with proc.watching_groups(watch):
        proof = prove(job.request, repo, job.attempt, use_agent=True, progress=checkpoint, echo=False)
    checkpoint()
    change = saved = None
    if proof.succeeded:
        paths = proof.changeset.commit_paths
        change = commit_paths(repo, paths, f"[{item.id}] {item.title}: change proven by worker {job.name}",
                              identity=cfg.commit.identity) if paths else None
    else:
        saved = failed_work_ref(job.request, proof, job.attempt)
        if saved:
            snapshot_to_ref(repo, saved, f"[{item.id}] attempt {job.attempt.number}: work saved by the "
                            f"harness ({proof.outcome})", identity=cfg.commit.identity)
    proof = replace(proof, left_out_ref=_save_left_out(job, repo, proof, saved))
    journal.update(stage="proven", change_commit=change, saved_ref=saved)
    return WorkerDone(job, proof, change_commit=change, saved_ref=saved)


def _save_left_out(job: WorkerJob, repo: git.Repo, proof: Proof, saved: str | None) -> str | None:
    """The ref holding the files the commit left out (the worktree goes away after landing): the failed
    attempt's saved ref when there is one (a snapshot of the whole worktree), else a snapshot on top of
    the change commit on `refs/harness/left-out/<ITEM>/<n>`. None when nothing was left out."""
    if not proof.changeset.left_out:
        return None
    if saved:
        return saved
    ref = left_out_ref(job.request.item.id, job.attempt.number)
    snapshot_to_ref(repo, ref, f"[{job.request.item.id}] attempt {job.attempt.number}: files left out of the "
                    f"commit ({proof.outcome})", identity=job.request.config.commit.identity)
    return ref


def worker_thread(job: WorkerJob, cancel: threading.Event, groups: list[int],
                  results: queue.Queue[WorkerDone]) -> None:
    """The body of a worker's thread: whatever happens, one WorkerDone goes to `results`."""
    try:
        done = run_worker(job, cancel, groups)
    except WorkerStopped:
        done = WorkerDone(job, None, stopped=True)
    except Exception as exc:  # noqa: BLE001 - the pool reports it; the attempt is recovered as aborted
        done = WorkerDone(job, None, error=f"{type(exc).__name__}: {exc}")
    results.put(done)
