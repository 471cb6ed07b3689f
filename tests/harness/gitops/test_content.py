"""Contents at a revision and the lines a change added or modified."""
from __future__ import annotations

from pathlib import Path

from harness import gitops
from tests.conftest import git


def test_blob_text_and_missing_paths(make_repo) -> None:
    repo = make_repo({"a.py": "one\ntwo\n", "d/b.txt": "b\n"})
    r = gitops.open_repo(repo)
    assert gitops.blob_text(r, "HEAD", "a.py") == "one\ntwo\n"
    assert gitops.blob_text(r, "HEAD", "nope.py") is None
    assert gitops.blob_text(r, "HEAD", "d") is None  # a folder is not a file
    assert gitops.blob_bytes(r, "HEAD", "d/b.txt") == b"b\n"


def test_changed_lines_of_the_working_tree_and_of_commits(make_repo) -> None:
    repo = make_repo({"a.py": "1\n2\n3\n4\n", "gone.py": "x\n"})
    r = gitops.open_repo(repo)
    base = gitops.head_sha(r)
    (repo / "a.py").write_text("1\nTWO\n3\n4\nfive\nsix\n")
    (repo / "new.py").write_text("n1\nn2\n")
    (repo / "gone.py").unlink()
    lines = gitops.changed_lines(r, base, None, ["a.py", "new.py", "gone.py"])
    assert lines == {"a.py": frozenset({2, 5, 6}), "new.py": frozenset({1, 2}), "gone.py": frozenset()}
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "change")
    assert gitops.changed_lines(r, base, "HEAD", ["a.py", "new.py"]) == {
        "a.py": frozenset({2, 5, 6}), "new.py": frozenset({1, 2})}
    assert gitops.changed_lines(r, base, "HEAD", []) == {}


def test_changed_lines_leaves_the_index_alone(make_repo) -> None:
    repo: Path = make_repo({"a.py": "1\n"})
    r = gitops.open_repo(repo)
    (repo / "b.py").write_text("b\n")
    before = git(repo, "status", "--porcelain")
    gitops.changed_lines(r, "HEAD", None, ["b.py"])
    assert git(repo, "status", "--porcelain") == before == "?? b.py\n"
