"""The planner: `harness plan` runs an external planner that proposes ledger items, and nothing enters the
ledger before the harness has checked the proposal (README, "The planner"; docs/specs/ledger.md, "Plans").

    proposal   the proposal file (items in the ledger's grammar) -> the items it adds or edits, and the
               ledger text it would make (every other byte kept, attempt lines included)
    checks     the lint a proposal must pass: grammar, ids, dependencies, RED test files, Acceptance,
               items that are not the planner's to change
    prompt     the planner's prompt: the ledger, the findings, the last attempts, the goal
    step       one plan step: run the planner (harness.agent.run), check what it changed, show the diff,
               and with `apply` write the ledger and make one commit
"""
from __future__ import annotations
