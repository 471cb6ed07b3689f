"""One verified iteration: prove -> write evidence -> record and commit.

Used by `harness run` (the change is in the working tree) and `harness verify` (the change is committed,
REV..HEAD). Each step hands a typed record to the next:

    execute         claims the attempt (AttemptContext) and runs the three steps
    prove           the agent's turn(s), then collect -> integrity -> RED -> GREEN -> acceptance ->
                    mutation -> gates (stages: the plans; proof_stages: the gates that keep a proof
                    honest; schedule: in order, or at once across trees) -> Proof
    write_evidence  Proof -> summary.md, attempt.json, SHA256SUMS in staging (report) -> StagedEvidence
    commit          evidence into the tree, ledger attempt line, one commit, failed work on a saved ref
    records         the hand-offs: IterationRequest, AttemptContext, Proof, StagedEvidence, IterationResult
"""
from __future__ import annotations

from harness.iteration.execute import execute
from harness.iteration.records import IterationRequest, IterationResult

__all__ = ["IterationRequest", "IterationResult", "execute"]
