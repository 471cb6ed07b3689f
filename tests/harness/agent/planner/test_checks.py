"""The lint of a proposal: RED selectors that name test files, and problems reported per item and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.agent.planner.checks import PLAN_CODES, check_proposal
from harness.agent.planner.proposal import merged_text, read_proposal
from harness.ledger import parse_ledger

GLOBS = ("tests/**", "**/test_*.py", "**/*_test.py", "**/conftest.py")
LEDGER = "# Plan\n\n## [A] first\n- RED: tests/test_a.py\n"


def problems(tmp_path: Path, proposal: str, *, require_acceptance: bool = False) -> list[tuple[str, int | None]]:
    ledger = parse_ledger(LEDGER)
    read = read_proposal(proposal, ledger)
    merged = parse_ledger(merged_text(ledger, read))
    found = check_proposal(read, proposal, merged, test_globs=GLOBS, repo_root=tmp_path,
                           require_acceptance=require_acceptance)
    assert all(p.code in PLAN_CODES for p in found)
    return [(p.code, p.line) for p in found]


@pytest.mark.parametrize("red", ["tests/test_new.py::test_x", "tests/test_new.py -k 'fast and x'",
                                 "src/pkg/test_mod.py", "tests/unit/test_a.py::TestA::test_b[1-2]"])
def test_red_selectors_that_name_a_test_file_existing_or_not_pass(tmp_path: Path, red: str) -> None:
    assert problems(tmp_path, f"## [B] b\n- RED: {red}\n") == []


@pytest.mark.parametrize("red", ["pkg/calc.py", "tests/data.json", "-k fast", "../elsewhere/test_a.py",
                                 "/abs/tests/test_a.py", "tests", "tests/test_a.py 'unbalanced"])
def test_red_selectors_that_do_not_name_a_test_file_are_refused_on_their_line(tmp_path: Path, red: str) -> None:
    (tmp_path / "tests").mkdir()
    found = problems(tmp_path, f"## [B] b\n- Priority: 2\n- RED: {red}\n")
    assert found in ([("red-not-a-test-file", 3)], [("selector", 3)])


def test_every_problem_of_every_item_is_reported(tmp_path: Path) -> None:
    proposal = ("## [B] b\n- Status: in_progress\n- Mode: tdd\n- Depends-On: C\n\n"
                "## [C] c\n- Depends-On: B\n- Mode: chore\n- Colour: blue\n")
    assert problems(tmp_path, proposal, require_acceptance=True) == [
        ("missing-acceptance", 1), ("no-red", 1), ("status", 2), ("dependency-cycle", 4),
        ("missing-acceptance", 6), ("unknown-field", 9)]
