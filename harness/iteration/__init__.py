"""One verified iteration: pick -> prove -> write evidence -> record and commit.

Used by `harness run` and `harness loop` (the change is in the working tree) and `harness verify` (the
change is committed, REV..HEAD). Each step hands a typed record to the next:

    pick            the item (named, or the next actionable one) and the tree's preconditions
    preflight       what can be checked before the claim (selectors, agent, prompt, sandbox, holdout, linter)
    execute         claims the attempt (AttemptContext) and runs the three steps below; an error after the
                    claim unwinds it
    prove           the agent's turn(s), then collect -> integrity -> RED -> GREEN -> acceptance ->
                    mutation -> gates (stage_plans: the plans; gate_plans: the gates that keep a proof
                    honest; harness.proof.stage_runner runs them in order, or at once across trees) -> Proof
    write_evidence  Proof -> summary.md, attempt.json, SHA256SUMS in staging (attempt_record) -> StagedEvidence
    commit          evidence into the tree, ledger attempt line, one commit, failed work on a saved ref
    records         the hand-offs: IterationRequest, AttemptContext, Proof, StagedEvidence, IterationResult
"""
from __future__ import annotations

from harness.iteration.execute import execute
from harness.iteration.records import IterationRequest, IterationResult

__all__ = ["IterationRequest", "IterationResult", "execute"]
