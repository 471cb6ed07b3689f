"""File contents at a revision, and which lines a change added or modified (the new side of `diff -U0`).

The working-tree variants read the full working-tree view (untracked files included, ignored ones not)
through the temporary index of harness.gitops.tree, so nothing of the user's state changes.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

import git

from harness.gitops.command import git_status, run_git, run_git_bytes
from harness.gitops.revisions import resolve
from harness.gitops.tree import safe_rel, worktree_index

_HUNK = re.compile(r"@@ -[0-9]+(?:,[0-9]+)? \+([0-9]+)(?:,([0-9]+))? @@")


def blob_bytes(repo: git.Repo, rev: str, path: str) -> bytes | None:
    """The content of `path` at `rev`, or None when the path holds no file there.

    One `git cat-file` process per call, so overlapping stages may read at once."""
    spec = f"{resolve(repo, rev)}:{safe_rel(path).as_posix()}"
    status, kind, _ = git_status(repo, "cat-file", "-t", spec)
    if status != 0 or kind.strip() != "blob":
        return None
    return run_git_bytes(repo, "cat-file", "blob", spec)


def blob_text(repo: git.Repo, rev: str, path: str) -> str | None:
    """Like blob_bytes, decoded as UTF-8 (undecodable bytes replaced)."""
    data = blob_bytes(repo, rev, path)
    return None if data is None else data.decode("utf-8", errors="replace")


def _new_side_lines(patch: str) -> frozenset[int]:
    lines: set[int] = set()
    for line in patch.splitlines():
        m = _HUNK.match(line)
        if m:
            start, count = int(m[1]), int(m[2]) if m[2] is not None else 1
            lines.update(range(start, start + count))
    return frozenset(lines)


def changed_lines(repo: git.Repo, base: str, head: str | None,
                  paths: Iterable[str]) -> dict[str, frozenset[int]]:
    """For each path: the line numbers, in its new version, of lines the change added or modified.

    `head` None: the working tree against `base`; otherwise the commits base..head. A path the change
    deleted, or one it did not touch, maps to an empty set.
    """
    base_sha = resolve(repo, base)
    rels = [safe_rel(p).as_posix() for p in paths]
    result: dict[str, frozenset[int]] = {}
    if head is None:
        with worktree_index(repo) as env:
            for rel in rels:  # one call per path: the path is known without parsing quoted names
                out = run_git(repo, "diff-index", "--cached", "--no-renames", "-U0", "--no-color", base_sha,
                              "--", rel, env=env)
                result[rel] = _new_side_lines(out)
    else:
        head_sha = resolve(repo, head)
        for rel in rels:
            out = run_git(repo, "diff-tree", "-r", "-p", "--no-renames", "-U0", "--no-color", base_sha,
                          head_sha, "--", rel)
            result[rel] = _new_side_lines(out)
    return result
