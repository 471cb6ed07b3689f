"""Shared fixtures: real git repositories in tmp_path with a pinned identity and dates.

Commits made by `git()` and `make_repo` carry fixed author and committer dates, so the same files and
messages give the same shas in every run. The harness's own commits keep the real time: gitops sets
their dates explicitly, and this environment only reaches the git commands the tests run themselves.
"""
from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.invalid",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.invalid",
    "GIT_AUTHOR_DATE": "2025-01-01T12:00:00+00:00",
    "GIT_COMMITTER_DATE": "2025-01-01T12:00:00+00:00",
}


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return stdout; fail the test with git's own message on error."""
    proc = subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, env={**os.environ, **GIT_ENV}, check=False
    )
    if proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}{proc.stdout}")
    return proc.stdout


def write_files(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., Path]:
    """Create a git repo holding `files`, committed once; identity is set per repo, never globally."""
    counter = iter(range(1000))

    def _make(files: dict[str, str] | None = None, name: str | None = None) -> Path:
        repo = tmp_path / (name or f"repo{next(counter)}")
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        git(repo, "config", "user.name", GIT_ENV["GIT_AUTHOR_NAME"])
        git(repo, "config", "user.email", GIT_ENV["GIT_AUTHOR_EMAIL"])
        git(repo, "config", "commit.gpgsign", "false")
        write_files(repo, files or {"README.md": "test repo\n"})
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        return repo

    return _make
