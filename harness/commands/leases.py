"""`harness leases [--remote] [--json]`: who holds which item, since when, and whether the holder is alive.

Two kinds of lease are listed: the ones in this repository (`harness loop --workers N` workers of a
harness on this machine, harness.parallel.lease) and the ones on the push remote (every machine's,
harness.parallel.remote.lease), as the last fetch saw them; `--remote` fetches them first. A remote lease
shows its heartbeat's age and whether it has expired (older than `leases.ttl`: another harness may take
the item over). Read-only: no lock is taken, nothing is changed."""
from __future__ import annotations

import json
from pathlib import Path

from harness.clock import utc_now
from harness.errors import ExitCode, HarnessError
from harness.parallel import lease as local_leases
from harness.parallel.remote.lease import LeaseRefused, fetch_leases, mirrored_leases
from harness.workspace import Workspace, open_workspace


def lease_rows(ws: Workspace, *, fetch: bool) -> list[dict]:
    """One row per lease: here (this repository) and on the push remote (fetched first when `fetch`)."""
    now, ttl = utc_now(), ws.config.leases.ttl
    rows = []
    for held in local_leases.all_leases(ws.repo):
        alive = held.holder.alive()
        rows.append({"item": held.item_id, "where": "here", "holder": held.holder.describe(),
                     "host": held.holder.host, "pid": held.holder.pid, "since": held.holder.started,
                     "heartbeat": None, "age_s": None, "expired": None if alive is None else not alive,
                     "took_over_from": None})
    push = ws.config.push
    if push is None:
        if fetch:
            raise HarnessError("`harness leases --remote` reads the push remote's leases, and `push` is not "
                               "configured in harness.yaml: set `push: {remote: origin, branch: main}`")
        return rows
    found = fetch_leases(ws.repo, push.remote) if fetch else mirrored_leases(ws.repo, push.remote)
    for lease in found.values():
        age = lease.age_s(now)
        rows.append({"item": lease.item_id, "where": push.remote, "holder": lease.holder.describe(),
                     "host": lease.holder.host, "pid": lease.holder.pid, "since": lease.taken,
                     "heartbeat": lease.heartbeat or None, "age_s": None if age is None else round(age),
                     "expired": lease.expired(now, ttl) if age is not None else None,
                     "took_over_from": lease.takeover.holder.describe() if lease.takeover else None})
    return rows


def leases(*, repo: Path, remote: bool = False, as_json: bool = False) -> int:
    ws = open_workspace(repo)
    try:
        rows = lease_rows(ws, fetch=remote)
    except LeaseRefused as exc:
        raise HarnessError(str(exc)) from None
    if as_json:
        print(json.dumps({"ttl_s": ws.config.leases.ttl, "fetched": remote, "leases": rows}, indent=2))
        return ExitCode.OK
    if not rows:
        where = "here or on the remote" if remote else "here (or on the remote as last fetched; --remote asks it)"
        print(f"no leases {where}")
        return ExitCode.OK
    print(f"{'item':<20} {'where':<10} {'since':<21} {'heartbeat':<16} holder")
    for row in rows:
        if row["age_s"] is not None:
            beat = f"{row['age_s']} s ago" + (" EXPIRED" if row["expired"] else "")
        elif row["where"] == "here":
            beat = {True: "holder gone", False: "holder alive", None: "-"}[row["expired"]]
        else:
            beat = "none"
        taken = f" (took over from {row['took_over_from']})" if row["took_over_from"] else ""
        print(f"{row['item']:<20} {row['where']:<10} {row['since'] or '?':<21} {beat:<16} {row['holder']}{taken}")
    if not remote and ws.config.push is not None:
        print(f"(remote leases as last fetched from {ws.config.push.remote}; --remote asks it now; "
              f"leases.ttl {ws.config.leases.ttl} s)")
    return ExitCode.OK
