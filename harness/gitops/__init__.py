"""Every git operation of the harness: small typed functions, over gitpython's `git.Repo`, or through
harness.proc where a command needs a timeout (the network) or an environment of its own (bisect).

No other harness module runs git (tests/test_architecture.py checks). Operations that must not disturb
the user's state (snapshots, commits of chosen paths, the full working-tree view) build their trees in a
temporary index file, so HEAD, the branch, the real index and the working tree stay exactly as they were
unless the function says otherwise. Paths are repo-relative posix strings.

    command     running git, errors with git's own words and advice
    revisions   opening the repository, naming revisions, reading commits and trailers
    tree        the working tree against a revision; moving changed files between trees
    content     file contents at a revision; the lines a change added or modified
    worktrees   temporary detached checkouts
    bisect      `git bisect run` in a temporary worktree
    commits     commits of chosen paths with trailers; snapshots on a ref; a new repository; replayed
                commits (a folder replaced, the author kept) and moving the checkout onto them
    diffs       commits' patches (many in one call) and base..head changes, chosen paths left out
    lookups     questions about many commits in one call: trailer values, existence, subjects
    remote      push and fetch, with a timeout (through harness.proc)
    refs        reading refs, compare-and-swap updates, message-only commits (leases)
    merge       merging a change onto a head, or replaying a commit, in the object store
                (`git merge-tree --write-tree`); three versions of a file's text (`git merge-file`)
    branch_worktrees  long-lived checkouts on a branch of their own (parallel workers)
    version     the installed git and its version (`merge-tree --write-tree` needs 2.38)
"""
from __future__ import annotations

from harness.gitops.bisect import BisectRun, bisect_run, checkout_detached, worktree_head
from harness.gitops.branch_worktrees import (
    add_branch_worktree,
    branches_under,
    delete_branch,
    registered_worktrees,
    remove_worktree,
)
from harness.gitops.command import git_error
from harness.gitops.commits import (
    commit_paths,
    init_repo,
    move_head,
    rewrite_commit,
    snapshot_to_ref,
    tree_with_folder,
)
from harness.gitops.content import blob_bytes, blob_text, changed_lines
from harness.gitops.diffs import MAX_PATCH_CHARS, Patch, patches, range_patch
from harness.gitops.lookups import CommitSummary, commit_summaries, existing_commits, trailer_index
from harness.gitops.merge import TreeMerge, commit_tree, merge_texts, merge_trees, replay_tree, tree_of
from harness.gitops.refs import (
    ZERO_SHA,
    delete_ref_cas,
    message_commit,
    read_ref,
    refs_under,
    set_ref,
    update_ref_cas,
)
from harness.gitops.remote import (
    GIT_TIMEOUT_S,
    TIMED_OUT_STATUS,
    Fetched,
    GitAnswer,
    fetch_branch,
    fetch_refs,
    push_ref,
    push_ref_cas,
    push_refs_cas,
    remote_refs,
)
from harness.gitops.revisions import (
    CommitInfo,
    commit_exists,
    commit_info,
    commit_message,
    commits_between,
    common_git_dir,
    find_commits_with_trailer,
    head_sha,
    is_ancestor,
    log_lines,
    main_worktree,
    open_repo,
    own_git_dir,
    parents_of,
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
from harness.gitops.version import MERGE_TREE_WRITE_TREE, GitVersion, git_version, parse_git_version
from harness.gitops.worktrees import WORKTREE_PREFIX, prune_stale_worktrees, temp_worktree

__all__ = [  # one name per line: branches that add names merge without conflict
    "GIT_TIMEOUT_S",
    "MAX_PATCH_CHARS",
    "MERGE_TREE_WRITE_TREE",
    "TIMED_OUT_STATUS",
    "WORKTREE_PREFIX",
    "ZERO_SHA",
    "BisectRun",
    "Change",
    "ChangeKind",
    "CommitInfo",
    "CommitSummary",
    "Fetched",
    "GitAnswer",
    "GitVersion",
    "Patch",
    "TreeMerge",
    "add_branch_worktree",
    "bisect_run",
    "blob_bytes",
    "blob_text",
    "branches_under",
    "changed_lines",
    "changes_between",
    "checkout_detached",
    "commit_exists",
    "commit_info",
    "commit_message",
    "commit_paths",
    "commit_summaries",
    "commit_tree",
    "commits_between",
    "common_git_dir",
    "copy_working_files",
    "delete_branch",
    "delete_ref_cas",
    "discard_changes",
    "existing_commits",
    "fetch_branch",
    "fetch_refs",
    "find_commits_with_trailer",
    "git_error",
    "git_version",
    "head_sha",
    "init_repo",
    "is_ancestor",
    "is_clean",
    "log_lines",
    "main_worktree",
    "merge_texts",
    "merge_trees",
    "message_commit",
    "move_head",
    "numstat",
    "numstat_between",
    "open_repo",
    "own_git_dir",
    "parents_of",
    "parse_git_version",
    "patches",
    "prune_stale_worktrees",
    "push_ref",
    "push_ref_cas",
    "push_refs_cas",
    "range_patch",
    "read_ref",
    "refs_under",
    "registered_worktrees",
    "remote_refs",
    "remove_worktree",
    "replay_tree",
    "resolve",
    "rewrite_commit",
    "root",
    "set_ref",
    "short",
    "snapshot_to_ref",
    "temp_worktree",
    "trailer_index",
    "trailers_of",
    "tree_of",
    "tree_with_folder",
    "update_ref_cas",
    "working_changes",
    "worktree_head",
    "write_files_at_rev",
]
