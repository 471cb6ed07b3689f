from __future__ import annotations

from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from tests.conftest import git
from tests.harness.gitops.helpers import IDENTITY, dirty, state


def test_snapshot_to_ref_records_tree_without_touching_anything(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    dirty(repo_path)
    before = state(repo_path)
    status_before = git(repo_path, "status", "--porcelain")
    head = gitops.head_sha(repo)
    sha = gitops.snapshot_to_ref(repo, "refs/harness/failed/ITEM-1/2", "attempt 2", identity=IDENTITY)
    assert state(repo_path) == before
    assert git(repo_path, "status", "--porcelain") == status_before
    assert git(repo_path, "rev-parse", "refs/harness/failed/ITEM-1/2").strip() == sha
    assert git(repo_path, "rev-parse", f"{sha}^").strip() == head
    files = set(git(repo_path, "ls-tree", "-r", "--name-only", sha).split())
    assert files == {
        ".gitignore", "README.md", "a.txt", "new.txt", "staged.txt", "sub/c2.txt", "sub/deep/d.txt"
    }
    assert git(repo_path, "show", f"{sha}:a.txt") == "a changed\n"
    assert git(repo_path, "log", "-1", "--format=%an <%ae>|%s", sha).strip() == (
        "Harness Bot <bot@example.invalid>|attempt 2"
    )
    with pytest.raises(GitError, match="not a valid full ref name"):
        gitops.snapshot_to_ref(repo, "refs/bad..name", "x", identity=IDENTITY)


def test_commit_paths_commits_exactly_those_paths(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "README.md").write_text("staged but not ours\n")
    git(repo_path, "add", "README.md")
    (repo_path / "sub" / "c.txt").write_text("modified, not ours\n")
    (repo_path / "a.txt").write_text("ours\n")
    (repo_path / "b.txt").unlink()
    (repo_path / "new.txt").write_text("ours too\n")
    (repo_path / "debug.log").write_text("ignored but named explicitly\n")
    head = gitops.head_sha(repo)
    sha = gitops.commit_paths(
        repo, ["a.txt", "b.txt", "new.txt", "debug.log"], "Fix ITEM-1\n\nBody text.",
        identity=IDENTITY, trailers=[("Harness-Item", "ITEM-1"), ("Harness-Attempt", "1")],
    )
    assert gitops.head_sha(repo) == sha and git(repo_path, "rev-parse", "main").strip() == sha
    assert git(repo_path, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(repo_path, "diff-tree", "-r", "--no-renames", "--name-status", head, sha).split() == [
        "M", "a.txt", "D", "b.txt", "A", "debug.log", "A", "new.txt"
    ]
    assert git(repo_path, "log", "-1", "--format=%an <%ae>|%cn", sha).strip() == (
        "Harness Bot <bot@example.invalid>|Harness Bot"
    )
    assert git(repo_path, "log", "-1", "--format=%B", sha) == (
        "Fix ITEM-1\n\nBody text.\n\nHarness-Item: ITEM-1\nHarness-Attempt: 1\n\n"
    )
    # The unrelated staged change is still staged, the unrelated edit still unstaged; ours are clean.
    assert git(repo_path, "diff", "--cached", "--name-only").split() == ["README.md"]
    assert git(repo_path, "diff", "--name-only").split() == ["sub/c.txt"]
    assert gitops.is_clean(repo, ["a.txt", "b.txt", "new.txt"])
    assert gitops.trailers_of(repo, sha) == {"Harness-Item": ["ITEM-1"], "Harness-Attempt": ["1"]}


def test_commit_paths_works_on_detached_head(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    git(repo_path, "checkout", "-q", "--detach")
    (repo_path / "a.txt").write_text("detached\n")
    sha = gitops.commit_paths(repo, ["a.txt"], "on detached head", identity=IDENTITY)
    assert gitops.head_sha(repo) == sha
    assert git(repo_path, "rev-parse", "main").strip() != sha


@pytest.mark.parametrize(
    ("paths", "trailers", "match"),
    [
        (["sub"], [], "takes file paths, got folders: sub"),
        (["ghost.txt"], [], "not in the working tree and not in HEAD"),
        (["a.txt"], [], "nothing to commit"),
        (["a.txt"], [("Bad Key", "v")], "trailer key"),
        (["a.txt"], [("Key", "two\nlines")], "single-line"),
        (["../x"], [], "not a repo-relative file path"),
        ([], [], "at least one path"),
    ],
)
def test_commit_paths_rejects_bad_requests(
    repo_path: Path, paths: list[str], trailers: list[tuple[str, str]], match: str
) -> None:
    repo = gitops.open_repo(repo_path)
    if trailers:
        (repo_path / "a.txt").write_text("changed\n")
    head = gitops.head_sha(repo)
    with pytest.raises(GitError, match=match):
        gitops.commit_paths(repo, paths, "msg", identity=IDENTITY, trailers=trailers)
    assert gitops.head_sha(repo) == head


def test_init_repo_commits_everything_with_its_own_identity(tmp_path: Path) -> None:
    folder = tmp_path / "new"
    folder.mkdir()
    (folder / "pkg").mkdir()
    (folder / "pkg" / "m.py").write_text("x = 1\n")
    (folder / ".gitignore").write_text("*.log\n")
    (folder / "debug.log").write_text("ignored\n")
    repo = gitops.init_repo(folder, branch="trunk", identity=("Demo Person", "demo@example.invalid"),
                            message="first")
    assert git(folder, "symbolic-ref", "HEAD").strip() == "refs/heads/trunk"
    assert git(folder, "ls-files").split() == [".gitignore", "pkg/m.py"]
    assert git(folder, "config", "--local", "user.name").strip() == "Demo Person"
    info = gitops.commit_info(repo, "HEAD")
    assert (info.author_name, info.author_email, info.subject) == ("Demo Person", "demo@example.invalid", "first")
    assert gitops.is_clean(repo)


def test_rewrite_commit_keeps_the_author_and_tree_with_folder_replaces_one_folder(repo_path: Path,
                                                                                 tmp_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    head = gitops.head_sha(repo)
    before = state(repo_path)
    source = tmp_path / "files"
    (source / "inner").mkdir(parents=True)
    (source / "one.txt").write_text("one\n")
    (source / "inner" / "two.txt").write_text("two\n")
    tree = gitops.tree_with_folder(repo, head, "sub", source)
    sha = gitops.rewrite_commit(repo, head, tree, head, "rewritten\n\nKey: value\n", identity=IDENTITY)
    assert state(repo_path) == before  # only objects were written
    listed = git(repo_path, "ls-tree", "-r", "--name-only", sha).split()
    assert [p for p in listed if p.startswith("sub/")] == ["sub/inner/two.txt", "sub/one.txt"]
    assert git(repo_path, "show", f"{sha}:a.txt") == "a\n"
    assert git(repo_path, "log", "-1", "--format=%an|%ad|%cn <%ce>|%P|%B", "--date=iso-strict", sha).strip() == (
        f"Test Author|2025-01-01T12:00:00+00:00|Harness Bot <bot@example.invalid>|{head}|rewritten\n\nKey: value")
    removed = gitops.tree_with_folder(repo, head, "sub", None)
    assert not [p for p in git(repo_path, "ls-tree", "-r", "--name-only", removed).split() if p.startswith("sub/")]


def test_move_head_checks_out_the_new_commit_and_refuses_when_something_is_in_the_way(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    old = gitops.head_sha(repo)
    git(repo_path, "checkout", "-q", "-b", "side")
    (repo_path / "a.txt").write_text("a on side\n")
    (repo_path / "e.txt").write_text("e on side\n")
    git(repo_path, "add", "-A")
    git(repo_path, "commit", "-qm", "side")
    new = gitops.head_sha(repo)
    git(repo_path, "checkout", "-q", "main")

    (repo_path / "e.txt").write_text("untracked here\n")  # an untracked file the move would overwrite
    with pytest.raises(GitError, match="e.txt"):
        gitops.move_head(repo, old, new, reason="test")
    assert gitops.head_sha(repo) == old and (repo_path / "e.txt").read_text() == "untracked here\n"
    (repo_path / "e.txt").unlink()
    with pytest.raises(GitError, match="no longer at"):
        gitops.move_head(repo, new, old, reason="test")

    gitops.move_head(repo, old, new, reason="test")
    assert git(repo_path, "symbolic-ref", "HEAD").strip() == "refs/heads/main"
    assert git(repo_path, "rev-parse", "main").strip() == new
    assert (repo_path / "a.txt").read_text() == "a on side\n" and (repo_path / "e.txt").read_text() == "e on side\n"
    assert git(repo_path, "status", "--porcelain") == ""
