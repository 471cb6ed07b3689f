"""Shared by the gitops tests: a small repository with every kind of change, and views of trees."""
from __future__ import annotations

import hashlib
from pathlib import Path

from harness import gitops
from tests.conftest import git

IDENTITY = ("Harness Bot", "bot@example.invalid")
BASE_FILES = {
    "README.md": "readme\n",
    "a.txt": "a\n",
    "b.txt": "b\n",
    "sub/c.txt": "c\n",
    "sub/deep/d.txt": "d\n",
    ".gitignore": "*.log\n",
}

def dirty(repo: Path) -> None:
    """Every kind of change: unstaged edit, staged deletion, untracked, staged add, rename, ignored."""
    (repo / "a.txt").write_text("a changed\n")
    git(repo, "rm", "-q", "b.txt")
    (repo / "new.txt").write_text("brand new\n")
    (repo / "staged.txt").write_text("staged\n")
    git(repo, "add", "staged.txt")
    git(repo, "mv", "sub/c.txt", "sub/c2.txt")
    (repo / "debug.log").write_text("ignored\n")

def changes(repo: Path) -> dict[str, str]:
    return {c.path: c.kind for c in gitops.working_changes(gitops.open_repo(repo))}

def tree_files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(root).parts
    }

def state(repo_path: Path) -> tuple[bytes, str, str, str]:
    return (
        (repo_path / ".git" / "index").read_bytes(),
        git(repo_path, "rev-parse", "HEAD"),
        git(repo_path, "symbolic-ref", "HEAD"),
        hashlib.sha256(repr(sorted(tree_files(repo_path).items())).encode()).hexdigest(),
    )

def registered_worktrees(repo_path: Path) -> list[str]:
    lines = git(repo_path, "worktree", "list", "--porcelain").splitlines()
    return [line.split(" ", 1)[1] for line in lines if line.startswith("worktree ")][1:]
