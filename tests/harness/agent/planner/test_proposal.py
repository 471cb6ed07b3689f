"""A proposal read against the ledger, and the ledger text it makes: added items at the end, edited items'
heads replaced, attempt histories and every other byte kept."""
from __future__ import annotations

from harness.agent.planner.proposal import merged_text, read_proposal
from harness.ledger import parse_ledger

ATTEMPT = "- 2025-01-01T13:00:00Z · #1 · FAILED at red · 1234567 · plans/x/summary.md"
LEDGER = (
    "\ufeff# Plan  \n\npreamble kept\n\n"
    "## [A] first\n- Status: pending\n- RED: tests/test_a.py\n\nprose of A\n\n\n"
    f"## [B] second\n- Status: blocked (stuck)\n- RED: tests/test_b.py\n\nold prose\n\n### Attempts History\n{ATTEMPT}\n"
    "  an indented note under the attempt\n\nafter the attempts\n\n"
    "## [C] third\n- Status: done\n- RED: tests/test_c.py"  # no final newline
)


def merge(ledger_text: str, proposal: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    ledger = parse_ledger(ledger_text)
    read = read_proposal(proposal, ledger)
    assert read.problems == ()
    return merged_text(ledger, read), read.added, read.edited


def test_added_items_go_at_the_end_and_a_missing_final_newline_stays_missing() -> None:
    text, added, edited = merge(LEDGER, "# ignored preamble\n\n## [D] fourth\n- RED: tests/test_d.py\n\n"
                                        "## [E] fifth\n- Mode: chore\n")
    assert (added, edited) == (("D", "E"), ())
    assert text == LEDGER + "\n\n## [D] fourth\n- RED: tests/test_d.py\n\n## [E] fifth\n- Mode: chore"
    assert parse_ledger(text).ids() == ("A", "B", "C", "D", "E")


def test_an_edit_replaces_the_head_and_keeps_the_attempt_history_and_what_follows_it() -> None:
    text, added, edited = merge(LEDGER, "## [B] second, smaller\n- Status: pending\n- RED: tests/test_b.py::t\n")
    assert (added, edited) == ((), ("B",))
    assert text == LEDGER.replace("## [B] second\n- Status: blocked (stuck)\n- RED: tests/test_b.py\n\nold prose\n",
                                  "## [B] second, smaller\n- Status: pending\n- RED: tests/test_b.py::t\n")
    item = parse_ledger(text).get("B")
    assert item.status == "pending" and item.red == ("tests/test_b.py::t",) and len(item.attempts) == 1


def test_an_edit_without_history_keeps_the_blank_lines_after_the_item() -> None:
    text, _, edited = merge(LEDGER, "## [A] first, renamed\n- RED: tests/test_a.py\n")
    assert edited == ("A",)
    assert text == LEDGER.replace("## [A] first\n- Status: pending\n- RED: tests/test_a.py\n\nprose of A\n",
                                  "## [A] first, renamed\n- RED: tests/test_a.py\n")


def test_crlf_ledgers_get_crlf_lines() -> None:
    crlf = LEDGER.replace("\n", "\r\n")
    text, _, _ = merge(crlf, "## [A] first, renamed\r\n- RED: tests/test_a.py\r\n\r\n## [D] fourth\n- Mode: docs\n")
    assert "\n" not in text.replace("\r\n", "")
    assert text.startswith(crlf[:crlf.index("## [A]")] + "## [A] first, renamed\r\n- RED: tests/test_a.py\r\n\r\n\r\n")
    assert text.endswith("- RED: tests/test_c.py\r\n\r\n## [D] fourth\r\n- Mode: docs")


def test_an_item_proposed_as_the_ledger_has_it_is_no_change() -> None:
    ledger = parse_ledger(LEDGER)
    same = "## [A] first\n- Status: pending\n- RED: tests/test_a.py\n\nprose of A\n\n\n## [B] second\n" \
           "- Status: blocked (stuck)\n- RED: tests/test_b.py\n\nold prose\n"
    read = read_proposal(same, ledger)
    assert read.items == () and read.problems == ()
    assert read_proposal("", ledger).items == ()


def test_every_grammar_problem_is_reported_with_its_line() -> None:
    read = read_proposal("## [D] fine\n- Priority: x\n\n## [d] bad id\n\n## [D] again\n", parse_ledger(LEDGER))
    assert [(p.line, p.code) for p in read.problems] == [(2, "parse-error"), (4, "parse-error"), (6, "duplicate-id")]
