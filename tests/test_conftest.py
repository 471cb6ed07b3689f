"""The shared fixtures keep their promise: repositories made at different times are identical."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from tests.conftest import git


def test_repos_made_at_different_times_have_the_same_commits(make_repo: Callable[..., Path]) -> None:
    first = make_repo({"a.txt": "same\n"})
    time.sleep(1.1)  # git dates have one-second resolution
    second = make_repo({"a.txt": "same\n"})
    assert git(first, "rev-parse", "HEAD") == git(second, "rev-parse", "HEAD")
    for repo in (first, second):
        (repo / "b.txt").write_text("next\n")
        git(repo, "add", "b.txt")
        git(repo, "commit", "-q", "-m", "next")
        time.sleep(1.1)
    assert git(first, "rev-parse", "HEAD") == git(second, "rev-parse", "HEAD")
    assert git(first, "log", "-1", "--format=%aI %cI").split() == ["2025-01-01T12:00:00+00:00"] * 2
