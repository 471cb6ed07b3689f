"""Refs the harness keeps beside the branches: reading them, compare-and-swap updates, listing by prefix,
and message-only commits (a lease names its holder in one).

`update_ref_cas` is git's own compare-and-swap, `git update-ref REF NEW OLD`: git creates `REF.lock`
exclusively, checks that REF still holds OLD (all zeros: that REF does not exist yet), then renames the
lock into place. Of several processes racing for one ref, exactly one wins; the others get False.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import git

from harness.errors import GitError
from harness.gitops.command import git_status, run_git
from harness.gitops.commits import _check_ref, _commit_tree

ZERO_SHA = "0" * 40


def read_ref(repo: git.Repo, ref: str) -> str | None:
    """The object `ref` points to, or None when it does not exist."""
    _check_ref(repo, ref)
    status, out, _ = git_status(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", ref)
    return out.strip() if status == 0 and out.strip() else None


def update_ref_cas(repo: git.Repo, ref: str, new: str, expected: str | None, *, reason: str) -> bool:
    """Point `ref` at `new` only if it still points at `expected` (None: only if it does not exist).

    Returns whether this call moved it; False means someone else changed it first."""
    _check_ref(repo, ref)
    status, _, err = git_status(repo, "update-ref", "-m", reason, ref, new, expected or ZERO_SHA)
    if status == 0:
        return True
    if "cannot lock ref" in err or "reference already exists" in err or "but expected" in err:
        return False
    raise GitError(f"`git update-ref {ref}` failed (exit {status}):\n{err.strip()}")


def delete_ref_cas(repo: git.Repo, ref: str, expected: str) -> bool:
    """Delete `ref` only if it still points at `expected`; False when it moved or is already gone."""
    _check_ref(repo, ref)
    status, _, err = git_status(repo, "update-ref", "-d", ref, expected)
    if status == 0:
        return True
    if "cannot lock ref" in err or "but expected" in err or "unable to resolve" in err:
        return False
    raise GitError(f"`git update-ref -d {ref}` failed (exit {status}):\n{err.strip()}")


def set_ref(repo: git.Repo, ref: str, sha: str, *, reason: str) -> None:
    """Point `ref` at `sha` whatever it held (a saved-work ref: failed or aborted attempts)."""
    _check_ref(repo, ref)
    run_git(repo, "update-ref", "-m", reason, ref, sha)


def refs_under(repo: git.Repo, prefix: str) -> dict[str, str]:
    """Every ref whose name starts with `prefix` (e.g. refs/harness/lease/), mapped to its object."""
    out = run_git(repo, "for-each-ref", "--format=%(refname)%00%(objectname)", prefix)
    refs = {}
    for line in out.splitlines():
        name, _, sha = line.partition("\0")
        if name.startswith(prefix):
            refs[name] = sha
    return refs


def message_commit(repo: git.Repo, message: str, *, identity: tuple[str, str]) -> str:
    """A root commit of the empty tree that carries only `message` (its trailers are its data)."""
    with tempfile.TemporaryDirectory(prefix="harness-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, "read-tree", "--empty", env=env)
        tree = run_git(repo, "write-tree", env=env).strip()
    return _commit_tree(repo, tree, None, message, identity)
