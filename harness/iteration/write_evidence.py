"""Step 2 of an iteration, write evidence: the proof -> analysis/summary.md, attempt.json and SHA256SUMS.

Everything is written in the attempt's staging folder under the git dir; the commit step moves the folder
into the tree complete, so a crash never leaves a half-written evidence folder in the repository.
"""
from __future__ import annotations

from datetime import datetime

import git

from harness import __version__
from harness.atomic import atomic_write_json, atomic_write_text
from harness.durability.evidence import (
    compress_large_files,
    machine_prefixes,
    redact_machine_paths,
    write_sha256sums,
)
from harness.iteration.attempt_record import attempt_record, render_summary
from harness.iteration.records import AttemptContext, IterationRequest, Proof, StagedEvidence


def failed_work_ref(request: IterationRequest, proof: Proof, attempt: AttemptContext) -> str | None:
    """The ref a failed attempt's work is saved on: only for a change in the working tree that holds one."""
    if proof.succeeded or request.head is not None or not proof.changeset.changes:
        return None
    return f"refs/harness/failed/{request.item.id}/{attempt.number}"


def write_evidence(request: IterationRequest, proof: Proof, attempt: AttemptContext, repo: git.Repo, *,
                   finished: datetime) -> StagedEvidence:
    saved_ref = failed_work_ref(request, proof, attempt)
    staging = attempt.staging
    record = attempt_record(
        request=request, proof=proof, attempt=attempt.number, started=attempt.started, finished=finished,
        saved_ref=saved_ref, evidence_rel=attempt.evidence_rel, staging=staging, repo=repo,
        harness_version=__version__)
    attempt.journal.update(stage="evidence")
    atomic_write_text(staging / "analysis" / "summary.md", render_summary(record))
    atomic_write_json(staging / "attempt.json", record)
    redact_machine_paths(staging, machine_prefixes(request.root))  # no path of this machine is committed
    compress_large_files(staging, request.config.caps.evidence_file_bytes)
    write_sha256sums(staging)
    attempt.journal.update(stage="record")
    return StagedEvidence(staging, record, saved_ref)
