from __future__ import annotations

from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from harness.gitops import Change


def test_git_failures_carry_command_stderr_and_advice(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    (repo_path / "a.txt").write_text("changed\n")
    (repo_path / ".git" / "index.lock").write_text("")
    with pytest.raises(GitError) as info:
        gitops.discard_changes(repo, [Change("a.txt", "modified", 8)])
    message = str(info.value)
    assert "`git checkout HEAD -- a.txt` failed" in message
    assert "index.lock" in message and "Another git process" in message
