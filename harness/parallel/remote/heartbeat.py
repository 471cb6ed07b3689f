"""The holder's heartbeat: a thread that renews a remote lease every `interval_s` while its item is worked
on (harness.parallel.remote.lease.renew), and remembers when the lease was lost.

The thread opens its own handle on the repository and only writes objects and pushes the lease ref: it
never touches the branch, the index or the working tree the iteration works in. A remote that cannot be
reached is retried at the next beat (the lease expires only after `leases.ttl`); a lease taken over or
vanished stops the beats and is kept in `lost`, for the holder to act on at its next step.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Self

import git

from harness.clock import utc_now
from harness.gitops import open_repo
from harness.parallel.lease import LeaseRefused
from harness.parallel.remote.lease import LeaseLost, RemoteLease, renew


class Heartbeat:
    """`with Heartbeat(root, lease, ...) as beat:` renews the lease in the background; `beat.lease` is the
    latest renewed lease, `beat.lost` the LeaseLost that stopped it (None while it holds), `beat.missed`
    the renewals the remote could not be asked for."""

    def __init__(self, root: Path, lease: RemoteLease, *, interval_s: float, identity: tuple[str, str],
                 now: Callable[[], datetime] = utc_now) -> None:
        self.root, self.interval_s, self.identity, self.now = root, interval_s, identity, now
        self.lease = lease
        self.lost: LeaseLost | None = None
        self.missed: list[str] = []
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._thread = threading.Thread(target=self._beat, name=f"harness-heartbeat-{lease.item_id}", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        repo = open_repo(self.root)
        while not self._stop.wait(self.interval_s):
            self.beat_once(repo)
            if self.lost is not None:
                return

    def beat_once(self, repo: git.Repo | None = None) -> RemoteLease | None:
        """Renew now (also called by the holder before it records its result on the remote); the renewed
        lease, or None when it is lost (see `lost`) or the remote could not be asked (see `missed`)."""
        with self._guard:
            if self.lost is not None:
                return None
            try:
                self.lease = renew(repo or open_repo(self.root), self.lease, identity=self.identity,
                                   now=self.now)
            except LeaseLost as exc:
                self.lost = exc
                return None
            except LeaseRefused as exc:
                self.missed.append(str(exc))
                return None
            return self.lease
