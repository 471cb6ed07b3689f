from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from harness.gitops import Change
from tests.conftest import git
from tests.harness.gitops.helpers import changes, dirty, tree_files


def test_working_changes_sees_staged_unstaged_untracked_not_ignored(repo_path: Path) -> None:
    dirty(repo_path)
    # Staged, then edited back to HEAD's content: no change against HEAD.
    (repo_path / "README.md").write_text("tmp\n")
    git(repo_path, "add", "README.md")
    (repo_path / "README.md").write_text("readme\n")
    changes = gitops.working_changes(gitops.open_repo(repo_path))
    assert [(c.path, c.kind) for c in changes] == [
        ("a.txt", "modified"),
        ("b.txt", "deleted"),
        ("new.txt", "added"),
        ("staged.txt", "added"),
        ("sub/c.txt", "deleted"),
        ("sub/c2.txt", "added"),
    ]
    sizes = {c.path: c.size_bytes for c in changes}
    assert sizes == {"a.txt": 10, "b.txt": 0, "new.txt": 10, "staged.txt": 7, "sub/c.txt": 0, "sub/c2.txt": 2}


def test_working_changes_leaves_index_untouched(repo_path: Path) -> None:
    dirty(repo_path)
    index = repo_path / ".git" / "index"
    before = index.read_bytes()
    gitops.working_changes(gitops.open_repo(repo_path))
    assert index.read_bytes() == before
    assert git(repo_path, "diff", "--cached", "--no-renames", "--name-only").split() == [
        "b.txt", "staged.txt", "sub/c.txt", "sub/c2.txt"
    ]


def test_changes_between_commits(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    dirty(repo_path)
    git(repo_path, "add", "-A")
    git(repo_path, "commit", "-q", "-m", "second")
    changes = gitops.changes_between(repo, base, "HEAD")
    assert changes == [
        Change("a.txt", "modified", 10),
        Change("b.txt", "deleted", 0),
        Change("new.txt", "added", 10),
        Change("staged.txt", "added", 7),
        Change("sub/c.txt", "deleted", 0),
        Change("sub/c2.txt", "added", 2),
    ]


def test_is_clean_whole_tree_and_by_path(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "debug.log").write_text("ignored\n")
    assert gitops.is_clean(repo)
    (repo_path / "untracked.txt").write_text("x\n")
    assert not gitops.is_clean(repo)
    assert gitops.is_clean(repo, ["a.txt"]) and not gitops.is_clean(repo, ["untracked.txt"])


def test_copy_working_files_makes_worktree_match(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    dirty(repo_path)
    git(repo_path, "rm", "-q", "sub/deep/d.txt")
    (repo_path / "run.sh").write_text("#!/bin/sh\n")
    (repo_path / "run.sh").chmod(0o755)
    os.symlink("a.txt", repo_path / "link")
    changes = gitops.working_changes(repo)
    with gitops.temp_worktree(repo, "HEAD") as wt:
        gitops.copy_working_files(repo_path, wt, changes)
        expected = {k: v for k, v in tree_files(repo_path).items() if k != "debug.log"}
        assert tree_files(wt) == expected
        assert os.access(wt / "run.sh", os.X_OK) and os.readlink(wt / "link") == "a.txt"
        assert not (wt / "sub" / "deep").exists()  # emptied by the deletion, as a checkout would be


def test_folder_replaced_by_file_of_same_name_round_trips(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    git(repo_path, "rm", "-rq", "sub")
    (repo_path / "sub").write_text("now a file\n")
    changes = gitops.working_changes(repo)
    assert [(c.path, c.kind) for c in changes] == [
        ("sub", "added"), ("sub/c.txt", "deleted"), ("sub/deep/d.txt", "deleted")
    ]
    with gitops.temp_worktree(repo, "HEAD") as wt:
        gitops.copy_working_files(repo_path, wt, changes)
        assert (wt / "sub").read_text() == "now a file\n"
    gitops.discard_changes(repo, changes)
    assert gitops.is_clean(repo) and (repo_path / "sub" / "deep" / "d.txt").read_text() == "d\n"


def test_write_files_at_rev_reproduces_the_commit(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    dirty(repo_path)
    (repo_path / "run.sh").write_text("#!/bin/sh\n")
    (repo_path / "run.sh").chmod(0o755)
    git(repo_path, "add", "-A")
    git(repo_path, "commit", "-q", "-m", "work")
    head = gitops.head_sha(repo)
    (repo_path / "a.txt").write_text("uncommitted edit must not leak\n")
    changes = gitops.changes_between(repo, base, head)
    with gitops.temp_worktree(repo, base) as wt, gitops.temp_worktree(repo, head) as expected:
        gitops.write_files_at_rev(repo, head, changes, wt)
        assert tree_files(wt) == tree_files(expected)
        assert os.access(wt / "run.sh", os.X_OK)
    with pytest.raises(GitError, match="does not exist at"):
        gitops.write_files_at_rev(repo, base, [Change("new.txt", "added", 1)], repo_path)


def test_discard_changes_restores_head(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    dirty(repo_path)
    (repo_path / "newdir" / "inner").mkdir(parents=True)
    (repo_path / "newdir" / "inner" / "f.txt").write_text("x\n")
    gitops.discard_changes(repo, gitops.working_changes(repo))
    assert gitops.is_clean(repo)
    assert not (repo_path / "newdir").exists() and (repo_path / "debug.log").exists()
    assert (repo_path / "a.txt").read_text() == "a\n" and (repo_path / "sub" / "c.txt").read_text() == "c\n"


def test_discard_changes_only_touches_given_paths(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    dirty(repo_path)
    gitops.discard_changes(repo, [Change("a.txt", "modified", 0), Change("new.txt", "added", 0)])
    assert gitops.is_clean(repo, ["a.txt", "new.txt"])
    assert set(changes(repo_path)) == {"b.txt", "staged.txt", "sub/c.txt", "sub/c2.txt"}


def test_numstat_counts_working_tree_against_base(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "a.txt").write_text("a\nmore\nlines\n")
    (repo_path / "b.txt").unlink()
    (repo_path / "new.txt").write_text("1\n2\n")
    (repo_path / "blob.bin").write_bytes(b"\0\1\2")
    assert gitops.numstat(repo, "HEAD") == (4, 4, 1)
    assert gitops.numstat(repo, "HEAD", ["a.txt"]) == (1, 2, 0)


def test_numstat_between_counts_commits_and_refuses_an_unknown_revision(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    (repo_path / "a.txt").write_text("a\nmore\nlines\n")
    (repo_path / "b.txt").unlink()
    (repo_path / "blob.bin").write_bytes(b"\0\1\2")
    git(repo_path, "add", "-A")
    git(repo_path, "commit", "-qm", "change")
    assert gitops.numstat_between(repo, base, "HEAD") == (3, 2, 1)
    assert gitops.numstat_between(repo, base, "HEAD", ["a.txt", "b.txt"]) == (2, 2, 1)
    with pytest.raises(GitError, match="no-such-rev"):
        gitops.numstat_between(repo, "no-such-rev", "HEAD", ["a.txt"])


def test_a_same_size_edit_in_the_second_of_the_commit_is_seen(repo_path: Path) -> None:
    """Git trusts an index entry whose size and times match the file, unless the entry is not older than
    the index file itself ("racily clean"): the working-tree view must keep the index's own mtime for that.
    The edit below is what a change made in the same clock tick as the commit looks like to git."""
    git(repo_path, "config", "core.trustctime", "false")  # a test cannot set ctime; in that tick it is equal
    path, index = repo_path / "a.txt", repo_path / ".git" / "index"
    tick = path.stat().st_mtime_ns - 10 * 10**9  # seconds before the views below are built
    os.utime(path, ns=(tick, tick))
    git(repo_path, "update-index", "--refresh")
    path.write_text("A\n")  # same size as "a\n"
    os.utime(path, ns=(tick, tick))
    os.utime(index, ns=(tick, tick))
    repo = gitops.open_repo(repo_path)
    assert changes(repo_path) == {"a.txt": "modified"}
    assert gitops.numstat(repo, "HEAD") == (1, 1, 1)
