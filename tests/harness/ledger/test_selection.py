"""Which item runs next: order, actionability, exhaustion, and the reasons given for each decision."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import LedgerError
from harness.ledger import STATUSES, Item, parse_ledger
from harness.ledger.selection import exhaustion, explain, select_next


def attempts(*outcomes: str) -> str:
    lines = [f"- 2025-11-06T08:45:0{n}Z · #{n} · {outcome} · 3f2a1bc · plans/{n}/summary.md"
             for n, outcome in enumerate(outcomes, 1)]
    return "### Attempts History\n" + "\n".join(lines) + "\n"


def item(item_id: str, status: str = "pending", priority: int | None = None, depends: str = "",
         history: str = "") -> str:
    fields = [f"## [{item_id}] Title of {item_id}", f"- Status: {status}"]
    if priority is not None:
        fields.append(f"- Priority: {priority}")
    if depends:
        fields.append(f"- Depends-On: {depends}")
    return "\n".join(fields) + "\n\n" + history + "\n"


def test_in_progress_runs_before_pending_even_at_lower_priority() -> None:
    ledger = parse_ledger(item("P", priority=1) + item("Q", "in_progress", priority=9))
    selection = select_next(ledger, max_attempts=3)
    assert selection.item is not None and selection.item.id == "Q"
    assert selection.reason == "in_progress, priority 9, no dependencies"
    assert selection.passed_over == () and selection.to_block == ()


def test_lower_priority_first_then_file_order() -> None:
    ledger = parse_ledger(item("A", priority=5) + item("B", priority=2) + item("C", priority=2) + item("D"))
    assert select_next(ledger, max_attempts=3).item.id == "B"
    ledger = parse_ledger(item("A") + item("B"))
    assert select_next(ledger, max_attempts=3).item.id == "A"


def test_passed_over_explains_every_earlier_candidate_in_order() -> None:
    text = (item("DONE", "done", priority=1)
            + item("BLK", "blocked (3 failed attempts: RED not proven)", priority=1)
            + item("BLK2", "blocked", priority=1)
            + item("WAIT", priority=2, depends="DONE, NEXT, GHOST")
            + item("ODD", "wip", priority=2)
            + item("TIRED", priority=3,
                   history=attempts("FAILED at red", "ABORTED at agent", "FAILED at green"))
            + item("NEXT", priority=4, depends="DONE", history=attempts("FAILED at red", "FAILED at red"))
            + item("LATER", priority=5))
    selection = select_next(parse_ledger(text), max_attempts=3)
    assert selection.item.id == "NEXT"
    assert selection.reason == ("pending, priority 4, dependencies done: DONE; "
                                "2 earlier attempts, last FAILED at red")
    assert selection.passed_over == (
        ("DONE", "done"),
        ("BLK", "blocked: 3 failed attempts: RED not proven"),
        ("BLK2", "blocked"),
        ("WAIT", "waits on NEXT (pending), GHOST (missing from the ledger)"),
        ("ODD", "unknown status 'wip' (expected one of pending, in_progress, done, blocked)"),
        ("TIRED", "exhausted: 3 failed attempts: FAILED at red, ABORTED at agent, FAILED at green"),
    )
    assert selection.to_block == (
        ("TIRED", "3 failed attempts: FAILED at red, ABORTED at agent, FAILED at green"),)


def test_a_green_attempt_among_the_last_ones_means_not_exhausted() -> None:
    history = attempts("FAILED at red", "FAILED at red", "GREEN", "FAILED at lint", "FAILED at red")
    text = item("A", history=history)
    ledger = parse_ledger(text)
    assert exhaustion(ledger.get("A"), 3) is None
    assert exhaustion(ledger.get("A"), 2) == "2 failed attempts: FAILED at lint, FAILED at red"
    assert select_next(ledger, max_attempts=3).item.id == "A"
    selection = select_next(ledger, max_attempts=2)
    assert selection.item is None
    assert selection.to_block == (("A", "2 failed attempts: FAILED at lint, FAILED at red"),)
    assert selection.reason == "no actionable item among 1: 1 exhausted (to be blocked)"


def test_exhausted_items_are_listed_to_block_even_after_the_chosen_one() -> None:
    text = item("FIRST", priority=1) + item("TIRED", "in_progress", priority=9,
                                            history=attempts("FAILED at red"))
    selection = select_next(parse_ledger(text), max_attempts=1)
    assert selection.item.id == "FIRST"
    assert selection.passed_over == (("TIRED", "exhausted: 1 failed attempt: FAILED at red"),)
    assert selection.to_block == (("TIRED", "1 failed attempt: FAILED at red"),)


def test_blocked_or_done_items_with_failed_attempts_are_not_blocked_again() -> None:
    history = attempts("FAILED at red", "FAILED at red")
    text = item("A", "blocked (2 failed attempts)", history=history) + item("B", "done", history=history)
    selection = select_next(parse_ledger(text), max_attempts=2)
    assert selection.item is None and selection.to_block == ()
    assert selection.reason == "no actionable item among 2: 1 done, 1 blocked"


def test_nothing_actionable_counts_what_stands_in_the_way() -> None:
    text = item("A", "done") + item("B", depends="C") + item("C", depends="B") + item("D", "wip")
    selection = select_next(parse_ledger(text), max_attempts=3)
    assert selection.item is None
    assert selection.reason == ("no actionable item among 4: 1 done, 2 waiting on dependencies, "
                                "1 with an unknown status")
    assert select_next(parse_ledger("# Fix Plan\n"), max_attempts=3).reason == "the ledger holds no items"


def test_explain_says_whether_a_named_item_can_run_now() -> None:
    text = item("A", "done") + item("B", depends="A") + item("C", depends="B")
    ledger = parse_ledger(text)
    assert explain(ledger, "B", max_attempts=3) == (
        True, "actionable: pending, priority 100, dependencies done: A")
    assert explain(ledger, "C", max_attempts=3) == (False, "waits on B (pending)")
    assert explain(ledger, "A", max_attempts=3) == (False, "done")
    with pytest.raises(LedgerError, match=r"no item \[Z\]"):
        explain(ledger, "Z", max_attempts=3)


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
def test_max_attempts_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="max_attempts must be an integer >= 1"):
        select_next(parse_ledger(item("A")), max_attempts=bad)  # type: ignore[arg-type]


@st.composite
def random_ledgers(draw: st.DrawFn) -> str:
    ids = [f"I{n}" for n in range(draw(st.integers(0, 8)))]
    parts = []
    for item_id in ids:
        status = draw(st.sampled_from([*STATUSES, "wip"]))
        deps = draw(st.lists(st.sampled_from([*ids, "GHOST"]), max_size=2, unique=True)) if ids else []
        outcomes = draw(st.lists(st.sampled_from(["GREEN", "FAILED at red", "ABORTED at agent"]), max_size=4))
        parts.append(item(item_id, status, draw(st.integers(-2, 3)), ", ".join(deps),
                          attempts(*outcomes) if outcomes else ""))
    return "".join(parts)


@settings(max_examples=150, deadline=None)
@given(random_ledgers(), st.integers(1, 3))
def test_choice_is_the_first_actionable_item_by_an_independent_rule(text: str, max_attempts: int) -> None:
    ledger = parse_ledger(text)
    status = {i.id: i.status for i in ledger.items}

    def actionable(i: Item) -> bool:
        last = [a.outcome for a in i.attempts][-max_attempts:]
        exhausted = len(last) == max_attempts and "GREEN" not in last
        return (i.status in ("pending", "in_progress") and not exhausted
                and all(status.get(d) == "done" for d in i.depends_on))

    ranked = sorted(range(len(ledger.items)), key=lambda n: (
        ledger.items[n].status != "in_progress", ledger.items[n].priority, n))
    expected = next((ledger.items[n] for n in ranked if actionable(ledger.items[n])), None)
    selection = select_next(ledger, max_attempts=max_attempts)
    assert selection.item == expected
    stop = ranked.index(ledger.items.index(expected)) if expected else len(ranked)
    assert [item_id for item_id, _ in selection.passed_over] == [ledger.items[n].id for n in ranked[:stop]]
    for i in ledger.items:
        assert explain(ledger, i.id, max_attempts=max_attempts)[0] == actionable(i)
