"""Which items may start now, beside the ones already running: pure functions of the ledger.

An item may start when it is actionable (harness.ledger.selection: its status, its attempts, and every item it
depends on done, that is merged) and no running item is related to it by a dependency, directly or
through other items, in either direction. The order is the selection order: in_progress first, then
priority, then position in the file.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable

from harness.ledger import Item, Ledger
from harness.ledger.selection import consideration_order, explain

_RUNNABLE = ("pending", "in_progress")  # the statuses harness.ledger.selection finds actionable


def dependencies(ledger: Ledger, item_id: str) -> set[str]:
    """Every item `item_id` depends on, directly or transitively (ids missing from the ledger included)."""
    by_id = {item.id: item for item in ledger.items}
    seen: set[str] = set()
    todo = list(by_id[item_id].depends_on) if item_id in by_id else []
    while todo:
        dep = todo.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in by_id:
            todo.extend(by_id[dep].depends_on)
    seen.discard(item_id)
    return seen


def related(ledger: Ledger, a: str, b: str) -> bool:
    """Whether one of the two items depends on the other, directly or transitively."""
    return b in dependencies(ledger, a) or a in dependencies(ledger, b)


def startable(ledger: Ledger, *, max_attempts: int, running: Collection[str],
              unavailable: Iterable[str] = (), limit: int | None = None) -> list[Item]:
    """The items that may start now (at most `limit`), in selection order. `running`: items being worked on
    by this harness; `unavailable`: items leased by another holder (never started here)."""
    skip = set(running) | set(unavailable)
    chosen: list[Item] = []
    for item in consideration_order(ledger):
        if limit is not None and len(chosen) >= limit:
            break
        if item.id in skip or item.status not in _RUNNABLE:
            continue
        if not explain(ledger, item.id, max_attempts=max_attempts)[0]:
            continue
        busy = [*running, *(c.id for c in chosen)]
        if any(related(ledger, item.id, other) for other in busy):
            continue
        chosen.append(item)
    return chosen
