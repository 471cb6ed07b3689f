"""What the serial loop (harness.parallel.remote.leased) and the worker pool (harness.parallel.remote.pooled)
share when several machines share the push remote (`push` configured, `leases.enabled`): following the
remote branch, claiming an item's remote lease, and publishing an attempt recorded under it.

- `sync_branch`: fetch the push branch and move this checkout onto it (commits only this checkout has are
  replayed onto it, proven again and pushed first, harness.durability.push).
- `claim`: take the item's lease by compare-and-swap (harness.parallel.remote.lease.take: an expired one is
  taken over), fetch the branch again and check the item is still actionable: a holder pushes its result
  before it gives its lease back, so a finished item is seen here once its lease is ours.
- `publish_held`: after the attempt is recorded (its heartbeat stopped), renew once more: a lease taken
  over meanwhile means another harness owns the item now, so the attempt's commit is withdrawn (saved on
  refs/harness/superseded/<ITEM>/<n>, the branch moved back) and nothing is pushed; a lease that vanished
  is reported and taken again if it is free. Then push by compare-and-swap on the remote head the attempt
  was built on and, in the same atomic push, give the lease back by compare-and-swap on the lease commit
  renewed last (harness.durability.push: a lost race replays and proves again, never an unproven tree; a
  lease lost during that replay withdraws the result too). A push that fails otherwise is kept pending
  with the lease it carries (which expires after `leases.ttl` meanwhile); `retry_pending_held`, run by
  every command that takes the lock, pushes it with the lease's release, or withdraws the attempt when
  the lease was taken over.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from harness.clock import utc_now
from harness.durability.push import (
    PushResult,
    load_pending,
    pending_leases,
    pending_path,
    push_branch,
    retry_pending,
)
from harness.errors import HarnessError
from harness.gitops import fetch_branch, head_sha, is_ancestor, move_head, parents_of, set_ref, trailers_of
from harness.iteration import IterationResult
from harness.iteration.pick import publish
from harness.ledger.selection import explain
from harness.parallel.lease import Holder, LeaseRefused
from harness.parallel.places import LEASE_PREFIX
from harness.parallel.remote.heartbeat import Heartbeat
from harness.parallel.remote.lease import RemoteLease, release, take
from harness.parallel.remote.lease import lost as lost_lease
from harness.workspace import Workspace

SUPERSEDED_PREFIX = "refs/harness/superseded/"


@dataclass(frozen=True)
class LeasedIteration:
    """The attempt (None when none ran), its push, and `lost`: why its result was withdrawn (its lease was
    taken over), else None. `notes`: what happened to the lease, for the console."""

    result: IterationResult
    pushed: PushResult | None
    lost: str | None
    notes: tuple[str, ...] = ()


class NoLongerActionable(LeaseRefused):
    """The item's lease was taken, but the remote's ledger says the item is not actionable (`why`): another
    harness finished or blocked it. The lease was given back."""

    def __init__(self, message: str, *, why: str) -> None:
        super().__init__(message)
        self.why = why


def leases_enabled(ws: Workspace) -> bool:
    return ws.config.push is not None and ws.config.leases.enabled


def sync_branch(ws: Workspace, progress: Callable[[str], None], *, retried: bool = False) -> str:
    """Fetch the push branch and fast-forward this checkout onto it; the remote's head. HarnessError when
    the remote cannot be read or this checkout has diverged from it. This checkout's own commits are pushed
    first; a pending push among them goes with the leases it carries (`retry_pending_held`)."""
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
    pending = retry_pending_held(ws, progress=progress) if load_pending(ws.repo) is not None else None
    if pending is not None and pending.lease_lost and not retried:  # withdrawn: follow the remote again
        progress(pending.message)
        return sync_branch(ws, progress, retried=True)
    pushed = pending or push_branch(ws, progress=progress)
    if not pushed.ok:
        raise HarnessError(f"this checkout has diverged from {push.remote} {push.branch}, and its own commits must "
                           f"reach the remote before the remote's ledger can be read here: {pushed.message}")
    return head_sha(ws.repo)


def claim(ws: Workspace, item_id: str, holder: Holder, *, max_attempts: int, progress: Callable[[str], None],
          now: Callable[[], datetime] = utc_now) -> tuple[RemoteLease, str]:
    """Take `item_id`'s lease on the push remote, then follow the branch and check the item is still
    actionable: (lease, remote head). LeaseRefused when a live holder has it or another harness won the
    race; NoLongerActionable (the lease given back) when the remote's ledger says it is not actionable."""
    push = ws.config.push
    assert push is not None
    ttl = ws.config.leases.ttl
    lease = take(ws.repo, push.remote, item_id, holder, ttl_s=ttl, identity=ws.config.commit.identity, now=now)
    try:
        onto = sync_branch(ws, progress)  # what its previous holder pushed is here now
        actionable, why = explain(ws.load_ledger(), item_id, max_attempts=max_attempts)
    except BaseException:
        release(ws.repo, lease)
        raise
    if not actionable:
        release(ws.repo, lease)
        raise NoLongerActionable(f"{item_id} ({why})", why=why)
    if lease.takeover is not None:
        progress(f"[{item_id}] taken over from {lease.takeover.holder.describe()} (last heartbeat "
                 f"{lease.takeover.heartbeat or 'none'}, older than leases.ttl {ttl} s)")
    progress(f"leased [{item_id}] on {push.remote}")
    return lease, onto


def takeover_trailers(lease: RemoteLease) -> tuple[tuple[str, str], ...]:
    """The attempt commit's `Harness-Lease-Takeover` trailer when the lease began with a takeover."""
    t = lease.takeover
    if t is None:
        return ()
    saved = f", work saved on {', '.join(r for r, _ in t.saved)}" if t.saved else ""
    value = f"{t.holder.describe()}, last heartbeat {t.heartbeat or 'none'}, lease {t.sha[:12]}{saved}"
    return (("Harness-Lease-Takeover", value),)


def heartbeat(ws: Workspace, lease: RemoteLease, now: Callable[[], datetime] = utc_now) -> Heartbeat:
    """The heartbeat for `lease`: renewed every third of `leases.ttl` (at least each second)."""
    return Heartbeat(ws.root, lease, interval_s=max(1.0, ws.config.leases.ttl / 3),
                     identity=ws.config.commit.identity, now=now)


def publish_held(ws: Workspace, result: IterationResult, beat: Heartbeat, *, onto: str,
                 progress: Callable[[str], None], now: Callable[[], datetime] = utc_now) -> LeasedIteration:
    """Publish the recorded attempt `result` under the lease `beat` kept (its thread stopped), built on the
    remote head `onto`, as the module says."""
    lease = beat.lease
    notes = [f"missed heartbeat: {m}" for m in beat.missed]
    held = beat.beat_once() if beat.lost is None else None
    lost = beat.lost
    if lost is not None and lost.kind == "vanished":
        notes.append(str(lost))
        try:
            held = take(ws.repo, lease.remote, lease.item_id, lease.holder, ttl_s=ws.config.leases.ttl,
                        identity=ws.config.commit.identity, now=now)
            notes.append(f"[{lease.item_id}]: the lease was free and is taken again; the result is pushed")
            lost = None
        except LeaseRefused as exc:
            notes.append(f"[{lease.item_id}]: the lease could not be taken again: {exc}")
    if lost is not None:
        return LeasedIteration(result, None, withdraw(ws, result, str(lost)), tuple(notes))
    if held is None:  # the remote could not be asked: push anyway, the branch's compare-and-swap guards it
        held = beat.lease
    pushed = publish(ws, result, progress, expected=onto, lease=(held.ref, held.sha))
    if pushed is not None and pushed.lease_lost:
        why = str(lost_lease(ws.repo, held))
        return LeasedIteration(result, pushed, withdraw(ws, result, why, head=head_sha(ws.repo)), tuple(notes))
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


def withdraw(ws: Workspace, result: IterationResult, why: str, *, head: str | None = None) -> str:
    """Take the attempt's commit (`head`: the commit it became when it was replayed onto the remote) off
    the branch, saved on a ref, when the item's lease was taken over."""
    commit = head or result.commit
    if commit is None or head_sha(ws.repo) != commit:
        return why
    return _withdraw_head(ws, result.item_id, str(result.attempt), why)


def _withdraw_head(ws: Workspace, item_id: str, label: str, why: str) -> str:
    commit = head_sha(ws.repo)
    ref = f"{SUPERSEDED_PREFIX}{item_id}/{label}"
    set_ref(ws.repo, ref, commit, reason=f"harness: {item_id} lease lost")
    parent = parents_of(ws.repo, commit)[0]
    move_head(ws.repo, commit, parent, reason=f"harness: {item_id} lease taken over")
    return f"{why}; this attempt's commit {commit[:10]} is withdrawn (saved on {ref}), nothing was pushed"


def retry_pending_held(ws: Workspace, *, progress: Callable[[str], None] = lambda _: None) -> PushResult | None:
    """Retry a pending push (harness.durability.push.retry_pending: with the leases it carries given back in
    the same atomic push). When one of them was taken over meanwhile nothing is pushed, and the attempt it
    guarded, when it is the branch's head, is withdrawn as `publish_held` withdraws one (saved on
    refs/harness/superseded/<ITEM>/pending-<commit>); the rest of the branch is then pushed as usual."""
    leased = {ref.removeprefix(LEASE_PREFIX) for ref, _ in pending_leases(load_pending(ws.repo))}
    pushed = retry_pending(ws, progress=progress)
    if pushed is None or not pushed.lease_lost:
        return pushed
    head = head_sha(ws.repo)
    item = (trailers_of(ws.repo, head).get("Harness-Item") or [""])[-1]
    if item not in leased:
        return replace(pushed, message=f"{pushed.message}; the commit it guarded is not this branch's head: "
                       "take it off by hand (`git log`), then push")
    why = _withdraw_head(ws, item, f"pending-{head[:10]}", pushed.message)
    pending_path(ws.repo).unlink(missing_ok=True)
    rest = push_branch(ws, progress=progress)
    return replace(pushed, message=f"{why}; the rest of the branch: {rest.message}")
