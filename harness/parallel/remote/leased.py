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
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from harness.clock import utc_now
from harness.durability.push import PushResult, push_branch
from harness.errors import HarnessError, LedgerError, NothingActionable
from harness.gitops import fetch_branch, head_sha, is_ancestor, move_head, parents_of, set_ref
from harness.iteration import IterationResult
from harness.iteration.pick import block_exhausted, publish, run_iteration
from harness.ledger.selection import explain, select_next
from harness.parallel.lease import Holder, LeaseRefused
from harness.parallel.ready import startable
from harness.parallel.remote.heartbeat import Heartbeat
from harness.parallel.remote.lease import RemoteLease, fetch_leases, release, take
from harness.parallel.remote.lease import lost as lost_lease
from harness.workspace import Workspace

MAX_PICKS = 20  # leases lost to races before this harness reports that it found nothing to take
SUPERSEDED_PREFIX = "refs/harness/superseded/"


@dataclass(frozen=True)
class LeasedIteration:
    """The attempt (None when none ran), its push, and `lost`: why its result was withdrawn (its lease was
    taken over), else None. `notes`: what happened to the lease, for the console."""

    result: IterationResult
    pushed: PushResult | None
    lost: str | None
    notes: tuple[str, ...] = ()


def leases_enabled(ws: Workspace) -> bool:
    return ws.config.push is not None and ws.config.leases.enabled


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


def sync_branch(ws: Workspace, progress: Callable[[str], None]) -> str:
    """Fetch the push branch and fast-forward this checkout onto it; the remote's head. HarnessError when
    the remote cannot be read or this checkout has diverged from it."""
    push = ws.config.push
    assert push is not None
    fetched = fetch_branch(ws.repo, push.remote, push.branch)
    if fetched.head is None:
        raise HarnessError(f"{push.remote} {push.branch} could not be fetched ({fetched.answer.output[-300:]}); "
                           "with leases the remote's ledger is the truth and nothing is selected without it: "
                           "check the remote (push the branch there first if it does not exist)")
    head, remote = head_sha(ws.repo), fetched.head
    if head == remote or is_ancestor(ws.repo, remote, head):
        return remote
    if is_ancestor(ws.repo, head, remote):
        move_head(ws.repo, head, remote, reason=f"harness: fast-forward onto {push.remote} {push.branch}")
        progress(f"moved onto {push.remote} {push.branch} at {remote[:10]}")
        return remote
    # Commits only this checkout has (an interrupted attempt recorded after a restart, a push left pending)
    # go to the remote first, replayed onto its head and proven again there (harness.durability.push).
    progress(f"this checkout ({head[:10]}) has commits {push.remote} {push.branch} ({remote[:10]}) lacks; "
             "pushing them first")
    pushed = push_branch(ws, progress=progress)
    if not pushed.ok:
        raise HarnessError(f"this checkout has diverged from {push.remote} {push.branch}, and its own commits must "
                           f"reach the remote before the remote's ledger can be read here: {pushed.message}")
    return head_sha(ws.repo)


def leased_iteration(ws: Workspace, *, item_id: str | None, use_agent: bool, keep_open: bool = False,
                     allow_dirty: bool = False, progress: Callable[[str], None] = print,
                     holder: Holder | None = None, now: Callable[[], datetime] = utc_now) -> LeasedIteration:
    """Steps 1-7 of the module. NothingActionable when nothing is left for this harness."""
    lease, onto = _lease_next(ws, item_id, holder or Holder.this_process(), progress, now)
    trailers = ()
    if lease.takeover is not None:
        t = lease.takeover
        trailers = (("Harness-Lease-Takeover", f"{t.holder.describe()}, last heartbeat {t.heartbeat or 'none'}, "
                     f"lease {t.sha[:12]}" + (f", work saved on {', '.join(r for r, _ in t.saved)}" if t.saved else "")),)
    identity = ws.config.commit.identity
    interval = max(1.0, ws.config.leases.ttl / 3)
    beat = Heartbeat(ws.root, lease, interval_s=interval, identity=identity, now=now)
    try:
        with beat:
            result = run_iteration(ws, item_id=lease.item_id, use_agent=use_agent, keep_open=keep_open,
                                   allow_dirty=allow_dirty, progress=progress, trailers=trailers)
    except HarnessError:  # unwound before anything was recorded: the item is free again
        release(ws.repo, beat.lease)
        raise
    notes = [f"missed heartbeat: {m}" for m in beat.missed]
    held = beat.beat_once() if beat.lost is None else None
    lost = beat.lost
    if lost is not None and lost.kind == "vanished":
        notes.append(str(lost))
        try:
            held = take(ws.repo, lease.remote, lease.item_id, lease.holder, ttl_s=ws.config.leases.ttl,
                        identity=identity, now=now)
            notes.append(f"[{lease.item_id}]: the lease was free and is taken again; the result is pushed")
            lost = None
        except LeaseRefused as exc:
            notes.append(f"[{lease.item_id}]: the lease could not be taken again: {exc}")
    if lost is not None:
        return LeasedIteration(result, None, _withdraw(ws, result, str(lost)), tuple(notes))
    if held is None:  # the remote could not be asked: push anyway, the branch's compare-and-swap guards it
        held = beat.lease
    pushed = publish(ws, result, progress, expected=onto, lease=(held.ref, held.sha))
    if pushed is not None and pushed.lease_lost:
        why = str(lost_lease(ws.repo, held))
        return LeasedIteration(result, pushed, _withdraw(ws, result, why, head=head_sha(ws.repo)), tuple(notes))
    if pushed is not None and pushed.ok:  # the lease went in the same atomic push
        return LeasedIteration(result, pushed, None, tuple(notes))
    if pushed is not None and not pushed.ok:
        notes.append(f"[{lease.item_id}]: the lease is kept until the push lands (it expires after "
                     f"{ws.config.leases.ttl} s without a heartbeat)")
        return LeasedIteration(result, pushed, None, tuple(notes))
    problem = release(ws.repo, held)
    if problem:
        notes.append(problem)
    return LeasedIteration(result, pushed, None, tuple(notes))


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
            lease = take(ws.repo, push.remote, candidate, holder, ttl_s=ttl, identity=ws.config.commit.identity,
                         now=now)
        except LeaseRefused as exc:
            if item_id is not None:
                raise NothingActionable(str(exc)) from None
            refused[candidate] = str(exc)
            progress(f"{exc}; the next item")
            continue
        try:
            onto = sync_branch(ws, progress)  # what its previous holder pushed is here now
            actionable, why = explain(ws.load_ledger(), candidate, max_attempts=max_attempts)
        except BaseException:
            release(ws.repo, lease)
            raise
        if not actionable:
            release(ws.repo, lease)
            if item_id is not None:
                raise LedgerError(f"item {candidate} is not actionable: {why}")
            refused[candidate] = f"{candidate} ({why})"
            continue
        if lease.takeover is not None:
            progress(f"[{candidate}] taken over from {lease.takeover.holder.describe()} (last heartbeat "
                     f"{lease.takeover.heartbeat or 'none'}, older than leases.ttl {ttl} s)")
        progress(f"leased [{candidate}] on {push.remote}")
        return lease, onto
    raise NothingActionable(f"no lease could be taken in {MAX_PICKS} tries: other harnesses took each first")


def _withdraw(ws: Workspace, result: IterationResult, why: str, *, head: str | None = None) -> str:
    """Take the attempt's commit (`head`: the commit it became when it was replayed onto the remote) off
    the branch, saved on a ref, when the item's lease was taken over."""
    commit = head or result.commit
    if commit is None or head_sha(ws.repo) != commit:
        return why
    ref = f"{SUPERSEDED_PREFIX}{result.item_id}/{result.attempt}"
    set_ref(ws.repo, ref, commit, reason=f"harness: {result.item_id} lease lost")
    parent = parents_of(ws.repo, commit)[0]
    move_head(ws.repo, commit, parent, reason=f"harness: {result.item_id} lease taken over")
    return f"{why}; this attempt's commit {commit[:10]} is withdrawn (saved on {ref}), nothing was pushed"
