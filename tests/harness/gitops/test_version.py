from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.gitops import MERGE_TREE_WRITE_TREE, git_version, parse_git_version


@pytest.mark.parametrize(("text", "number"), [
    ("git version 2.39.5\n", (2, 39, 5)),
    ("git version 2.39.3 (Apple Git-146)", (2, 39, 3)),
    ("git version 2.45.1.windows.1", (2, 45, 1)),
    ("git version 2.38.0.rc1", (2, 38, 0)),
])
def test_git_versions_are_read_as_git_prints_them(text: str, number: tuple[int, ...]) -> None:
    assert parse_git_version(text) == number


def test_an_unreadable_answer_is_none() -> None:
    assert parse_git_version("hub version 2.14") is None and parse_git_version("") is None


def test_the_installed_git_is_found_with_its_path_and_version(tmp_path: Path) -> None:
    found = git_version(tmp_path)
    assert found is not None and found.path == shutil.which("git")
    assert found.number >= (2,) and found.text.startswith("git version ")
    assert found.supports_merge_tree_write_tree == (found.number >= MERGE_TREE_WRITE_TREE)


def test_no_git_on_path_is_none(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert git_version(tmp_path) is None
