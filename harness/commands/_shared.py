"""Pieces shared by the commands that take the repository lock (run, loop, verify, next)."""
from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

from harness.durability.lock import RepoLock
from harness.durability.recovery import recover
from harness.iteration import IterationResult
from harness.parallel.recovery import recover_workers
from harness.parallel.remote.held import retry_pending_held
from harness.workspace import Workspace


@contextmanager
def repo_lock(ws: Workspace, command: str, *, retry_push: bool = True) -> Iterator[RepoLock]:
    """The repository lock, held for the command; first, what an earlier run left: a stale lock taken
    over, an interrupted attempt and interrupted workers recovered, a pending push retried (unless
    `retry_push` is False: a push may re-prove commits, too long for a command that only answers)."""
    with RepoLock(ws.git_dir, command=command) as lock:
        if lock.took_over_from:
            held = lock.took_over_from
            print(f"harness: took over a stale lock from pid {held.get('pid')} on {held.get('host')} "
                  f"(started {held.get('started')}); that process is gone", file=sys.stderr)
        recovery = recover(ws)
        if recovery:
            print(f"harness: {recovery.describe()}", file=sys.stderr)
        for worker in recover_workers(ws):
            print(f"harness: {worker.describe()}", file=sys.stderr)
        pending = retry_pending_held(ws, progress=lambda line: print(f"harness: {line}", file=sys.stderr)) \
            if retry_push else None
        if pending is not None:
            print(f"harness: pending push from an earlier run: {pending.message}", file=sys.stderr)
        yield lock


def print_result(result: IterationResult) -> None:
    print()
    print(f"[{result.item_id}] attempt #{result.attempt}: {result.outcome}")
    print(f"  reason:   {result.reason}")
    print(f"  evidence: {result.evidence_dir}")
    print(f"  summary:  {result.evidence_dir / 'analysis' / 'summary.md'}")
    if result.commit:
        print(f"  commit:   {result.commit[:10]}")
    if result.saved_ref:
        print(f"  the change was not committed; it is saved on {result.saved_ref}")
    for path, why in result.changeset.left_out:
        print(f"  left out of the commit: {path} ({why})")
