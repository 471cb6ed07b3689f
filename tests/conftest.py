"""Shared fixtures: real git repositories in tmp_path with a pinned identity and dates.

Commits made by `git()` and `make_repo` carry fixed author and committer dates, so the same files and
messages give the same shas in every run. The harness's own commits keep the real time: gitops sets
their dates explicitly, and this environment only reaches the git commands the tests run themselves.

`make_repo` builds each distinct initial repository once per test process (each xdist worker has its
own) and gives every test its own copy: a repository holds no absolute path of itself (no worktree, no
`core.worktree`), so a copied one with its index refreshed is the same repository, five git processes
cheaper.

BLAS runs single-threaded in the test processes (see BLAS_THREAD_VARIABLES below).

Temporary files (tmp_path, and what the harness under test makes with `tempfile`) go to a RAM disk,
/dev/shm, when there is one with room and the user has not chosen a TMPDIR: the harness fsyncs what it
writes (evidence, journal, ledger; about a hundred fsyncs per proven iteration), and an fsync costs about
7 ms on this machine's disk against microseconds there. Passing tests' folders are removed at the end
(`tmp_path_retention_policy = "failed"` in pyproject.toml), so the RAM holds only failures to look at.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

RAM_DISK = Path("/dev/shm")
RAM_DISK_MIN_FREE = 4 << 30  # bytes; below this the suite's repositories go to the ordinary temporary dir


def ram_temp_dir(environ: dict[str, str] | os._Environ[str], ram_disk: Path = RAM_DISK) -> Path | None:
    """The RAM disk to use for temporary files, or None: none here, too full, not writable, or the user
    set TMPDIR (their choice wins)."""
    if environ.get("TMPDIR") or not ram_disk.is_dir() or not os.access(ram_disk, os.W_OK | os.X_OK):
        return None
    stats = os.statvfs(ram_disk)
    return ram_disk if stats.f_bavail * stats.f_frsize >= RAM_DISK_MIN_FREE else None


# numpy's and scipy's OpenBLAS start one thread per core by default. The suite runs one test process per
# core (`-n 2`), and there a threaded BLAS call waits on threads that have no core: a 96 x 96 complex
# matrix-vector product took 24 ms against 0.25 ms single-threaded, and tests/ptycho_torch/test_metrics.py
# 118 s against 18 s (benchmarks/RESULTS.md). OpenBLAS reads this when it loads, so it is set before any
# test module imports numpy; xdist's workers, started later, inherit it. A user's own setting wins.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS",)


def single_threaded_blas(environ: dict[str, str] | os._Environ[str]) -> None:
    for name in BLAS_THREAD_VARIABLES:
        environ.setdefault(name, "1")


single_threaded_blas(os.environ)

# Before any tmp_path exists: pytest's base temporary directory is tempfile's, read when first needed.
if (_ram := ram_temp_dir(os.environ)) is not None:
    tempfile.tempdir = str(_ram)

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


def init_repo(repo: Path, files: dict[str, str]) -> None:
    """Make `repo` a git repository holding `files`, committed once; identity is set per repo, never
    globally."""
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.name", GIT_ENV["GIT_AUTHOR_NAME"])
    git(repo, "config", "user.email", GIT_ENV["GIT_AUTHOR_EMAIL"])
    git(repo, "config", "commit.gpgsign", "false")
    write_files(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "initial")


def share_through_remote(a: Path, tmp_path: Path, clone: str = "b") -> tuple[Path, Path]:
    """A bare remote (`tmp_path/remote.git`, branch main) that repository `a` pushes its HEAD to as `origin`,
    and a second clone of it, `tmp_path/<clone>` (another person, or another machine), with its own
    identity: returns (remote, the clone)."""
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(a, "remote", "add", "origin", str(remote))
    git(a, "push", "-q", "origin", "HEAD:refs/heads/main")
    git(tmp_path, "clone", "-q", str(remote), clone)
    b = tmp_path / clone
    git(b, "config", "user.name", GIT_ENV["GIT_AUTHOR_NAME"])
    git(b, "config", "user.email", GIT_ENV["GIT_AUTHOR_EMAIL"])
    return remote, b


class RepoTemplates:
    """Initial repositories built once under `root`, keyed by their files; `copy` gives a private copy."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._built: dict[str, Path] = {}

    def copy(self, files: dict[str, str], dest: Path) -> None:
        key = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()[:20]
        template = self._built.get(key)
        if template is None:
            template = self.root / key
            try:
                init_repo(template, files)
            except BaseException:
                shutil.rmtree(template, ignore_errors=True)
                raise
            self._built[key] = template
        shutil.copytree(template, dest, symlinks=True, copy_function=shutil.copy)
        # The copies' inodes and ctimes differ from the index's: refreshed now, as a fresh commit leaves
        # it, so that the test's first git command does not rewrite it.
        git(dest, "update-index", "-q", "--refresh")


@pytest.fixture(scope="session")
def repo_templates(tmp_path_factory: pytest.TempPathFactory) -> RepoTemplates:
    return RepoTemplates(tmp_path_factory.mktemp("repo-templates"))


@pytest.fixture
def make_repo(tmp_path: Path, repo_templates: RepoTemplates) -> Callable[..., Path]:
    """Create a git repo holding `files`, committed once, at tmp_path/`name` (default repo0, repo1, ...);
    identity is set per repo, never globally. Each repo is a private copy: change it freely."""
    counter = iter(range(1000))

    def _make(files: dict[str, str] | None = None, name: str | None = None) -> Path:
        repo = tmp_path / (name or f"repo{next(counter)}")
        repo_templates.copy(files or {"README.md": "test repo\n"}, repo)
        return repo

    return _make
