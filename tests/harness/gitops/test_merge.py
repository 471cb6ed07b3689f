"""Merging a change onto a head in the object store: clean, conflicting, and nothing else moves."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from tests.conftest import git
from tests.harness.gitops.helpers import IDENTITY, state


def _branch_change(repo_path: Path, files: dict[str, str]) -> str:
    """A commit on top of HEAD changing `files`, made on a side branch; HEAD stays where it was."""
    git(repo_path, "checkout", "-q", "-b", "side")
    for rel, text in files.items():
        (repo_path / rel).write_text(text)
    git(repo_path, "commit", "-qam", "side")
    sha = git(repo_path, "rev-parse", "HEAD").strip()
    git(repo_path, "checkout", "-q", "main")
    return sha


def test_a_clean_merge_gives_the_merged_tree_and_moves_nothing(repo_path: Path) -> None:
    change = _branch_change(repo_path, {"a.txt": "a from the change\n"})
    (repo_path / "b.txt").write_text("b on main\n")
    git(repo_path, "commit", "-qam", "main moves on")
    repo = gitops.open_repo(repo_path)
    before = state(repo_path)
    merged = gitops.merge_trees(repo, "HEAD", change)
    assert merged.clean and merged.conflicts == ()
    assert state(repo_path) == before
    commit = gitops.commit_tree(repo, merged.tree, "HEAD", "merged", identity=IDENTITY)
    assert git(repo_path, "show", f"{commit}:a.txt") == "a from the change\n"
    assert git(repo_path, "show", f"{commit}:b.txt") == "b on main\n"
    assert git(repo_path, "rev-parse", f"{commit}^").strip() == gitops.head_sha(repo)
    assert gitops.tree_of(repo, commit) == merged.tree


def test_a_conflict_names_the_paths_and_leaves_no_trace(repo_path: Path) -> None:
    change = _branch_change(repo_path, {"a.txt": "a from the change\n", "b.txt": "b from the change\n"})
    (repo_path / "a.txt").write_text("a on main\n")
    git(repo_path, "commit", "-qam", "main edits the same line")
    repo = gitops.open_repo(repo_path)
    before = state(repo_path)
    merged = gitops.merge_trees(repo, "HEAD", change)
    assert not merged.clean and merged.tree is None and merged.conflicts == ("a.txt",)
    assert state(repo_path) == before
    assert git(repo_path, "status", "--porcelain") == ""


def test_a_replay_applies_only_the_commits_own_change_and_moves_nothing(repo_path: Path) -> None:
    # Two commits on a side branch; only the second is replayed onto main, which moved on meanwhile.
    git(repo_path, "checkout", "-q", "-b", "side")
    (repo_path / "a.txt").write_text("a from the first side commit\n")
    git(repo_path, "commit", "-qam", "first")
    (repo_path / "sub/c.txt").write_text("c from the second side commit\n")
    git(repo_path, "commit", "-qam", "second")
    second = git(repo_path, "rev-parse", "HEAD").strip()
    git(repo_path, "checkout", "-q", "main")
    (repo_path / "b.txt").write_text("b on main\n")
    git(repo_path, "commit", "-qam", "main moves on")
    repo = gitops.open_repo(repo_path)
    before = state(repo_path)
    replayed = gitops.replay_tree(repo, second, "HEAD", identity=IDENTITY)
    assert replayed.clean and state(repo_path) == before
    commit = gitops.commit_tree(repo, replayed.tree, "HEAD", "replayed", identity=IDENTITY)
    assert git(repo_path, "show", f"{commit}:sub/c.txt") == "c from the second side commit\n"
    assert git(repo_path, "show", f"{commit}:b.txt") == "b on main\n"
    assert git(repo_path, "show", f"{commit}:a.txt") == "a\n"  # the first commit's change is not replayed


def test_a_replay_that_conflicts_names_the_paths_and_a_merge_commit_is_refused(repo_path: Path) -> None:
    change = _branch_change(repo_path, {"a.txt": "a from the change\n"})
    (repo_path / "a.txt").write_text("a on main\n")
    git(repo_path, "commit", "-qam", "main edits a")
    repo = gitops.open_repo(repo_path)
    replayed = gitops.replay_tree(repo, change, "HEAD", identity=IDENTITY)
    assert not replayed.clean and replayed.conflicts == ("a.txt",)
    git(repo_path, "merge", "-q", "--no-edit", "-s", "ours", change)
    with pytest.raises(GitError, match="2 parents"):
        gitops.replay_tree(repo, "HEAD", "HEAD~1", identity=IDENTITY)
