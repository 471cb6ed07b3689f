"""Step 3 of an iteration, record and commit: the evidence into the tree, the ledger's attempt line, one
commit with trailers; a failed attempt's work saved on a ref first and then taken out of the tree (the
files the commit leaves out stay in the tree, and are on the ref too).

A dry run (`harness verify --dry-run`) moves the evidence to a temporary folder instead and records nothing.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import git

from harness.clock import iso
from harness.durability.set_aside import keep_ledger
from harness.gitops import commit_paths, discard_changes, snapshot_to_ref
from harness.iteration.attempt_record import trailer_green, trailer_red
from harness.iteration.records import AttemptContext, IterationRequest, IterationResult, Proof, StagedEvidence
from harness.ledger import parse_ledger, record_attempt, write_ledger_atomic


def _move_into_place(staging: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(staging, final)
    except OSError:  # the git dir may sit on another file system (worktrees, GIT_DIR)
        shutil.copytree(staging, final)
        shutil.rmtree(staging)


def _result(request: IterationRequest, proof: Proof, attempt: AttemptContext, evidence: StagedEvidence,
            folder: Path, commit: str | None, saved_ref: str | None) -> IterationResult:
    failed = proof.failed
    return IterationResult(request.item.id, attempt.number, proof.succeeded, failed.name if failed else None,
                           proof.reason, folder, commit, saved_ref, proof.stages, proof.changeset,
                           evidence.record)


def set_aside(request: IterationRequest, proof: Proof, attempt: AttemptContext,
              evidence: StagedEvidence) -> IterationResult:
    """The dry run's end: the evidence goes to a new temporary folder; tree and ledger stay as they are."""
    attempt.evidence_dir.rmdir()  # claimed by evidence_dir(); a dry run leaves nothing in the tree
    out = Path(tempfile.mkdtemp(prefix="harness-dry-run-")) / attempt.evidence_dir.name
    _move_into_place(evidence.folder, out)
    attempt.journal.clear()
    return _result(request, proof, attempt, evidence, out, None, None)


def _record_in_ledger(request: IterationRequest, proof: Proof, attempt: AttemptContext) -> None:
    """Add the attempt line (and the new Status) to the ledger as it is now, the person's uncommitted edits
    included; the bytes it replaces are kept beside the journal first, so a crash before the commit can
    take out this write and nothing else (harness.durability.set_aside.put_back_ledger)."""
    cfg, item = request.config, request.item
    ledger_path = request.root / cfg.ledger
    before = ledger_path.read_bytes()
    current = before.decode("utf-8")
    ledger = request.ledger if request.ledger and request.ledger.text == current else \
        parse_ledger(current, cfg.ledger)
    if proof.succeeded:
        status = "in_progress" if request.keep_open else "done"
    else:
        status = "in_progress" if item.status == "pending" else None
    text = record_attempt(ledger, item.id, timestamp=iso(attempt.started), number=attempt.number,
                          outcome=proof.outcome, base_commit=request.base[:10],
                          evidence=f"{attempt.evidence_rel}/analysis/summary.md", status=status)
    keep_ledger(attempt.journal, before, text.encode("utf-8"))
    write_ledger_atomic(ledger_path, text, check=False)  # record_attempt re-read the edited item


def record_and_commit(request: IterationRequest, proof: Proof, attempt: AttemptContext,
                      evidence: StagedEvidence, repo: git.Repo, *, work_saved: bool = False) -> IterationResult:
    """`work_saved`: the caller already saved a failed change on `evidence.saved_ref` and it is not in this
    tree (a parallel worker's change, harness/parallel), so it is neither snapshotted nor taken out here."""
    cfg, item, root = request.config, request.item, request.root
    saved_ref = evidence.saved_ref
    identity = (cfg.commit.name, cfg.commit.email)
    if saved_ref and not work_saved:
        snapshot_to_ref(repo, saved_ref, f"[{item.id}] attempt {attempt.number}: work saved by the harness "
                        f"({proof.outcome})", identity=identity)
    _move_into_place(evidence.folder, attempt.evidence_dir)
    _record_in_ledger(request, proof, attempt)
    attempt.journal.update(stage="commit")

    change = proof.changeset.commit_paths if proof.succeeded and request.head is None else ()
    paths = [*change, cfg.ledger, *sorted(p.relative_to(root).as_posix()
                                          for p in attempt.evidence_dir.rglob("*") if p.is_file())]
    trailers = [
        ("Harness-Item", item.id),
        ("Harness-Initiative", item.initiative),
        ("Harness-Evidence", attempt.evidence_rel),
        ("Harness-Red", trailer_red(proof.stages)),
        ("Harness-Green", trailer_green(proof.stages)),
        ("Harness-Base", request.base),
        *request.trailers,
    ]
    if saved_ref:
        trailers.append(("Harness-Saved-Ref", saved_ref))
    sha = commit_paths(repo, paths, f"[{item.id}] {item.title}: {proof.outcome}", identity=identity,
                       trailers=trailers)
    if not proof.succeeded and request.head is None and not work_saved:
        # saved on the ref; harness-owned files and the files the commit leaves out stay
        discard_changes(repo, list(proof.changeset.changes))
    attempt.journal.clear()
    return _result(request, proof, attempt, evidence, attempt.evidence_dir, sha, saved_ref)
