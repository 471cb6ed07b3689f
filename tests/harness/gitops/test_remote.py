"""Network git commands: a timeout ends them (and what they started), a failure is an answer."""
from __future__ import annotations

import time
from pathlib import Path

from harness import gitops
from harness.gitops import TIMED_OUT_STATUS
from tests.conftest import git


def test_push_and_a_rejection_in_porcelain_form(repo_path: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo = gitops.open_repo(repo_path)
    pushed = gitops.push_ref(repo, str(remote), "HEAD:refs/heads/main")
    assert pushed.ok and git(remote, "rev-parse", "main") == git(repo_path, "rev-parse", "HEAD")
    git(repo_path, "commit", "-q", "--amend", "-m", "rewritten")
    refused = gitops.push_ref(repo, str(remote), "HEAD:refs/heads/main")
    assert not refused.ok and refused.status != TIMED_OUT_STATUS
    assert any(line.startswith("!") and "[rejected]" in line for line in refused.output.splitlines())


def test_a_hanging_remote_times_out_and_is_ended(repo_path: Path, tmp_path: Path) -> None:
    marker = tmp_path / "still-running"
    git(repo_path, "config", "protocol.ext.allow", "always")
    # The "remote" is a command that never answers; after the timeout it must not live on.
    hang = tmp_path / "hang.sh"
    hang.write_text(f"sleep 3\ntouch {marker}\nsleep 30\n")
    git(repo_path, "remote", "add", "slow", f"ext::sh {hang}")
    started = time.monotonic()
    answer = gitops.push_ref(gitops.open_repo(repo_path), "slow", "HEAD:refs/heads/main", timeout_s=1)
    assert time.monotonic() - started < 10
    assert answer.status == TIMED_OUT_STATUS and not answer.ok
    assert answer.output == "git push --porcelain slow HEAD:refs/heads/main did not finish within 1 s"
    time.sleep(3)
    assert not marker.exists(), "the remote's command outlived the timeout"


def test_fetch_branch_names_the_remote_head_and_a_lease_push_moves_it_only_from_that_head(
        repo_path: Path, tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    repo = gitops.open_repo(repo_path)
    assert gitops.push_ref(repo, str(remote), "HEAD:refs/heads/main").ok
    git(tmp_path, "clone", "-q", str(remote), "other")
    other = tmp_path / "other"
    (other / "theirs.txt").write_text("theirs\n")
    git(other, "add", "theirs.txt")
    git(other, "commit", "-qm", "theirs")
    git(other, "push", "-q", "origin", "HEAD:refs/heads/main")
    theirs = git(other, "rev-parse", "HEAD").strip()

    fetched = gitops.fetch_branch(repo, str(remote), "main")
    assert fetched.answer.ok and fetched.head == theirs and gitops.commit_exists(repo, theirs)
    assert not gitops.fetch_branch(repo, str(remote), "no-such-branch").head

    # A commit on their head, pushed by compare-and-swap: refused once the remote moved on from that head.
    mine = gitops.commit_tree(repo, gitops.tree_of(repo, "HEAD"), theirs, "mine", identity=("Bot", "b@x.invalid"))
    (other / "more.txt").write_text("more\n")
    git(other, "add", "more.txt")
    git(other, "commit", "-qm", "more")
    git(other, "push", "-q", "origin", "HEAD:refs/heads/main")
    moved = git(other, "rev-parse", "HEAD").strip()
    refused = gitops.push_ref_cas(repo, str(remote), "refs/heads/main", mine, theirs)
    assert not refused.ok and any(line.startswith("!") for line in refused.output.splitlines())
    assert git(remote, "rev-parse", "main").strip() == moved
    assert gitops.push_ref_cas(repo, str(remote), "refs/heads/main", mine, moved).ok
    assert git(remote, "rev-parse", "main").strip() == mine
