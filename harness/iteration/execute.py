"""One attempt from start to end: preflight, claim its evidence folder and journal, then prove, write
evidence, record and commit. The caller holds the repository lock.

What a failure leaves behind is decided where it happens:
- an error found by preflight (harness.iteration.preflight) stops before anything is claimed;
- an error after the claim (a HarnessError, or any other Exception: a bug) unwinds the attempt at once:
  the files set aside go back, the harness's attempt line (if it was written) is taken out of the ledger,
  its staging folder, (empty or uncommitted) evidence folder and journal go, nothing is recorded, and the
  error goes on to the caller (exit 4, or 70 for a bug). What the agent already wrote stays in the tree,
  and a person's edits to the ledger stay: nothing a person or an agent wrote is lost. An attempt whose
  recording commit exists is recorded: only its journal and staging folder go;
- Ctrl-C, SIGTERM (`harness.errors.Interrupted`) and kill -9 are crashes: the journal stays, and the next
  start records the attempt as ABORTED with its work saved on a ref (harness.durability.recovery).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import git

from harness.clock import iso, stamp, utc_now
from harness.durability.evidence import evidence_dir
from harness.durability.journal import Journal
from harness.durability.set_aside import put_back, put_back_ledger
from harness.gitops import common_git_dir, find_commits_with_trailer
from harness.iteration.commit import record_and_commit, set_aside
from harness.iteration.preflight import preflight
from harness.iteration.prove import prove
from harness.iteration.records import AttemptContext, IterationRequest, IterationResult, Progress
from harness.iteration.write_evidence import write_evidence


def _stage_dir(git_dir: Path, label: str) -> Path:
    parent = git_dir / "harness" / "staging"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=parent))


def _release_evidence_dir(folder: Path, root: Path) -> None:
    """Remove a claimed evidence folder and the empty folders above it, up to the repository root `root`
    (an empty folder holds nothing anyone wrote)."""
    shutil.rmtree(folder, ignore_errors=True)
    parent = folder.parent
    while parent != root and root in parent.parents:
        try:
            os.rmdir(parent)
        except OSError:  # not empty (another attempt's folder) or gone: the rest above stays too
            return
        parent = parent.parent


def begin_attempt(request: IterationRequest, repo: git.Repo, started: datetime, *,
                  journal: Journal | None = None) -> AttemptContext:
    """Claim the attempt's evidence folder and staging folder and open its journal entry (by default the
    repository's one journal; a parallel worker passes its own). On an error nothing stays claimed."""
    cfg, item, root = request.config, request.item, request.root
    git_dir = common_git_dir(repo)
    number = item.next_attempt_number
    final_dir = evidence_dir(root, cfg.evidence_root, item.initiative, item.slug, stamp(started))
    evidence_rel = final_dir.relative_to(root).as_posix()
    journal = journal if journal is not None else Journal(git_dir)
    try:
        journal.begin(item=item.id, attempt=number, base=request.base, evidence_dir=evidence_rel,
                      started=iso(started), head=request.head or "working tree")
        staging = _stage_dir(git_dir, f"{stamp(started)}-{item.slug}")
    except Exception:
        journal.clear()
        _release_evidence_dir(final_dir, root)
        raise
    return AttemptContext(number, started, final_dir, evidence_rel, staging, journal)


def unwind_attempt(request: IterationRequest, repo: git.Repo, attempt: AttemptContext) -> str | None:
    """Take back a claimed attempt that an error stopped (see the module docstring): the files set aside go
    back, the harness's own write to the ledger is taken out (a person's edits stay), the evidence and
    staging folders go, then the journal. Returns a note for the user when the ledger line could not be
    taken out without touching a person's edits (harness.durability.set_aside.put_back_ledger)."""
    root, cfg, journal = request.root, request.config, attempt.journal
    note = None
    if not find_commits_with_trailer(repo, "Harness-Evidence", attempt.evidence_rel):
        put_back(journal)
        note = put_back_ledger(repo, journal, root / cfg.ledger)
        _release_evidence_dir(attempt.evidence_dir, root)
    shutil.rmtree(attempt.staging, ignore_errors=True)
    journal.clear()  # last: until here the journal names what a crash would leave to recover
    return note


@contextmanager
def unwound_on_error(request: IterationRequest, repo: git.Repo, attempt: AttemptContext) -> Iterator[None]:
    """Run the body of a claimed attempt; on an Exception unwind the attempt, then re-raise it. An
    interruption (BaseException: Ctrl-C, SIGTERM) passes untouched: the next start recovers it."""
    try:
        yield
    except Exception as exc:
        try:
            note = unwind_attempt(request, repo, attempt)
        except Exception as problem:  # noqa: BLE001 - the first error is the one to report
            exc.add_note(f"the attempt could not be taken back ({type(problem).__name__}: {problem}); its "
                         "journal is kept and the next start recovers it")
        else:
            if note:
                exc.add_note(note)
        raise


def execute(request: IterationRequest, repo: git.Repo, *, progress: Progress = print,
            now: Callable[[], datetime] = utc_now, use_agent: bool = False) -> IterationResult:
    """Preflight, then prove, record and commit one attempt. The caller holds the repository lock.

    With `use_agent`, the configured agent makes the change first (working tree only)."""
    preflight(request, use_agent=use_agent)
    attempt = begin_attempt(request, repo, now())
    with unwound_on_error(request, repo, attempt):
        proof = prove(request, repo, attempt, use_agent=use_agent, progress=progress)
        evidence = write_evidence(request, proof, attempt, repo, finished=now())
        if request.dry_run:
            return set_aside(request, proof, attempt, evidence)
        return record_and_commit(request, proof, attempt, evidence, repo)
