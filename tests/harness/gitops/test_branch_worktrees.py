"""Long-lived worktrees on a branch of their own, and their removal."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from tests.conftest import git
from tests.harness.gitops.helpers import registered_worktrees


def test_a_branch_worktree_is_added_listed_and_removed_with_its_branch(repo_path: Path, tmp_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    head = gitops.head_sha(repo)
    path = tmp_path / "workers" / "ITEM-1" / repo_path.name
    gitops.add_branch_worktree(repo, path, "harness/work/ITEM-1", head)
    assert git(path, "symbolic-ref", "HEAD").strip() == "refs/heads/harness/work/ITEM-1"
    assert (path / "a.txt").read_text() == "a\n"
    assert gitops.registered_worktrees(repo) == [repo_path, path]
    assert gitops.branches_under(repo, "harness/work/") == ["harness/work/ITEM-1"]
    with pytest.raises(GitError, match="already exists"):
        gitops.add_branch_worktree(repo, path, "harness/work/ITEM-2", head)
    (path / "a.txt").write_text("modified in the worktree\n")
    (path / "new.txt").write_text("untracked\n")
    gitops.remove_worktree(repo, path)
    assert not path.exists() and registered_worktrees(repo_path) == []
    gitops.delete_branch(repo, "harness/work/ITEM-1")
    gitops.delete_branch(repo, "harness/work/ITEM-1")  # already gone: nothing to do
    assert gitops.branches_under(repo, "harness/work/") == []
    assert git(repo_path, "status", "--porcelain") == ""


def test_a_worktree_whose_folder_vanished_is_forgotten(repo_path: Path, tmp_path: Path) -> None:
    import shutil

    repo = gitops.open_repo(repo_path)
    path = tmp_path / "w" / repo_path.name
    gitops.add_branch_worktree(repo, path, "harness/work/X", "HEAD")
    shutil.rmtree(path)
    gitops.remove_worktree(repo, path)
    assert registered_worktrees(repo_path) == []
