"""One iteration of the serial loop (`harness run`, `harness loop`) when several machines share the push
remote (`push` configured, `leases.enabled`). The remote is the truth:

1. fetch the branch and move this checkout onto it (fast-forward; commits only this checkout has, such as
   an interrupted attempt recorded after a restart, are replayed onto it, proven again and pushed first:
   if that fails nothing is selected, as the ledger read here could miss another machine's result);
2. read the remote's leases and pick the next actionable item nobody else holds (a lease whose heartbeat
   is older than `leases.ttl` does not count: its item may be taken over);
3. take its lease by compare-and-swap (a race lost: the next item), fetch the branch again and check the
   item is still actionable: a holder pushes its result before it gives its lease back, so a finished item
   is seen here once its lease is ours;
4. run the attempt while a heartbeat thread renews the lease (harness.parallel.remote.heartbeat);
5. renew once more: a lease taken over meanwhile means another harness owns the item now, so this
   attempt's commit is withdrawn (saved on refs/harness/superseded/<ITEM>/<n>, the branch moved back) and
   nothing is pushed; a lease that vanished is reported and taken again if it is free;
6. push by compare-and-swap on the remote head the attempt was built on (`--force-with-lease=
   refs/heads/<branch>:<sha>`) and, in the same atomic push (`git push --atomic`), give the lease back by
   compare-and-swap on the lease commit renewed last: the result lands only while the item is still this
   holder's, so two machines never both record it, even when a replay and re-proof after a lost race
   (harness.durability.push; never an unproven tree) outlasted `leases.ttl` and the item was taken over
   (then the commit is withdrawn as in 5);
7. a push that fails otherwise (the network, a conflict) is kept pending and keeps the lease, which
   expires after `leases.ttl`.

A takeover is recorded in the new lease and in the attempt's commit (trailer `Harness-Lease-Takeover`).
Steps 1, 3, 5, 6 and 7 are shared with `harness loop --workers N` (harness.parallel.remote.held).
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from harness.clock import utc_now
from harness.errors import HarnessError, LedgerError, NothingActionable
from harness.iteration.pick import block_exhausted, publish, run_iteration
from harness.ledger.selection import select_next
from harness.parallel.lease import Holder, LeaseRefused
from harness.parallel.ready import startable
from harness.parallel.remote.held import (
    LeasedIteration,
    NoLongerActionable,
    claim,
    heartbeat,
    leases_enabled,
    publish_held,
    sync_branch,
    takeover_trailers,
)
from harness.parallel.remote.lease import RemoteLease, fetch_leases, release
from harness.workspace import Workspace

MAX_PICKS = 20  # leases lost to races before this harness reports that it found nothing to take

__all__ = ["LeasedIteration", "attempt_and_publish", "leased_iteration", "leases_enabled", "sync_branch"]


def attempt_and_publish(ws: Workspace, *, item_id: str | None, use_agent: bool, keep_open: bool = False,
                        allow_dirty: bool = False, progress: Callable[[str], None] = print) -> LeasedIteration:
    """One attempt of the serial loop and its push (`harness run`, `harness loop`): under the item's remote
    lease when leases are enabled (`leased_iteration`), else the attempt, then `publish`."""
    if leases_enabled(ws):
        return leased_iteration(ws, item_id=item_id, use_agent=use_agent, keep_open=keep_open,
                                allow_dirty=allow_dirty, progress=progress)
    result = run_iteration(ws, item_id=item_id, use_agent=use_agent, keep_open=keep_open, allow_dirty=allow_dirty,
                           progress=progress)
    return LeasedIteration(result, publish(ws, result, progress=progress), None)


def leased_iteration(ws: Workspace, *, item_id: str | None, use_agent: bool, keep_open: bool = False,
                     allow_dirty: bool = False, progress: Callable[[str], None] = print,
                     holder: Holder | None = None, now: Callable[[], datetime] = utc_now) -> LeasedIteration:
    """Steps 1-7 of the module. NothingActionable when nothing is left for this harness."""
    lease, onto = _lease_next(ws, item_id, holder or Holder.this_process(), progress, now)
    beat = heartbeat(ws, lease, now)
    try:
        with beat:
            result = run_iteration(ws, item_id=lease.item_id, use_agent=use_agent, keep_open=keep_open,
                                   allow_dirty=allow_dirty, progress=progress, trailers=takeover_trailers(lease))
    except HarnessError:  # unwound before anything was recorded: the item is free again
        release(ws.repo, beat.lease)
        raise
    return publish_held(ws, result, beat, onto=onto, progress=progress, now=now)


def _lease_next(ws: Workspace, item_id: str | None, holder: Holder, progress: Callable[[str], None],
                now: Callable[[], datetime]) -> tuple[RemoteLease, str]:
    """Take the lease of the named item or of the next one nobody else holds; (lease, remote head)."""
    push = ws.config.push
    assert push is not None
    ttl, max_attempts = ws.config.leases.ttl, ws.config.max_attempts
    refused: dict[str, str] = {}
    for _ in range(MAX_PICKS):
        sync_branch(ws, progress)
        try:
            held = fetch_leases(ws.repo, push.remote)
        except LeaseRefused as exc:
            raise HarnessError(str(exc)) from None
        others = {i: f"{i} ({lease.holder.describe()})" for i, lease in held.items()
                  if lease.holder != holder and not lease.free(now(), ttl)}
        others.update({i: why for i, why in refused.items() if i not in others})
        ledger = ws.load_ledger()
        selection = select_next(ledger, max_attempts=max_attempts)
        if item_id is not None:
            if item_id in others:
                raise NothingActionable(f"[{item_id}] is leased by another harness: {others[item_id]}")
            candidate = item_id
        else:
            if selection.to_block:
                ledger = block_exhausted(ws, ledger, selection.to_block, progress)
            chosen = startable(ledger, max_attempts=max_attempts, running=(), unavailable=tuple(others), limit=1)
            if not chosen:
                if select_next(ledger, max_attempts=max_attempts).item is None:
                    raise NothingActionable(f"nothing actionable in {ws.config.ledger}: {selection.reason}")
                raise NothingActionable("nothing left for this harness: the actionable items are leased by "
                                        "others: " + "; ".join(why for _, why in sorted(others.items())))
            candidate = chosen[0].id
        try:
            return claim(ws, candidate, holder, max_attempts=max_attempts, progress=progress, now=now)
        except NoLongerActionable as exc:
            if item_id is not None:
                raise LedgerError(f"item {candidate} is not actionable: {exc.why}") from None
            refused[candidate] = str(exc)
        except LeaseRefused as exc:
            if item_id is not None:
                raise NothingActionable(str(exc)) from None
            refused[candidate] = str(exc)
            progress(f"{exc}; the next item")
    raise NothingActionable(f"no lease could be taken in {MAX_PICKS} tries: other harnesses took each first")
