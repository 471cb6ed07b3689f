from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness import gitops
from tests.conftest import git
from tests.harness.gitops.helpers import registered_worktrees


def test_temp_worktree_checks_out_rev_and_is_always_removed(repo_path: Path) -> None:
    repo = gitops.open_repo(repo_path)
    base = gitops.head_sha(repo)
    (repo_path / "a.txt").write_text("later\n")
    git(repo_path, "commit", "-qam", "later")
    with gitops.temp_worktree(repo, base) as wt:
        assert (wt / "a.txt").read_text() == "a\n"
        assert git(wt, "rev-parse", "HEAD").strip() == base
        assert len(registered_worktrees(repo_path)) == 1
    assert not wt.exists() and registered_worktrees(repo_path) == []
    with pytest.raises(RuntimeError, match="boom"), gitops.temp_worktree(repo, "HEAD") as wt2:
        raise RuntimeError("boom")
    assert not wt2.exists() and registered_worktrees(repo_path) == []


def test_worktree_of_a_killed_process_is_pruned(repo_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from harness import gitops
        repo = gitops.open_repo({str(repo_path)!r})
        with gitops.temp_worktree(repo, "HEAD") as wt:
            print(wt, flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        wt = Path(proc.stdout.readline().strip())  # type: ignore[union-attr]
        assert wt.is_dir()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()  # type: ignore[union-attr]
    assert registered_worktrees(repo_path) == [str(wt)]
    removed = gitops.prune_stale_worktrees(gitops.open_repo(repo_path))
    assert removed == [wt]
    assert registered_worktrees(repo_path) == [] and not wt.parent.exists()
