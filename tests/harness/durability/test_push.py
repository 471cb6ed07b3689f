from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.config import CommitConfig, Config, PushConfig
from harness.durability.push import PENDING_NAME, pending_path, push_branch, retry_pending
from harness.gitops import open_repo
from harness.workspace import Workspace
from tests.conftest import git, share_through_remote

CONFIG = PushConfig(remote="origin", branch="main")
IDENTITY = CommitConfig(name="ptycho-harness", email="harness@localhost")


def workspace(repo: Path, push: PushConfig | None = CONFIG) -> Workspace:
    """The harness's view of a plain repository: default settings, pushing to origin main."""
    return Workspace(open_repo(repo), repo.resolve(), Config(push=push, commit=IDENTITY))


@pytest.fixture
def setup(make_repo: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """(remote.git, clone a = the harness's repo, clone b = someone else), both up to date."""
    a = make_repo({"shared.txt": "one\ntwo\n"}, name="a")
    remote, b = share_through_remote(a, tmp_path)
    return remote, a, b


def commit(repo: Path, rel: str, text: str, message: str) -> str:
    (repo / rel).write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def remote_main(remote: Path) -> str:
    return git(remote, "rev-parse", "refs/heads/main").strip()


def test_push_sends_head_to_the_branch(setup: tuple[Path, Path, Path]) -> None:
    remote, a, _ = setup
    sha = commit(a, "new.txt", "x\n", "work")
    result = push_branch(workspace(a))
    assert result.ok and result.attempts == 1 and not result.rebased
    assert remote_main(remote) == sha and sha[:10] in result.message
    assert not pending_path(open_repo(a)).exists()


def test_rejected_push_is_rebased_and_retried(setup: tuple[Path, Path, Path]) -> None:
    remote, a, b = setup
    theirs = commit(b, "theirs.txt", "b\n", "someone else's work")
    git(b, "push", "-q", "origin", "HEAD:refs/heads/main")
    commit(a, "ours.txt", "a\n", "harness work")
    result = push_branch(workspace(a))
    assert result.ok and result.attempts == 2 and result.rebased, result.message
    head = git(a, "rev-parse", "HEAD").strip()
    assert remote_main(remote) == head
    assert git(a, "rev-parse", "HEAD~1").strip() == theirs
    assert git(a, "log", "-1", "--format=%cn <%ce>|%an|%s").strip() == (
        "ptycho-harness <harness@localhost>|Test Author|harness work")
    assert (a / "theirs.txt").read_text() == "b\n" and (a / "ours.txt").read_text() == "a\n"


def test_rebase_conflict_is_aborted_reported_and_kept_pending(setup: tuple[Path, Path, Path]) -> None:
    remote, a, b = setup
    commit(b, "shared.txt", "one\nTHEIRS\n", "their edit")
    git(b, "push", "-q", "origin", "HEAD:refs/heads/main")
    theirs = remote_main(remote)
    ours = commit(a, "shared.txt", "one\nOURS\n", "our edit")
    repo = open_repo(a)
    result = push_branch(workspace(a))
    assert not result.ok and not result.rebased and result.attempts == 1
    assert "conflicts in shared.txt" in result.message and "rebase this branch onto it by hand" in result.message
    # The branch is as it was: our commit on top, no rebase left in progress, a clean tree.
    assert git(a, "rev-parse", "HEAD").strip() == ours and (a / "shared.txt").read_text() == "one\nOURS\n"
    assert git(a, "status", "--porcelain") == ""
    assert not (a / ".git" / "rebase-merge").exists() and not (a / ".git" / "rebase-apply").exists()
    assert remote_main(remote) == theirs
    record = json.loads(pending_path(repo).read_text())
    assert record["head"] == ours and "conflict" in record["reason"]


def test_failed_push_is_recorded_and_retried_at_the_next_start(setup: tuple[Path, Path, Path]) -> None:
    remote, a, _ = setup
    before = remote_main(remote)
    hidden = remote.with_name("remote-away.git")
    remote.rename(hidden)
    sha = commit(a, "new.txt", "x\n", "work while offline")
    repo = open_repo(a)
    result = push_branch(workspace(a))
    assert not result.ok and result.attempts == 1 and not result.rebased
    path = a / ".git" / "harness" / PENDING_NAME
    assert pending_path(repo) == path.resolve() and path.is_file()
    record = json.loads(path.read_text())
    assert record["head"] == sha and record["remote"] == "origin" and record["branch"] == "main"
    assert record["failures"] == 1
    assert str(path.resolve()) in result.message and "retries" in result.message
    assert git(a, "rev-parse", "HEAD").strip() == sha  # the commit is never lost

    # Still away at the next start: the record stays, and counts the failure.
    again = retry_pending(workspace(a))
    assert again is not None and not again.ok
    assert json.loads(path.read_text())["failures"] == 2

    hidden.rename(remote)
    assert remote_main(remote) == before
    retried = retry_pending(workspace(a))
    assert retried is not None and retried.ok
    assert remote_main(remote) == sha and not path.exists()
    assert retry_pending(workspace(a)) is None


def test_pending_push_without_push_config_is_reported(setup: tuple[Path, Path, Path]) -> None:
    remote, a, _ = setup
    repo = open_repo(a)
    assert retry_pending(workspace(a, None)) is None
    remote.rename(remote.with_name("away.git"))
    commit(a, "new.txt", "x\n", "work")
    assert not push_branch(workspace(a)).ok
    result = retry_pending(workspace(a, None))
    assert result is not None and not result.ok and "`push` is not configured" in result.message
    assert pending_path(repo).exists()


def test_a_push_that_needs_replaying_waits_for_a_clean_working_tree(setup: tuple[Path, Path, Path]) -> None:
    remote, a, b = setup
    theirs = commit(b, "theirs.txt", "b\n", "someone else's work")
    git(b, "push", "-q", "origin", "HEAD:refs/heads/main")
    ours = commit(a, "ours.txt", "a\n", "harness work")
    (a / "shared.txt").write_text("one\nuncommitted\n")
    result = push_branch(workspace(a))
    assert not result.ok and not result.rebased and "holds uncommitted changes" in result.message
    assert git(a, "rev-parse", "HEAD").strip() == ours and remote_main(remote) == theirs
    assert (a / "shared.txt").read_text() == "one\nuncommitted\n" and not (a / "theirs.txt").exists()

    git(a, "checkout", "--", "shared.txt")
    retried = retry_pending(workspace(a))
    assert retried is not None and retried.ok and retried.rebased
    assert remote_main(remote) == git(a, "rev-parse", "HEAD").strip()
    assert git(a, "rev-parse", "HEAD~1").strip() == theirs and not pending_path(open_repo(a)).exists()
