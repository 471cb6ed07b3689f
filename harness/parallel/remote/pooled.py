"""The remote leases of `harness loop --workers N` when several machines share the push remote (`push`
configured, `leases.enabled`): the pool (harness.parallel.pool) asks this object, in its main thread,
before it starts and after it lands each worker.

- Before each round of starts the pool follows the remote branch (harness.parallel.remote.held.sync_branch)
  and reads the remote's leases: an item another holder keeps alive is not started (`others`), one whose
  heartbeat is older than `leases.ttl` may be taken over.
- Before a worker starts, its item's lease is claimed (held.claim: compare-and-swap, the branch fetched
  again, the item checked still actionable there) and a heartbeat thread renews it while the worker works
  and waits in the merge queue. A takeover goes into the attempt's commit (`Harness-Lease-Takeover`).
- Before a worker lands, the branch is followed again, so the merge queue merges onto the remote's head and
  the merged tree is proven there (harness.parallel.landing); after it lands, the attempt is published under
  the lease (held.publish_held: the branch pushed by compare-and-swap together with the lease's release in
  one atomic push; a lost race replays and proves again; a lease taken over meanwhile withdraws the result).
- A worker stopped or crashed gives its lease back; so does every worker when the pool stops on a signal.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from harness.errors import HarnessError
from harness.gitops import head_sha
from harness.iteration import IterationResult
from harness.parallel.lease import Holder, LeaseRefused
from harness.parallel.remote.heartbeat import Heartbeat
from harness.parallel.remote.held import (
    LeasedIteration,
    claim,
    heartbeat,
    publish_held,
    sync_branch,
    takeover_trailers,
)
from harness.parallel.remote.lease import fetch_leases, release
from harness.workspace import Workspace


class PoolLeases:
    """The pool's remote leases, one heartbeat per item it works on (`beats`), and the remote head each
    landing is built on."""

    def __init__(self, ws: Workspace, holder: Holder, *, note: Callable[[str], None],
                 now: Callable[[], datetime]) -> None:
        self.ws, self.holder, self.note, self.now = ws, holder, note, now
        self.beats: dict[str, Heartbeat] = {}
        self.trailers: dict[str, tuple[tuple[str, str], ...]] = {}

    @property
    def remote(self) -> str:
        assert self.ws.config.push is not None
        return self.ws.config.push.remote

    def follow(self) -> None:
        """Move the main checkout onto the remote branch (HarnessError when it cannot be read or this
        checkout's own commits cannot be pushed first)."""
        sync_branch(self.ws, self.note)

    def others(self) -> dict[str, str]:
        """Item -> who holds it, for the items another holder keeps alive on the remote."""
        try:
            held = fetch_leases(self.ws.repo, self.remote)
        except LeaseRefused as exc:
            raise HarnessError(str(exc)) from None
        ttl = self.ws.config.leases.ttl
        return {i: f"{i} ({lease.holder.describe()})" for i, lease in held.items()
                if lease.holder != self.holder and not lease.free(self.now(), ttl)}

    def take(self, item_id: str, *, max_attempts: int) -> None:
        """Claim the item's lease and start its heartbeat (LeaseRefused as held.claim)."""
        lease, _ = claim(self.ws, item_id, self.holder, max_attempts=max_attempts, progress=self.note,
                         now=self.now)
        beat = heartbeat(self.ws, lease, self.now).__enter__()
        self.beats[item_id] = beat
        self.trailers[item_id] = takeover_trailers(lease)

    def before_landing(self) -> str:
        """The remote head the next landing merges onto: the branch followed first. When it cannot be, the
        landing merges onto this checkout's head and the push's compare-and-swap decides."""
        try:
            return sync_branch(self.ws, self.note)
        except HarnessError as exc:
            self.note(f"landing without following the remote first: {exc}")
            return head_sha(self.ws.repo)

    def publish(self, result: IterationResult, onto: str) -> LeasedIteration:
        """Stop the item's heartbeat and publish its recorded attempt under the lease (held.publish_held)."""
        beat = self.beats.pop(result.item_id)
        self.trailers.pop(result.item_id, None)
        beat.__exit__(None, None, None)
        done = publish_held(self.ws, result, beat, onto=onto, progress=self.note, now=self.now)
        for note in done.notes:
            self.note(f"lease: {note}")
        if done.pushed is not None:
            self.note(f"push: {done.pushed.message}")
        if done.lost is not None:
            self.note(f"[{result.item_id}] LEASE LOST: {done.lost}")
        return done

    def give_back(self, item_id: str) -> None:
        """Stop the item's heartbeat and release its lease (a worker that did not land)."""
        beat = self.beats.pop(item_id, None)
        self.trailers.pop(item_id, None)
        if beat is None:
            return
        beat.__exit__(None, None, None)
        if beat.lost is None:
            problem = release(self.ws.repo, beat.lease)
            if problem:
                self.note(f"lease: {problem}")

    def give_all_back(self) -> None:
        for item_id in list(self.beats):
            self.give_back(item_id)
