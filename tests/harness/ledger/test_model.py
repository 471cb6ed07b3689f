"""The ledger's records: looking items up by id, and Initiative/Slug values that must be plain names."""
from __future__ import annotations

import pytest

from harness.errors import LedgerError
from harness.ledger import (
    ensure_plain_names,
    parse_ledger,
)


def test_get_unknown_id_lists_close_matches() -> None:
    ledger = parse_ledger("## [DATA-001] a\n## [DATA-002] b\n## [OTHER] c\n")
    with pytest.raises(LedgerError, match=r"no item \[DATA-01\]; did you mean DATA-001, DATA-002"):
        ledger.get("DATA-01")
    with pytest.raises(LedgerError, match=r"did you mean OTHER\?"):
        ledger.get("other")
    with pytest.raises(LedgerError, match="the ledger holds no items"):
        parse_ledger("# Fix Plan\n").get("A")


def test_path_problems_and_ensure_plain_names() -> None:
    text = "## [A] t\n- Initiative: ../escape\n- Slug: .hidden\n## [B] fine\n- Slug: ok.name-1_x\n"
    ledger = parse_ledger(text)
    problems = ledger.get("A").path_problems()
    assert [(p.field, p.value, p.line) for p in problems] == [("Initiative", "../escape", 2),
                                                             ("Slug", ".hidden", 3)]
    with pytest.raises(LedgerError) as info:
        ensure_plain_names(ledger.get("A"), "docs/fix_plan.md")
    message = str(info.value)
    assert "docs/fix_plan.md:2: Initiative '../escape'" in message
    assert "docs/fix_plan.md:3: Slug '.hidden'" in message
    assert "[A-Za-z0-9._-]+" in message
    ensure_plain_names(ledger.get("B"))
