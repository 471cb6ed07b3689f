"""Long-lived checkouts on a branch of their own (a parallel worker's), and their removal.

Unlike `temp_worktree`, these outlive one function call: the caller records where they are (a worker's
journal) so that a harness restarted after a crash can save their work and then remove them.
"""
from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import git

from harness.errors import GitError
from harness.gitops.command import run_git
from harness.gitops.revisions import resolve
from harness.gitops.worktrees import ADMIN_LOCK

BRANCH_REFS = "refs/heads/"


def add_branch_worktree(repo: git.Repo, path: Path, branch: str, rev: str) -> None:
    """Check out a new branch `branch` at `rev` in a new worktree at `path` (its folder must not exist)."""
    sha = resolve(repo, rev)
    if Path(path).exists():
        raise GitError(f"{path} already exists; a worker's checkout must start in a new folder "
                       "(the harness removes leftovers at its next start)")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with ADMIN_LOCK:
        run_git(repo, "worktree", "add", "--quiet", "-b", branch, str(path), sha)


def registered_worktrees(repo: git.Repo) -> list[Path]:
    """Every worktree git knows of, the main checkout first."""
    listing = run_git(repo, "worktree", "list", "--porcelain")
    return [Path(line.removeprefix("worktree ")) for line in listing.splitlines() if line.startswith("worktree ")]


def remove_worktree(repo: git.Repo, path: Path) -> None:
    """Remove the worktree at `path` (modified or not) and forget it; a missing folder is fine."""
    with ADMIN_LOCK:
        with contextlib.suppress(GitError):
            run_git(repo, "worktree", "remove", "--force", "--force", str(path))
        shutil.rmtree(path, ignore_errors=True)
        run_git(repo, "worktree", "prune")


def branches_under(repo: git.Repo, prefix: str) -> list[str]:
    """Branch names (without refs/heads/) starting with `prefix`."""
    out = run_git(repo, "for-each-ref", "--format=%(refname)", BRANCH_REFS + prefix)
    return [line.removeprefix(BRANCH_REFS) for line in out.splitlines() if line.strip()]


def delete_branch(repo: git.Repo, branch: str) -> None:
    """Delete branch `branch` if it exists (remove a worktree that has it checked out first)."""
    ref = BRANCH_REFS + branch
    out = run_git(repo, "for-each-ref", "--format=%(refname)", ref)
    if out.strip():
        run_git(repo, "update-ref", "-d", ref)
