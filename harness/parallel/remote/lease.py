"""Remote leases: `refs/harness/lease/<ITEM>` on the push remote names the one harness working on an item.

A lease is a root commit of the empty tree. Its message holds the lease as one line of JSON (holder host,
pid and start, when the lease was taken, its heartbeat, renewals, the takeover it began with) and, as
trailers, the holder (the format harness.parallel.lease reads, so `harness loop --workers N` and the serial
loop see each other's leases):

    harness lease on CALC-001

    {"item": "CALC-001", "holder": {...}, "taken": "...", "heartbeat": "...", "renewals": 3, ...}

    Harness-Lease-Item: CALC-001
    ...

Every change of the remote ref is a compare-and-swap (`git push --force-with-lease=REF:EXPECTED`): taking
a free lease expects no ref; renewing the heartbeat, releasing and taking over expect the commit last
seen. Of two harnesses racing, git's atomic ref update lets exactly one win. A renewal the remote refuses
means the lease was taken over (another holder's commit is there) or vanished (no ref: someone deleted or
force-pushed refs/harness/*); the holder is told which (LeaseLost).

A lease whose heartbeat is older than `leases.ttl` seconds may be taken over, and so may one whose holder
is a process on this host that is gone. Before it is, every ref the
dead holder pushed under `refs/harness/work/<ITEM>/` is copied to
`refs/harness/taken-over/<ITEM>/<old lease>/...` on the remote (so a later push cannot erase it), and the
new lease records whom it took over from, that holder's last heartbeat and the copies. A lease without a
heartbeat (one `harness loop --workers N` pushed) never expires: its holder cannot be judged from here.

Leases are read by mirroring the remote's refs/harness/lease/* to refs/harness/remote-lease/* here
(`git fetch --prune`), so a lease removed on the remote disappears here too.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import git

from harness.clock import iso, parse_iso, utc_now
from harness.errors import HarnessError
from harness.gitops import (
    commit_message,
    fetch_refs,
    message_commit,
    push_ref_cas,
    refs_under,
    remote_refs,
    trailers_of,
)
from harness.parallel.lease import Holder, LeaseRefused, all_leases
from harness.parallel.places import LEASE_PREFIX

MIRROR_PREFIX = "refs/harness/remote-lease/"
WORK_PREFIX = "refs/harness/work/"
TAKEN_OVER_PREFIX = "refs/harness/taken-over/"
WORK_MIRROR_PREFIX = "refs/harness/remote-work/"


@dataclass(frozen=True)
class Takeover:
    """Whom a lease was taken over from: that holder, its lease commit and last heartbeat, and the copies
    of its pushed work (remote ref -> commit)."""

    holder: Holder
    sha: str
    heartbeat: str
    saved: tuple[tuple[str, str], ...] = ()

    def as_record(self) -> dict:
        return {"holder": _holder_record(self.holder), "sha": self.sha, "heartbeat": self.heartbeat,
                "saved": dict(self.saved)}


@dataclass(frozen=True)
class RemoteLease:
    """One lease as the remote holds it. `heartbeat` and `taken` are ISO UTC ("" for a lease that has none)."""

    item_id: str
    remote: str
    sha: str
    holder: Holder
    taken: str
    heartbeat: str
    renewals: int = 0
    takeover: Takeover | None = None

    @property
    def ref(self) -> str:
        return LEASE_PREFIX + self.item_id

    def age_s(self, now: datetime) -> float | None:
        """Seconds since the last heartbeat; None for a lease without one."""
        beat = parse_iso(self.heartbeat) if self.heartbeat else None
        return None if beat is None else max(0.0, (now - beat).total_seconds())

    def expired(self, now: datetime, ttl_s: float) -> bool:
        age = self.age_s(now)
        return age is not None and age > ttl_s

    def free(self, now: datetime, ttl_s: float) -> bool:
        """Whether another harness may take the item over: the heartbeat expired, or the holder is a process
        on this host that is gone."""
        return self.expired(now, ttl_s) or self.holder.alive() is False

    def as_record(self) -> dict:
        return {"item": self.item_id, "holder": _holder_record(self.holder), "taken": self.taken,
                "heartbeat": self.heartbeat, "renewals": self.renewals,
                "takeover": self.takeover.as_record() if self.takeover else None}


class LeaseLost(HarnessError):
    """The holder's lease is no longer its own on the remote: `kind` is "taken over" (`by` names the new
    holder) or "vanished" (the ref is gone: deleted or overwritten by a push of refs/harness/*)."""

    def __init__(self, message: str, *, kind: str, by: Holder | None = None) -> None:
        super().__init__(message)
        self.kind, self.by = kind, by


def _holder_record(holder: Holder) -> dict:
    return {"host": holder.host, "pid": holder.pid, "started": holder.started}


def _holder_of(record: object) -> Holder:
    r = record if isinstance(record, dict) else {}
    pid = r.get("pid", 0)
    return Holder(str(r.get("host", "?")), pid if isinstance(pid, int) else 0, str(r.get("started", "")))


def _message(lease: RemoteLease) -> str:
    h = lease.holder
    return (f"harness lease on {lease.item_id}\n\n{json.dumps(lease.as_record(), sort_keys=True)}\n\n"
            f"Harness-Lease-Item: {lease.item_id}\nHarness-Lease-Host: {h.host}\nHarness-Lease-Pid: {h.pid}\n"
            f"Harness-Lease-Started: {h.started or 'unknown'}\n")


def parse_lease(repo: git.Repo, remote: str, item_id: str, sha: str) -> RemoteLease:
    """The lease commit `sha`: from its JSON line, or (a lease without one) from its trailers alone."""
    for line in commit_message(repo, sha).splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                break
            over = record.get("takeover")
            takeover = Takeover(_holder_of(over.get("holder")), str(over.get("sha", "")),
                                str(over.get("heartbeat", "")),
                                tuple(sorted((over.get("saved") or {}).items()))) if isinstance(over, dict) else None
            renewals = record.get("renewals", 0)
            return RemoteLease(item_id, remote, sha, _holder_of(record.get("holder")), str(record.get("taken", "")),
                               str(record.get("heartbeat", "")), renewals if isinstance(renewals, int) else 0,
                               takeover)
    trailers = {key: values[-1] for key, values in trailers_of(repo, sha).items()}
    pid = trailers.get("Harness-Lease-Pid", "0")
    started = trailers.get("Harness-Lease-Started", "")
    holder = Holder(trailers.get("Harness-Lease-Host", "?"), int(pid) if pid.isdigit() else 0,
                    "" if started == "unknown" else started)
    return RemoteLease(item_id, remote, sha, holder, holder.started, "")


def fetch_leases(repo: git.Repo, remote: str) -> dict[str, RemoteLease]:
    """Every lease on `remote`, by item (mirrored here first); LeaseRefused when the remote cannot be asked."""
    answer = fetch_refs(repo, remote, LEASE_PREFIX, MIRROR_PREFIX)
    if not answer.ok:
        last = answer.output.strip().splitlines()[-1:] or ["no output"]
        raise LeaseRefused(f"the leases on {remote} could not be read ({last[0]}); nothing is taken while the "
                           "remote cannot be asked: check the remote")
    return mirrored_leases(repo, remote)


def mirrored_leases(repo: git.Repo, remote: str) -> dict[str, RemoteLease]:
    """The leases as the last fetch saw them (no network)."""
    found = {}
    for ref, sha in sorted(refs_under(repo, MIRROR_PREFIX).items()):
        item_id = ref.removeprefix(MIRROR_PREFIX)
        found[item_id] = parse_lease(repo, remote, item_id, sha)
    return found


def known_holders(repo: git.Repo, remote: str | None) -> dict[str, str]:
    """Item -> who holds it, from the leases in this repository and the remote's as last fetched (no
    network): for the report's in-progress items."""
    held = {lease.item_id: lease.holder.describe() for lease in all_leases(repo)}
    if remote is not None:
        for item_id, lease in mirrored_leases(repo, remote).items():
            held.setdefault(item_id, f"{lease.holder.describe()} (lease on {remote}, heartbeat {lease.heartbeat or 'none'})")
    return held


def _push(repo: git.Repo, lease: RemoteLease, expected: str | None, *, identity: tuple[str, str]) -> str | None:
    """Write `lease` as a new commit and swap it in for `expected` on the remote: its sha, or None when the
    remote refused (it no longer holds `expected`). LeaseRefused when the remote could not be asked."""
    sha = message_commit(repo, _message(lease), identity=identity)
    answer = push_ref_cas(repo, lease.remote, lease.ref, sha, expected)
    if answer.ok:
        return sha
    if any(line.startswith("!") for line in answer.output.splitlines()):
        return None
    last = answer.output.strip().splitlines()[-1:] or ["no output"]
    raise LeaseRefused(f"[{lease.item_id}]: the lease on {lease.remote} could not be written ({last[0]})")


def take(repo: git.Repo, remote: str, item_id: str, holder: Holder, *, ttl_s: float, identity: tuple[str, str],
         now: Callable[[], datetime] = utc_now) -> RemoteLease:
    """Take the lease on `item_id` on `remote`: a free one, or one whose heartbeat is older than `ttl_s`
    (taken over, its holder's pushed work copied first). LeaseRefused when a live holder has it, another
    harness won the race, or the remote cannot be asked."""
    current = fetch_leases(repo, remote).get(item_id)
    stamp = iso(now())
    fresh = RemoteLease(item_id, remote, "", holder, stamp, stamp)
    if current is not None and current.holder != holder:
        if not current.free(now(), ttl_s):
            age = current.age_s(now())
            beat = f"last heartbeat {age:.0f} s ago" if age is not None else "no heartbeat: it never expires"
            raise LeaseRefused(f"[{item_id}] is leased on {remote} by {current.holder.describe()} ({beat}; "
                               f"ttl {ttl_s:g} s)")
        saved = save_work(repo, remote, item_id, current.sha)
        fresh = RemoteLease(item_id, remote, "", holder, stamp, stamp,
                            takeover=Takeover(current.holder, current.sha, current.heartbeat, saved))
    sha = _push(repo, fresh, current.sha if current else None, identity=identity)
    if sha is None:
        raise LeaseRefused(f"[{item_id}]: another harness took the lease on {remote} first")
    return RemoteLease(item_id, remote, sha, holder, fresh.taken, fresh.heartbeat, 0, fresh.takeover)


def save_work(repo: git.Repo, remote: str, item_id: str, old_lease: str) -> tuple[tuple[str, str], ...]:
    """Copy the refs under refs/harness/work/<ITEM>/ on `remote` to refs/harness/taken-over/<ITEM>/<old
    lease>/ there (compare-and-swap on an absent ref: a copy is never overwritten). LeaseRefused when the
    work cannot be read or copied: an item whose holder's work might be lost is not taken over."""
    prefix = f"{WORK_PREFIX}{item_id}/"
    refs = remote_refs(repo, remote, prefix)
    if refs is None:
        raise LeaseRefused(f"[{item_id}]: the work under {prefix} on {remote} could not be listed; not taken over")
    if not refs:
        return ()
    fetched = fetch_refs(repo, remote, prefix, f"{WORK_MIRROR_PREFIX}{item_id}/")
    if not fetched.ok:
        raise LeaseRefused(f"[{item_id}]: the work under {prefix} on {remote} could not be fetched; not taken over")
    saved = []
    for ref, sha in sorted(refs.items()):
        copy = f"{TAKEN_OVER_PREFIX}{item_id}/{old_lease[:12]}/{ref.removeprefix(prefix)}"
        answer = push_ref_cas(repo, remote, copy, sha, None)
        if not answer.ok and f"{copy}" not in (remote_refs(repo, remote, copy) or {}):
            raise LeaseRefused(f"[{item_id}]: {ref} on {remote} could not be saved to {copy}; not taken over")
        saved.append((copy, sha))
    return tuple(saved)


def renew(repo: git.Repo, lease: RemoteLease, *, identity: tuple[str, str],
          now: Callable[[], datetime] = utc_now) -> RemoteLease:
    """A new heartbeat for `lease`, by compare-and-swap on the commit last written. LeaseLost when the
    remote holds another lease there or none; LeaseRefused when the remote could not be asked (the
    lease may still be ours: try again)."""
    beat = RemoteLease(lease.item_id, lease.remote, "", lease.holder, lease.taken, iso(now()), lease.renewals + 1,
                       lease.takeover)
    sha = _push(repo, beat, lease.sha, identity=identity)
    if sha is not None:
        return RemoteLease(beat.item_id, beat.remote, sha, beat.holder, beat.taken, beat.heartbeat, beat.renewals,
                           beat.takeover)
    raise lost(repo, lease)


def lost(repo: git.Repo, lease: RemoteLease) -> LeaseLost:
    """Why the remote no longer holds `lease` (read from it now)."""
    try:
        now_there = fetch_leases(repo, lease.remote).get(lease.item_id)
    except LeaseRefused:
        now_there = None
    if now_there is None:
        return LeaseLost(f"[{lease.item_id}]: the lease {lease.ref} vanished from {lease.remote} under its holder "
                         f"(the ref was deleted, or overwritten by a push of refs/harness/*: protect those refs "
                         f"on the server, README \"Several machines, one remote\")", kind="vanished")
    return LeaseLost(f"[{lease.item_id}]: the lease on {lease.remote} was taken over by "
                     f"{now_there.holder.describe()}; this harness stops the item", kind="taken over",
                     by=now_there.holder)


def release(repo: git.Repo, lease: RemoteLease) -> str | None:
    """Give the lease back if the remote still holds this one; a problem to report, or None."""
    answer = push_ref_cas(repo, lease.remote, lease.ref, None, lease.sha)
    if answer.ok:
        return None
    if any(line.startswith("!") for line in answer.output.splitlines()):
        return str(lost(repo, lease))
    return (f"the lease {lease.ref} on {lease.remote} could not be removed ({answer.output.strip()[-200:]}); "
            f"it expires after leases.ttl, or remove it with `git push {lease.remote} :{lease.ref}`")
