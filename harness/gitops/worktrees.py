"""Temporary detached checkouts (the RED proof, bisect, lint at base), always removed afterwards.

A harness killed while one exists leaves it registered; `prune_stale_worktrees`, called under the
repository lock, removes those by their folder prefix.
"""
from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import git

from harness.errors import GitError
from harness.gitops.command import run_git
from harness.gitops.revisions import resolve, root

WORKTREE_PREFIX = "harness-wt-"
# `git worktree add`, `remove` and `prune` of one process, one at a time: parallel workers add and remove
# worktrees from several threads, and a prune (or a second add choosing the same admin folder name, the
# checkout's basename) during an add breaks it ("failed to read .git/worktrees/<name>/commondir").
ADMIN_LOCK = threading.RLock()


@contextlib.contextmanager
def temp_worktree(repo: git.Repo, rev: str) -> Iterator[Path]:
    """A detached checkout of `rev` in a temporary directory; always removed and pruned afterwards."""
    sha = resolve(repo, rev)
    parent = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    # Keep the repository's folder name: some tools and test suites look at the root folder's name.
    path = parent / root(repo).name
    try:
        with ADMIN_LOCK:
            run_git(repo, "worktree", "add", "--detach", str(path), sha)
        yield path
    finally:
        with ADMIN_LOCK:
            with contextlib.suppress(GitError):
                run_git(repo, "worktree", "remove", "--force", str(path))
            shutil.rmtree(parent, ignore_errors=True)
            run_git(repo, "worktree", "prune")


def prune_stale_worktrees(repo: git.Repo) -> list[Path]:
    """Remove worktrees left registered by a harness that was killed; returns their paths.

    Call it while holding the repository lock: only then is no live harness using one.
    """
    listing = run_git(repo, "worktree", "list", "--porcelain")
    lines = listing.splitlines()
    registered = [Path(line.removeprefix("worktree ")) for line in lines if line.startswith("worktree ")]
    stale = [path for path in registered if path.parent.name.startswith(WORKTREE_PREFIX)]
    with ADMIN_LOCK:
        for path in stale:
            with contextlib.suppress(GitError):
                run_git(repo, "worktree", "remove", "--force", "--force", str(path))
            shutil.rmtree(path.parent, ignore_errors=True)
        run_git(repo, "worktree", "prune")
    return stale
