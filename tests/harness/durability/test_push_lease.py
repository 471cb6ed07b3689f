"""push_branch with a lease: the branch's compare-and-swap and the lease given back in one atomic push."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.commands._shared import repo_lock
from harness.durability.push import load_pending, pending_path, push_branch
from harness.gitops import open_repo
from tests.conftest import git, share_through_remote
from tests.harness.durability.test_push import commit, remote_main, workspace

LEASE = "refs/harness/lease/IT-1"


@pytest.fixture
def setup(make_repo: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path, Path]:
    """(remote.git, clone a = the harness's repo, clone b = another machine), both up to date."""
    a = make_repo({"shared.txt": "one\ntwo\n"}, name="a")
    remote, b = share_through_remote(a, tmp_path)
    return remote, a, b


def _lease(repo, message: str) -> str:
    """A lease-like commit pushed to the remote's lease ref."""
    sha = git(repo, "commit-tree", "-m", message, "4b825dc642cb6eb9a060e54bf8d69288fbee4904").strip()  # empty tree
    git(repo, "push", "-q", "--force", "origin", f"{sha}:{LEASE}")
    return sha


def _remote_lease(remote) -> str:
    return git(remote, "for-each-ref", "--format=%(objectname)", LEASE).strip()


def test_the_push_gives_the_lease_back_in_the_same_atomic_push(setup: tuple) -> None:
    remote, a, _ = setup
    base = remote_main(remote)
    ours = _lease(a, "our lease")
    sha = commit(a, "new.txt", "x\n", "work")
    result = push_branch(workspace(a), expected=base, lease=(LEASE, ours))
    assert result.ok and not result.lease_lost, result.message
    assert remote_main(remote) == sha and _remote_lease(remote) == ""


def test_a_lease_taken_over_before_the_push_stops_it_whole_and_nothing_is_left_pending(setup: tuple) -> None:
    remote, a, b = setup
    base = remote_main(remote)
    ours = _lease(a, "our lease")
    theirs = _lease(b, "their lease: taken over")
    commit(a, "new.txt", "x\n", "work")
    result = push_branch(workspace(a), expected=base, lease=(LEASE, ours))
    assert result.lease_lost and not result.ok, result.message
    assert "no longer holds" in result.message
    assert remote_main(remote) == base and _remote_lease(remote) == theirs
    assert not pending_path(open_repo(a)).exists()


def test_a_lease_taken_over_while_a_lost_race_was_replayed_stops_the_push_after_the_replay(setup: tuple) -> None:
    remote, a, b = setup
    base = remote_main(remote)
    ours = _lease(a, "our lease")
    commit(a, "ours.txt", "a\n", "harness work")
    commit(b, "theirs.txt", "b\n", "someone else's work")
    git(b, "push", "-q", "origin", "HEAD:refs/heads/main")
    moved = remote_main(remote)
    theirs = _lease(b, "their lease: taken over")
    result = push_branch(workspace(a), expected=base, lease=(LEASE, ours))
    assert result.lease_lost and not result.ok, result.message
    assert remote_main(remote) == moved and _remote_lease(remote) == theirs
    assert not pending_path(open_repo(a)).exists()


def _pending_after_a_network_failure(remote: Path, a: Path) -> tuple[str, str, str]:
    """Our lease, a commit guarded by it, and its push failed with the remote unreachable (then back):
    (base, our lease, the commit)."""
    base = remote_main(remote)
    ours = _lease(a, "our lease")
    sha = commit(a, "new.txt", "x\n", "work\n\nHarness-Item: IT-1")
    offline = remote.with_name("remote.offline")
    remote.rename(offline)
    try:
        failed = push_branch(workspace(a), expected=base, lease=(LEASE, ours))
    finally:
        offline.rename(remote)
    assert not failed.ok and not failed.lease_lost, failed.message
    record = load_pending(open_repo(a))
    assert record is not None and record["leases"] == [{"ref": LEASE, "sha": ours}]
    return base, ours, sha


def _retried_by_a_command(a: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Take the lock as every command does (a pending push is retried then); what it printed."""
    capsys.readouterr()
    with repo_lock(workspace(a), "harness test"):
        pass
    return capsys.readouterr().err


def test_a_pending_push_records_its_lease_and_its_retry_gives_the_lease_back_in_the_same_atomic_push(
        setup: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    remote, a, _ = setup
    _, _, sha = _pending_after_a_network_failure(remote, a)
    assert _remote_lease(remote) != ""  # kept while the push is pending
    said = _retried_by_a_command(a, capsys)
    assert f"pushed {sha[:10]} to origin main" in said
    assert remote_main(remote) == sha and _remote_lease(remote) == ""
    assert not pending_path(open_repo(a)).exists()


def test_a_pending_push_whose_lease_was_taken_over_meanwhile_is_withdrawn_on_retry_and_pushes_nothing(
        setup: tuple, capsys: pytest.CaptureFixture[str]) -> None:
    remote, a, b = setup
    base, _, sha = _pending_after_a_network_failure(remote, a)
    theirs = _lease(b, "their lease: taken over")
    said = _retried_by_a_command(a, capsys)
    assert remote_main(remote) == base and _remote_lease(remote) == theirs
    saved = f"refs/harness/superseded/IT-1/pending-{sha[:10]}"
    assert git(a, "rev-parse", saved).strip() == sha and git(a, "rev-parse", "HEAD").strip() == base
    assert f"withdrawn (saved on {saved}), nothing was pushed" in said
    assert not pending_path(open_repo(a)).exists()
