"""The hand-offs between the steps: what a Proof says about the stages it holds."""
from __future__ import annotations

import pytest

from harness.iteration.records import Proof
from harness.proof.changes import ChangeSet
from harness.proof.stage_records import StageResult, skipped_stage

NO_CHANGE = ChangeSet((), (), (), (), ())


def test_a_proof_fails_at_its_first_failing_stage_and_says_why() -> None:
    stages = (StageResult("collect", True, "collect: ok"), StageResult("red", False, "RED not proven: x"),
              StageResult("green", False, "never reached"))
    proof = Proof(stages, NO_CHANGE)
    assert not proof.succeeded and proof.failed is proof.stages[1]
    assert proof.outcome == "FAILED at red" and proof.reason == "RED not proven: x"


def test_a_proof_with_every_stage_held_is_green() -> None:
    proof = Proof((skipped_stage("red", "not required"), StageResult("regression", True, "ok")), NO_CHANGE)
    assert proof.succeeded and proof.failed is None
    assert proof.outcome == "GREEN" and proof.reason == "all stages passed"


def test_a_proof_holds_at_least_one_stage() -> None:
    with pytest.raises(ValueError, match="at least one stage"):
        Proof((), NO_CHANGE)
