"""Merging one change onto the branch's current head, or replaying one commit onto another, without
touching any checkout; merging three versions of one file's text (`merge_texts`).

`git merge-tree --write-tree` (git 2.38 or later) computes the merge of two commits in the object store
alone: the branch, the index and every working tree stay as they are, so a merge that conflicts leaves
nothing to clean up. The merge base is found by git from the history (the change's base is an ancestor of
the head it lands on); a replay (`replay_tree`, what `git cherry-pick` computes) makes the replayed
commit's parent the merge base.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import git

from harness.errors import GitError
from harness.gitops.command import git_status, git_status_bytes, run_git
from harness.gitops.commits import _commit_tree
from harness.gitops.revisions import parents_of, resolve


@dataclass(frozen=True)
class TreeMerge:
    """The merged tree, or None with the paths git could not merge (`conflicts`)."""

    tree: str | None
    conflicts: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return self.tree is not None


def merge_trees(repo: git.Repo, ours: str, theirs: str) -> TreeMerge:
    """Merge commit `theirs` into commit `ours` as `git merge` would, in the object store only."""
    ours_sha, theirs_sha = resolve(repo, ours), resolve(repo, theirs)
    status, out, err = git_status(repo, "merge-tree", "--write-tree", "--name-only", "-z", "--no-messages",
                                  ours_sha, theirs_sha)
    if status not in (0, 1):
        hint = " (git 2.38 or later is needed for `git merge-tree --write-tree`)" if "usage" in err else ""
        raise GitError(f"`git merge-tree --write-tree {ours_sha[:10]} {theirs_sha[:10]}` failed "
                       f"(exit {status}){hint}:\n{err.strip()}")
    fields = [f for f in out.split("\0") if f]
    if not fields:
        raise GitError(f"`git merge-tree` printed no tree for {ours_sha[:10]} and {theirs_sha[:10]}")
    if status == 0:
        return TreeMerge(fields[0], ())
    return TreeMerge(None, tuple(dict.fromkeys(fields[1:])))


def tree_of(repo: git.Repo, rev: str) -> str:
    """The tree object of commit `rev`."""
    return run_git(repo, "rev-parse", f"{resolve(repo, rev)}^{{tree}}").strip()


def commit_tree(repo: git.Repo, tree: str, parent: str, message: str, *, identity: tuple[str, str]) -> str:
    """A commit of `tree` on top of `parent` that no ref points to (yet)."""
    return _commit_tree(repo, tree, resolve(repo, parent), message, identity)


def replay_tree(repo: git.Repo, commit: str, onto: str, *, identity: tuple[str, str]) -> TreeMerge:
    """The tree that `commit`'s own change (against its one parent) gives when applied onto commit `onto`,
    as `git cherry-pick` computes it, in the object store only: nothing moves.

    `git merge-tree --merge-base` needs git 2.40; here two commits no ref points to, `onto`'s tree and
    `commit`'s tree each on `commit`'s parent, make that parent the merge base on any git with
    `--write-tree`. A root or merge commit has no one parent to replay against: GitError."""
    sha = resolve(repo, commit)
    parents = parents_of(repo, sha)
    if len(parents) != 1:
        raise GitError(f"commit {sha[:10]} has {len(parents)} parents; only a commit with one parent can be "
                       "replayed (rebase a merge by hand)")
    ours = _commit_tree(repo, tree_of(repo, onto), parents[0], "harness: replay target", identity)
    theirs = _commit_tree(repo, tree_of(repo, sha), parents[0], "harness: replayed change", identity)
    return merge_trees(repo, ours, theirs)


def merge_texts(repo: git.Repo, *, ours: bytes, base: bytes, theirs: bytes) -> bytes | None:
    """`ours` with the change from `base` to `theirs` applied (`git merge-file`), or None when they conflict."""
    with tempfile.TemporaryDirectory(prefix="harness-merge-") as tmp:
        files = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(tmp) / name
            path.write_bytes(data)
            files.append(str(path))
        status, out, err = git_status_bytes(repo, "merge-file", "-p", "--quiet", *files)
    if status < 0 or status > 127:
        raise GitError(f"`git merge-file` failed (exit {status}):\n{err.strip()}")
    return out if status == 0 else None
