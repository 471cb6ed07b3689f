"""The shared fixtures keep their promise: repositories made at different times are identical, and each
test's repository is its own even though make_repo copies one built earlier."""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import threadpoolctl

from tests.conftest import RAM_DISK, RepoTemplates, git, ram_temp_dir, single_threaded_blas


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
    assert git(first, "log", "--format=%aI %cI").split() == ["2025-01-01T12:00:00+00:00"] * 4  # initial too


def test_templates_built_apart_give_the_same_commit(tmp_path: Path) -> None:
    """What the copies share is built from scratch once per test process: two builds agree."""
    files = {"a.txt": "same\n", "pkg/b.py": "x = 1\n"}
    RepoTemplates(tmp_path / "one").copy(files, tmp_path / "first")
    time.sleep(1.1)
    RepoTemplates(tmp_path / "two").copy(files, tmp_path / "second")
    assert git(tmp_path / "first", "rev-parse", "HEAD") == git(tmp_path / "second", "rev-parse", "HEAD")


def test_each_repo_is_a_private_copy_that_names_no_other_path(make_repo: Callable[..., Path],
                                                              repo_templates: RepoTemplates) -> None:
    files = {"a.txt": "same\n"}
    first, second = make_repo(files), make_repo(files, name="other")
    assert second.name == "other" and first != second
    (first / "a.txt").write_text("changed\n")
    git(first, "commit", "-qam", "change")
    git(first, "branch", "side")
    assert git(second, "status", "--porcelain") == "" and (second / "a.txt").read_text() == "same\n"
    assert git(second, "branch", "--format=%(refname:short)").split() == ["main"]
    assert git(second, "log", "--format=%s").split() == ["initial"]
    assert git(second, "rev-parse", "--show-toplevel").strip() == str(second)
    assert git(second, "worktree", "list", "--porcelain").splitlines()[0] == f"worktree {second}"
    template_root = str(repo_templates.root)
    for path in (second / ".git").rglob("*"):  # nothing in the copy points back at the template
        if path.is_file():
            assert template_root.encode() not in path.read_bytes(), path


def test_temporary_files_go_to_a_ram_disk_only_where_one_is_usable_and_tmpdir_is_not_set(tmp_path: Path) -> None:
    assert ram_temp_dir({}, tmp_path) == tmp_path  # writable, with room (the suite's own temp dir has it)
    assert ram_temp_dir({"TMPDIR": "/somewhere"}, tmp_path) is None  # the user's choice wins
    assert ram_temp_dir({}, tmp_path / "missing") is None
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    if os.access(locked, os.W_OK):  # root writes anywhere: the check cannot be shown here
        return
    assert ram_temp_dir({}, locked) is None


def test_the_suite_keeps_its_temporary_files_where_ram_temp_dir_says(tmp_path: Path) -> None:
    expected = ram_temp_dir(os.environ)
    if expected is not None:
        assert tempfile.gettempdir() == str(expected) and tmp_path.is_relative_to(expected)
    else:
        assert not tmp_path.is_relative_to(RAM_DISK)


def test_numpys_blas_runs_single_threaded_in_the_test_processes() -> None:
    import numpy as np  # noqa: F401 (loads OpenBLAS, which reads its thread count now)

    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas, "numpy loaded no BLAS that threadpoolctl can see"
    assert {pool["num_threads"] for pool in blas} == {1}, blas


def test_a_users_own_blas_thread_count_wins() -> None:
    environ = {"OPENBLAS_NUM_THREADS": "4"}
    single_threaded_blas(environ)
    assert environ == {"OPENBLAS_NUM_THREADS": "4"}
    empty: dict[str, str] = {}
    single_threaded_blas(empty)
    assert empty == {"OPENBLAS_NUM_THREADS": "1"}
