"""One attempt from start to end: claim its evidence folder and journal, then prove, write evidence,
record and commit. The caller holds the repository lock."""
from __future__ import annotations

import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import git

from harness.clock import iso, stamp, utc_now
from harness.durability.evidence import evidence_dir
from harness.durability.journal import Journal
from harness.gitops import common_git_dir
from harness.iteration.commit import record_and_commit, set_aside
from harness.iteration.gate_plans import check_item
from harness.iteration.prove import prove
from harness.iteration.records import AttemptContext, IterationRequest, IterationResult, Progress
from harness.iteration.write_evidence import write_evidence


def _stage_dir(git_dir: Path, label: str) -> Path:
    parent = git_dir / "harness" / "staging"
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{label}-", dir=parent))


def begin_attempt(request: IterationRequest, repo: git.Repo, started: datetime, *,
                  journal: Journal | None = None) -> AttemptContext:
    """Claim the attempt's evidence folder and staging folder and open its journal entry (by default the
    repository's one journal; a parallel worker passes its own)."""
    cfg, item, root = request.config, request.item, request.root
    git_dir = common_git_dir(repo)
    number = item.next_attempt_number
    final_dir = evidence_dir(root, cfg.evidence_root, item.initiative, item.slug, stamp(started))
    evidence_rel = final_dir.relative_to(root).as_posix()
    journal = journal if journal is not None else Journal(git_dir)
    journal.begin(item=item.id, attempt=number, base=request.base, evidence_dir=evidence_rel,
                  started=iso(started), head=request.head or "working tree")
    staging = _stage_dir(git_dir, f"{stamp(started)}-{item.slug}")
    return AttemptContext(number, started, final_dir, evidence_rel, staging, journal)


def execute(request: IterationRequest, repo: git.Repo, *, progress: Progress = print,
            now: Callable[[], datetime] = utc_now, use_agent: bool = False) -> IterationResult:
    """Prove, record and commit one attempt. The caller holds the repository lock.

    With `use_agent`, the configured agent makes the change first (working tree only)."""
    check_item(request)
    attempt = begin_attempt(request, repo, now())
    proof = prove(request, repo, attempt, use_agent=use_agent, progress=progress)
    evidence = write_evidence(request, proof, attempt, repo, finished=now())
    if request.dry_run:
        return set_aside(request, proof, attempt, evidence)
    return record_and_commit(request, proof, attempt, evidence, repo)
