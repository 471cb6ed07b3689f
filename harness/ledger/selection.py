"""Which ledger item runs next, and why (and why each item considered before it does not).

Order: in_progress before everything else, then priority (lower first), then position in the file.
An item is actionable when its status is pending or in_progress, every Depends-On item exists and is
done, and it is not exhausted (its last `max_attempts` attempts all failed; ABORTED counts as failed).
docs/specs/ledger.md states the rule normatively.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from harness.ledger import STATUSES, Item, Ledger

_RUNNABLE = ("pending", "in_progress")


@dataclass(frozen=True)
class Selection:
    item: Item | None
    reason: str
    passed_over: tuple[tuple[str, str], ...]
    to_block: tuple[tuple[str, str], ...]


def exhaustion(item: Item, max_attempts: int) -> str | None:
    """The block reason when the item's last `max_attempts` attempts all failed, else None."""
    _check_max_attempts(max_attempts)
    last = item.attempts[-max_attempts:]
    if len(last) < max_attempts or not all(a.failed for a in last):
        return None
    plural = "s" if max_attempts != 1 else ""
    return f"{max_attempts} failed attempt{plural}: " + ", ".join(a.outcome for a in last)


def _check_max_attempts(max_attempts: int) -> None:
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")


def _obstacle(item: Item, by_id: dict[str, Item], max_attempts: int) -> tuple[str, str] | None:
    """(category, why) when the item cannot run now; None when it is actionable."""
    if not item.status_known:
        return "unknown", f"unknown status {item.status!r} (expected one of {', '.join(STATUSES)})"
    if item.status == "done":
        return "done", "done"
    if item.status == "blocked":
        return "blocked", f"blocked: {item.status_reason}" if item.status_reason else "blocked"
    exhausted = exhaustion(item, max_attempts)
    if exhausted:
        return "exhausted", f"exhausted: {exhausted}"
    waits = []
    for dep in item.depends_on:
        other = by_id.get(dep)
        if other is None:
            waits.append(f"{dep} (missing from the ledger)")
        elif other.status != "done":
            waits.append(f"{dep} ({other.status})")
    if waits:
        return "waiting", "waits on " + ", ".join(waits)
    return None


def _why_chosen(item: Item) -> str:
    deps = f"dependencies done: {', '.join(item.depends_on)}" if item.depends_on else "no dependencies"
    reason = f"{item.status}, priority {item.priority}, {deps}"
    if item.attempts:
        count = len(item.attempts)
        reason += f"; {count} earlier attempt{'s' if count != 1 else ''}, last {item.attempts[-1].outcome}"
    return reason


def consideration_order(ledger: Ledger) -> list[Item]:
    """in_progress first, then priority (lower first), then file order (sort is stable)."""
    return sorted(ledger.items, key=lambda item: (item.status != "in_progress", item.priority))


def select_next(ledger: Ledger, *, max_attempts: int) -> Selection:
    _check_max_attempts(max_attempts)
    by_id = {item.id: item for item in ledger.items}
    chosen: Item | None = None
    passed_over: list[tuple[str, str]] = []
    to_block: list[tuple[str, str]] = []
    tally: Counter[str] = Counter()
    for item in consideration_order(ledger):
        if item.status in _RUNNABLE and item.status_known:
            exhausted = exhaustion(item, max_attempts)
            if exhausted:
                to_block.append((item.id, exhausted))
        if chosen is not None:
            continue
        obstacle = _obstacle(item, by_id, max_attempts)
        if obstacle is None:
            chosen = item
        else:
            tally[obstacle[0]] += 1
            passed_over.append((item.id, obstacle[1]))
    if chosen is not None:
        reason = _why_chosen(chosen)
    elif not ledger.items:
        reason = "the ledger holds no items"
    else:
        words = {"done": "done", "blocked": "blocked", "exhausted": "exhausted (to be blocked)",
                 "waiting": "waiting on dependencies", "unknown": "with an unknown status"}
        reason = f"no actionable item among {len(ledger.items)}: " + ", ".join(
            f"{tally[key]} {words[key]}" for key in words if tally[key])
    return Selection(chosen, reason, tuple(passed_over), tuple(to_block))


def explain(ledger: Ledger, item_id: str, *, max_attempts: int) -> tuple[bool, str]:
    """Whether the named item is actionable now, and why (unknown id: LedgerError with close matches)."""
    _check_max_attempts(max_attempts)
    item = ledger.get(item_id)
    obstacle = _obstacle(item, {i.id: i for i in ledger.items}, max_attempts)
    if obstacle is None:
        return True, f"actionable: {_why_chosen(item)}"
    return False, obstacle[1]
