"""Leases: a worker holds its item through the ref `refs/harness/lease/<ITEM>`, so no other harness process
(or, with `push` configured, no harness on another machine sharing the remote) takes the same item.

A lease is a root commit of the empty tree whose trailers name its holder:

    Harness-Lease-Item: CALC-001
    Harness-Lease-Host: build-3
    Harness-Lease-Pid: 41234
    Harness-Lease-Started: 2026-11-26T01:10:50Z     (when the holder process started)

It is taken with a compare-and-swap ref update that succeeds only if the ref does not exist yet, and given
back with one that deletes it only if it still holds this lease. With a remote, the same ref is then taken
there too, by `git push --force-with-lease=REF:` (only if the remote has no such ref); a refusal gives the
local lease back, and so does a remote that cannot be reached (the item is not worked on unguarded). A holder on this host is alive when its
pid runs and that process started at the recorded time (a reused pid started later); one on another host
cannot be checked from here, and its lease is left alone.
"""
from __future__ import annotations

import os
import socket
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import git

from harness.clock import iso
from harness.errors import HarnessError
from harness.gitops import (
    delete_ref_cas,
    message_commit,
    push_ref_cas,
    read_ref,
    refs_under,
    trailers_of,
    update_ref_cas,
)
from harness.parallel.places import LEASE_PREFIX
from harness.proc import process_alive


@dataclass(frozen=True)
class Holder:
    host: str
    pid: int
    started: str  # ISO UTC to the second; "" where /proc cannot tell

    @classmethod
    def this_process(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), process_started(os.getpid()))

    def alive(self) -> bool | None:
        """Whether the holder still runs: None when it is on another host (unknown from here)."""
        if self.host != socket.gethostname():
            return None
        if not process_alive(self.pid):
            return False
        started = process_started(self.pid)
        return not (self.started and started and started != self.started)

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started or 'at an unknown time'}"


class LeaseRefused(HarnessError):
    """Someone else holds the item's lease (here or on the remote), or the remote could not be asked."""


@dataclass(frozen=True)
class Lease:
    item_id: str
    ref: str
    sha: str
    holder: Holder
    remote: str | None = None  # also held on this remote


@cache
def _boot_time() -> float | None:
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii", errors="replace").splitlines()
    except OSError:
        return None
    return next((float(line.split()[1]) for line in lines if line.startswith("btime ")), None)


def process_started(pid: int) -> str:
    """When process `pid` started, from /proc (its start in clock ticks after boot); "" if unknown."""
    boot = _boot_time()
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""
    fields = stat[stat.rfind(")") + 2:].split(" ")
    if boot is None or len(fields) < 20:
        return ""
    ticks = int(fields[19])  # field 22 of stat(5), counting from the state field as 3
    return iso(datetime.fromtimestamp(boot + ticks / os.sysconf("SC_CLK_TCK"), UTC))


def _message(item_id: str, holder: Holder) -> str:
    return (f"harness lease on {item_id}\n\nHarness-Lease-Item: {item_id}\nHarness-Lease-Host: {holder.host}\n"
            f"Harness-Lease-Pid: {holder.pid}\nHarness-Lease-Started: {holder.started or 'unknown'}\n")


def _parse(repo: git.Repo, ref: str, sha: str) -> Lease:
    trailers = {key: values[-1] for key, values in trailers_of(repo, sha).items()}
    pid = trailers.get("Harness-Lease-Pid", "0")
    started = trailers.get("Harness-Lease-Started", "")
    holder = Holder(trailers.get("Harness-Lease-Host", "?"), int(pid) if pid.isdigit() else 0,
                    "" if started == "unknown" else started)
    return Lease(ref.removeprefix(LEASE_PREFIX), ref, sha, holder)


def acquire(repo: git.Repo, item_id: str, holder: Holder, *, identity: tuple[str, str],
            remote: str | None = None) -> Lease:
    """Take the lease on `item_id` here (and on `remote`); LeaseRefused when someone holds it already."""
    ref = LEASE_PREFIX + item_id
    sha = message_commit(repo, _message(item_id, holder), identity=identity)
    if not update_ref_cas(repo, ref, sha, None, reason=f"harness: lease {item_id}"):
        held = read(repo, item_id)
        raise LeaseRefused(f"[{item_id}] is leased by {held.holder.describe() if held else 'another harness'}")
    if remote is None:
        return Lease(item_id, ref, sha, holder)
    answer = push_ref_cas(repo, remote, ref, sha, None)
    if answer.ok:
        return Lease(item_id, ref, sha, holder, remote)
    delete_ref_cas(repo, ref, sha)
    if _refused(answer.output):
        raise LeaseRefused(f"[{item_id}] is leased on {remote} by another harness (`git fetch {remote} {ref}` "
                           f"and `git log -1 FETCH_HEAD` name it)")
    last = answer.output.strip().splitlines()[-1:] or ["no output"]
    raise LeaseRefused(f"[{item_id}]: its lease could not be taken on {remote} ({last[0]}); the item is left "
                       "alone rather than worked on unguarded: check the remote")


def read(repo: git.Repo, item_id: str) -> Lease | None:
    ref = LEASE_PREFIX + item_id
    sha = read_ref(repo, ref)
    return None if sha is None else _parse(repo, ref, sha)


def all_leases(repo: git.Repo, *, skip: Collection[str] = ()) -> list[Lease]:
    """Every lease in the repository, but those on the items in `skip` (not read)."""
    return [_parse(repo, ref, sha) for ref, sha in sorted(refs_under(repo, LEASE_PREFIX).items())
            if ref.removeprefix(LEASE_PREFIX) not in skip]


def release(repo: git.Repo, lease: Lease) -> bool:
    """Give the lease back here; False when the ref no longer holds it (nothing is deleted then)."""
    return delete_ref_cas(repo, lease.ref, lease.sha)


def release_remote(repo: git.Repo, lease: Lease, remote: str) -> str | None:
    """Give the lease back on `remote` if it still holds this one there; a problem to report, or None."""
    answer = push_ref_cas(repo, remote, lease.ref, None, lease.sha)
    if answer.ok or _refused(answer.output):  # refused: not ours there (never pushed, or already gone)
        return None
    return (f"the lease {lease.ref} on {remote} could not be removed ({answer.output.strip()[-200:]}); once no "
            f"harness works on [{lease.item_id}], remove it with `git push {remote} :{lease.ref}`")


def _refused(push_output: str) -> bool:
    return any(line.startswith("!") for line in push_output.splitlines())
