"""`git bisect run` in a temporary worktree: the first bad commit, skips, and no bisect state left behind."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness import gitops
from tests.conftest import git

# Exit 1 (bad) from value 3 on, 125 (skip) where the file holds "skip", 0 (good) otherwise.
STEP = [sys.executable, "-c",
        ("import sys; v = open('value.txt').read().strip(); "
         "sys.exit(125 if v == 'skip' else int(int(v) >= 3))")]


def history(make_repo: Callable[..., Path], values: list[str]) -> tuple[Path, list[str]]:
    repo_path = make_repo({"value.txt": f"{values[0]}\n"})
    shas = [git(repo_path, "rev-parse", "HEAD").strip()]
    for value in values[1:]:
        (repo_path / "value.txt").write_text(f"{value}\n")
        git(repo_path, "commit", "-q", "--allow-empty", "-am", f"value {value}")
        shas.append(git(repo_path, "rev-parse", "HEAD").strip())
    return repo_path, shas


def test_bisect_run_names_the_first_bad_commit_and_resets_the_bisect(make_repo: Callable[..., Path]) -> None:
    repo_path, shas = history(make_repo, ["0", "1", "2", "3", "4", "5"])
    repo = gitops.open_repo(repo_path)
    with gitops.temp_worktree(repo, shas[-1]) as worktree:
        run = gitops.bisect_run(worktree, good=shas[0], bad=shas[-1], step=STEP)
        assert (run.first_bad, run.candidates) == (shas[3], ())
        assert f"{shas[3]} is the first bad commit" in run.log
        # The worktree's own bisect state is gone: a later bisect there starts afresh.
        worktree_git_dir = Path(git(worktree, "rev-parse", "--absolute-git-dir").strip())
        assert not list(worktree_git_dir.glob("BISECT_*")), "the bisect was not reset"
        assert gitops.worktree_head(worktree) == shas[-1]
    assert not (repo_path / ".git" / "BISECT_LOG").exists()
    assert git(repo_path, "rev-parse", "HEAD").strip() == shas[-1]


def test_skipped_commits_leave_candidates(make_repo: Callable[..., Path]) -> None:
    repo_path, shas = history(make_repo, ["0", "skip", "skip", "5"])
    with gitops.temp_worktree(gitops.open_repo(repo_path), shas[-1]) as worktree:
        run = gitops.bisect_run(worktree, good=shas[0], bad=shas[-1], step=STEP)
    assert run.first_bad is None and set(run.candidates) == set(shas[1:])


def test_inherited_location_variables_do_not_redirect_the_worktree(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo_path, shas = history(make_repo, ["0", "1"])
    other = make_repo({"other.txt": "x\n"}, name="other")
    with gitops.temp_worktree(gitops.open_repo(repo_path), shas[0]) as worktree:
        # As inside the program `git bisect run` starts: git sets GIT_DIR for it.
        monkeypatch.setenv("GIT_DIR", str(other / ".git"))
        monkeypatch.setenv("GIT_WORK_TREE", str(other))
        gitops.checkout_detached(worktree, shas[1])
        assert gitops.worktree_head(worktree) == shas[1]
        assert (worktree / "value.txt").read_text() == "1\n"
