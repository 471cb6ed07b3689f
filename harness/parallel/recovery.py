"""Workers left behind by a harness that was killed (kill -9, power loss) or stopped mid-run: nothing lost.

Called under the repository lock at every start (harness.commands._shared.repo_lock) and by the pool
after it stopped its threads. For each worker folder under `<git dir>/harness/workers/` with a journal:
its process groups are ended (the agent's and every pytest it started), the files its proof had set aside
(left out of the commit) are put back into its worktree, what the main checkout received from an
unfinished landing is taken out again (the merged files and the landing's write to the ledger; the
person's own uncommitted ledger edits stay: harness.durability.set_aside), its work is saved on
`refs/harness/aborted/<ITEM>/<n>` (the proven change commit when there is one, else a snapshot of its
worktree), and the attempt is recorded as `ABORTED at <stage>` (harness.durability.recovery.record_aborted). An
attempt whose recording commit exists finished: nothing is recorded twice. Then the worktree, the branch,
the lease and the folder are removed, and leftovers without a journal (a lease whose holder is gone, a
branch or worktree of a worker) are swept, so `git worktree list` shows the main checkout alone.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.durability.journal import Journal
from harness.durability.recovery import record_aborted
from harness.durability.set_aside import put_back, put_back_ledger
from harness.errors import GitError
from harness.gitops import (
    branches_under,
    commit_exists,
    delete_branch,
    discard_changes,
    find_commits_with_trailer,
    open_repo,
    registered_worktrees,
    remove_worktree,
    set_ref,
    snapshot_to_ref,
    working_changes,
)
from harness.parallel import lease as leases
from harness.parallel.places import BRANCH_PREFIX, WorkerPlace, aborted_ref, place_for, workers_root
from harness.proc import kill_process_group
from harness.proof.changes import split_owned
from harness.workspace import Workspace


@dataclass(frozen=True)
class WorkerRecovery:
    item_id: str
    attempt: int
    stage: str
    saved_ref: str | None
    commit: str | None
    ended: tuple[str, ...]  # "<pgid> (<how>)" of each process group that was still there
    problems: tuple[str, ...] = ()  # what could not be cleaned up (a remote lease, the ledger)

    def describe(self) -> str:
        text = f"recovered worker [{self.item_id}] attempt #{self.attempt}: ABORTED at {self.stage}"
        if self.ended:
            text += f"; ended its process group(s) {', '.join(self.ended)}"
        text += f"; its work is saved on {self.saved_ref}" if self.saved_ref else "; no work to save"
        return text + "".join(f"; {p}" for p in self.problems)


def _end_groups(entry: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """End every process group the worker recorded; (the agent's as recovery.record_aborted words it, all)."""
    agent_pgid = int(entry.get("agent_pgid") or 0)
    ended, agent = [], None
    for pgid in dict.fromkeys([agent_pgid, *(int(g) for g in entry.get("groups", []))]):
        if pgid <= 1 or pgid == os.getpgrp():
            continue
        how = kill_process_group(pgid)
        if pgid == agent_pgid:
            agent = f"{pgid} ({how})"
        if how != "gone":
            ended.append(f"{pgid} ({how})")
    return agent, tuple(ended)


def _take_back_landing(ws: Workspace, journal: Journal, entry: dict[str, Any]) -> str | None:
    """Undo what an unfinished landing wrote into the main checkout: merged files, its write to the ledger
    (the person's own uncommitted ledger edits stay), evidence. Returns a note when the ledger could not
    be put back."""
    touched = set(entry.get("main_paths", []))
    discard_changes(ws.repo, [c for c in working_changes(ws.repo) if c.path in touched])
    note = put_back_ledger(ws.repo, journal, ws.ledger_path, entry)
    evidence_rel = entry.get("evidence_dir")
    if evidence_rel and (ws.root / evidence_rel).exists():
        shutil.rmtree(ws.root / evidence_rel)  # uncommitted evidence of the dead attempt; rewritten as ABORTED
    return note


def _save_work(ws: Workspace, place: WorkerPlace, entry: dict[str, Any], ref: str) -> str | None:
    """The proven change commit, else the worktree's changes (harness-owned files left out); None: nothing."""
    change = entry.get("change_commit")
    if change and commit_exists(ws.repo, change):
        set_ref(ws.repo, ref, change, reason="harness: work of an interrupted worker")
        return ref
    if not (place.worktree / ".git").exists():
        return None
    repo = open_repo(place.worktree)
    cfg = ws.config
    changes = working_changes(repo)
    owned = {c.path for c in split_owned(changes, cfg)[1]}
    discard_changes(repo, [c for c in changes if c.path in owned])
    if not any(c.path not in owned for c in changes):
        return None
    snapshot_to_ref(repo, ref, f"[{place.item_id}] attempt {entry.get('attempt')}: work saved after an "
                    f"interrupted run (aborted at {entry.get('stage', 'begin')})", identity=cfg.commit.identity)
    return ref


def _recover_attempt(ws: Workspace, place: WorkerPlace, journal: Journal, entry: dict[str, Any],
                     reason: str | None) -> WorkerRecovery | None:
    agent, ended = _end_groups(entry)
    put_back(journal, entry)  # the files its proof had set aside, into its worktree: saved with the work
    evidence_rel = entry.get("evidence_dir")
    if evidence_rel and find_commits_with_trailer(ws.repo, "Harness-Evidence", evidence_rel):
        return None  # the attempt was recorded before the harness stopped
    attempt, stage = int(entry.get("attempt", 0)), str(entry.get("stage", "begin"))
    note = _take_back_landing(ws, journal, entry)
    saved = _save_work(ws, place, entry, aborted_ref(place.item_id, attempt))
    commit = record_aborted(ws, entry, stage=stage, saved_ref=saved, agent=agent, reason=reason)
    return WorkerRecovery(place.item_id, attempt, stage, saved, commit, ended, (note,) if note else ())


def dismantle(ws: Workspace, place: WorkerPlace, holder: leases.Holder | None = None) -> list[str]:
    """Remove the worker's worktree, branch and folder, and its lease (here and on the remote) when `holder`
    or a dead holder has it. Returns problems to report (a remote that could not be reached)."""
    folder = place.folder.resolve()
    for path in registered_worktrees(ws.repo)[1:]:
        if folder in path.resolve().parents:
            remove_worktree(ws.repo, path)
    delete_branch(ws.repo, place.branch)
    held = leases.read(ws.repo, place.item_id)
    problems = _give_back(ws, held, holder) if held is not None else []
    shutil.rmtree(place.folder, ignore_errors=True)
    return problems


def _give_back(ws: Workspace, held: leases.Lease, holder: leases.Holder | None) -> list[str]:
    """Release `held` if it is `holder`'s or its holder is dead; a live holder's lease is left alone."""
    if held.holder != holder and held.holder.alive() is not False:
        return []
    leases.release(ws.repo, held)
    # With remote leases the pool gives its heartbeat lease back itself (harness.parallel.remote.pooled).
    remote = ws.config.push.remote if ws.config.push and not ws.config.leases.enabled else None
    problem = leases.release_remote(ws.repo, held, remote) if remote else None
    return [problem] if problem else []


def recover_worker(ws: Workspace, item_id: str, holder: leases.Holder | None = None, *,
                   reason: str | None = None) -> WorkerRecovery | None:
    """Recover one worker (its attempt, if it has a journal) and remove everything it had. `reason`: why it
    stopped, when it is known (an error), for the ABORTED record."""
    place = place_for(ws.git_dir, ws.root.name, item_id)
    journal = Journal(ws.git_dir, place.journal_name)
    entry = journal.load()
    found = _recover_attempt(ws, place, journal, entry, reason) if entry is not None else None
    journal.clear()
    problems = dismantle(ws, place, holder)
    if found is not None and problems:
        found = replace(found, problems=found.problems + tuple(problems))
    return found


def recover_workers(ws: Workspace, holder: leases.Holder | None = None) -> list[WorkerRecovery]:
    """Recover every worker left behind, then sweep leftovers. Call it holding the repository lock."""
    root = workers_root(ws.git_dir)
    found = []
    folders = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for folder in folders:
        recovery = recover_worker(ws, folder.name, holder)
        if recovery is not None:
            found.append(recovery)
    _sweep(ws, root.resolve(), holder)
    return found


def _sweep(ws: Workspace, root: Path, holder: leases.Holder | None) -> None:
    if root.is_dir():  # a worktree is registered only with its folder there; `git worktree prune` forgets others
        for path in registered_worktrees(ws.repo)[1:]:
            if root in path.resolve().parents:
                remove_worktree(ws.repo, path)
    for branch in branches_under(ws.repo, BRANCH_PREFIX):
        with contextlib.suppress(GitError):  # checked out in a worktree outside the harness's folder
            delete_branch(ws.repo, branch)
    for held in leases.all_leases(ws.repo):
        _give_back(ws, held, holder)
