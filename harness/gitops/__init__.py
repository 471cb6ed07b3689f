"""Every git operation of the harness: small typed functions over gitpython's `git.Repo`.

No other harness module runs git (tests/test_architecture.py checks). Operations that must not disturb
the user's state (snapshots, commits of chosen paths, the full working-tree view) build their trees in a
temporary index file, so HEAD, the branch, the real index and the working tree stay exactly as they were
unless the function says otherwise. Paths are repo-relative posix strings.

    command     running git, errors with git's own words and advice
    revisions   opening the repository, naming revisions, reading commits and trailers
    tree        the working tree against a revision; moving changed files between trees
    worktrees   temporary detached checkouts
    commits     commits of chosen paths with trailers; snapshots of the working tree on a ref
"""
from __future__ import annotations

from harness.gitops.command import git_error
from harness.gitops.commits import commit_paths, snapshot_to_ref
from harness.gitops.revisions import (
    CommitInfo,
    commit_exists,
    commit_info,
    common_git_dir,
    find_commits_with_trailer,
    head_sha,
    open_repo,
    resolve,
    root,
    short,
    trailers_of,
)
from harness.gitops.tree import (
    Change,
    ChangeKind,
    changes_between,
    copy_working_files,
    discard_changes,
    is_clean,
    numstat,
    numstat_between,
    working_changes,
    write_files_at_rev,
)
from harness.gitops.worktrees import WORKTREE_PREFIX, prune_stale_worktrees, temp_worktree

__all__ = [
    "WORKTREE_PREFIX", "Change", "ChangeKind", "CommitInfo", "changes_between", "commit_exists", "commit_info",
    "commit_paths", "common_git_dir", "copy_working_files", "discard_changes", "find_commits_with_trailer",
    "git_error", "head_sha", "is_clean", "numstat", "numstat_between", "open_repo", "prune_stale_worktrees",
    "resolve", "root", "short", "snapshot_to_ref", "temp_worktree", "trailers_of", "working_changes",
    "write_files_at_rev",
]
