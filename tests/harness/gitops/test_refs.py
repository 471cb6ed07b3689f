"""Refs by compare-and-swap, listing by prefix, message-only commits."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import gitops
from harness.errors import GitError
from tests.conftest import git
from tests.harness.gitops.helpers import IDENTITY

RACER = textwrap.dedent(
    """
    import sys, time
    from harness import gitops
    repo = gitops.open_repo(sys.argv[1])
    sha = gitops.message_commit(repo, "racer " + sys.argv[2], identity=("Racer", "racer@example.invalid"))
    while time.time() < float(sys.argv[3]):
        time.sleep(0.001)
    print("won" if gitops.update_ref_cas(repo, "refs/harness/lease/X", sha, None, reason="race") else "lost")
    """
)


def test_update_ref_cas_creates_only_when_absent_and_moves_only_from_the_expected_value(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    head = gitops.head_sha(repo)
    one = gitops.message_commit(repo, "one", identity=IDENTITY)
    two = gitops.message_commit(repo, "two", identity=IDENTITY)
    ref = "refs/harness/lease/ITEM-1"
    assert gitops.read_ref(repo, ref) is None
    assert gitops.update_ref_cas(repo, ref, one, None, reason="t") is True
    assert gitops.update_ref_cas(repo, ref, two, None, reason="t") is False  # exists already
    assert gitops.update_ref_cas(repo, ref, two, head, reason="t") is False  # not the expected value
    assert gitops.read_ref(repo, ref) == one
    assert gitops.update_ref_cas(repo, ref, two, one, reason="t") is True
    assert gitops.delete_ref_cas(repo, ref, one) is False and gitops.read_ref(repo, ref) == two
    assert gitops.delete_ref_cas(repo, ref, two) is True and gitops.read_ref(repo, ref) is None
    assert gitops.delete_ref_cas(repo, ref, two) is False  # already gone


def test_refs_under_lists_one_prefix_and_message_commits_carry_their_text(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    sha = gitops.message_commit(repo, "lease\n\nHarness-Lease-Pid: 7\n", identity=IDENTITY)
    gitops.set_ref(repo, "refs/harness/lease/A", sha, reason="t")
    gitops.set_ref(repo, "refs/harness/lease/B", sha, reason="t")
    gitops.set_ref(repo, "refs/harness/failed/A/1", gitops.head_sha(repo), reason="t")
    assert gitops.refs_under(repo, "refs/harness/lease/") == {"refs/harness/lease/A": sha,
                                                              "refs/harness/lease/B": sha}
    assert gitops.trailers_of(repo, sha) == {"Harness-Lease-Pid": ["7"]}
    assert git(repo_path, "log", "--format=%P", "-1", sha).strip() == ""  # a root commit
    assert git(repo_path, "ls-tree", sha) == ""  # of the empty tree
    with pytest.raises(GitError, match="not a valid full ref name"):
        gitops.read_ref(repo, "lease/A")


def test_of_processes_racing_for_one_ref_exactly_one_wins(repo_path: Path) -> None:
    import time

    start = time.time() + 1.5
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(repo_path), str(n), str(start)],
                               stdout=subprocess.PIPE, text=True) for n in range(6)]
    answers = [p.communicate(timeout=60)[0].strip() for p in racers]
    assert sorted(answers) == ["lost"] * 5 + ["won"], answers
    winner = answers.index("won")
    message = git(repo_path, "log", "-1", "--format=%s", "refs/harness/lease/X").strip()
    assert message == f"racer {winner}"
