"""Which items may start beside the running ones: dependencies in both directions, transitively."""
from __future__ import annotations

from harness.ledger import parse_ledger
from harness.parallel.ready import dependencies, related, startable

LEDGER = """\
# Fix Plan

## [A] a
- Status: pending

## [B] b
- Status: pending
- Depends-On: A

## [C] c
- Status: done
- Depends-On: D

## [D] d
- Status: pending
- Priority: 5

## [E] e
- Status: pending
- Depends-On: C

## [F] f
- Status: pending
- Priority: 200
"""


def _ids(items) -> list[str]:
    return [i.id for i in items]


def test_dependencies_are_followed_transitively() -> None:
    ledger = parse_ledger(LEDGER, "docs/fix_plan.md")
    assert dependencies(ledger, "E") == {"C", "D"}
    assert dependencies(ledger, "B") == {"A"} and dependencies(ledger, "A") == set()
    assert related(ledger, "D", "E") and related(ledger, "E", "D") and not related(ledger, "A", "D")


def test_startable_keeps_related_items_apart_and_follows_the_selection_order() -> None:
    ledger = parse_ledger(LEDGER, "docs/fix_plan.md")
    # B waits on A (not done); E's dependency C is done, but E depends on D through C: never beside D
    assert _ids(startable(ledger, max_attempts=3, running=())) == ["D", "A", "F"]
    assert _ids(startable(ledger, max_attempts=3, running=("D",))) == ["A", "F"]
    assert _ids(startable(ledger, max_attempts=3, running=("A",), unavailable=("F",))) == ["D"]
    assert _ids(startable(ledger, max_attempts=3, running=(), limit=2)) == ["D", "A"]
    done_d = parse_ledger(LEDGER.replace("## [D] d\n- Status: pending", "## [D] d\n- Status: done"), "x.md")
    assert _ids(startable(done_d, max_attempts=3, running=())) == ["A", "E", "F"]
