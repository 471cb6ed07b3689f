"""The attempt's facts: lines added and removed come from gitops, and a git failure is an error, never 0/0."""
from __future__ import annotations

import pytest

from harness.config import CapsConfig, Config
from harness.errors import GitError
from harness.gitops import changes_between, open_repo, working_changes
from harness.iteration.attempt_record import line_counts
from harness.proof.changes import classify_changes
from tests.conftest import git

FILES = {"pkg/calc.py": "def add(a, b):\n    return a + b\n",
         "tests/test_calc.py": "def test_add():\n    pass\n"}


def classified(changes):
    return classify_changes(changes, Config(test_globs=("tests/**",), caps=CapsConfig(changed_file_bytes=1 << 20)))


def test_line_counts_of_the_working_tree_include_new_files(make_repo) -> None:
    path = make_repo(FILES)
    base = git(path, "rev-parse", "HEAD").strip()
    (path / "pkg/calc.py").write_text(
        "def add(a, b):\n    return b + a\n\n\ndef mul(a, b):\n    return a * b\n")
    (path / "tests/test_mul.py").write_text("def test_mul():\n    pass\n")
    repo = open_repo(path)
    assert line_counts(repo, base, None, classified(working_changes(repo))) == (7, 1)


def test_line_counts_of_committed_changes(make_repo) -> None:
    path = make_repo(FILES)
    base = git(path, "rev-parse", "HEAD").strip()
    (path / "pkg/calc.py").write_text("def add(a, b):\n    return a + b\n\n\ndef neg(a):\n    return -a\n")
    (path / "tests/test_calc.py").unlink()
    git(path, "add", "-A")
    git(path, "commit", "-qm", "neg")
    head = git(path, "rev-parse", "HEAD").strip()
    repo = open_repo(path)
    assert line_counts(repo, base, head, classified(changes_between(repo, base, head))) == (4, 2)


def test_a_git_failure_is_a_git_error_not_zero_lines(make_repo) -> None:
    path = make_repo(FILES)
    base = git(path, "rev-parse", "HEAD").strip()
    (path / "pkg/calc.py").write_text("changed\n")
    git(path, "commit", "-qam", "change")
    head = git(path, "rev-parse", "HEAD").strip()
    repo = open_repo(path)
    changeset = classified(changes_between(repo, base, head))
    missing = "0" * 40  # a base commit this repository does not have (a shallow clone, a rewritten history)
    with pytest.raises(GitError, match="0000000000") as info:
        line_counts(repo, missing, head, changeset)
    assert "git" in str(info.value)
    with pytest.raises(GitError, match="0000000000"):
        line_counts(repo, missing, None, changeset)
