"""Which git is installed: the `git` a child process finds on PATH, and its version.

The merge queue of parallel loops (harness.parallel.landing) and the re-proof of a rejected push
(harness.durability.reproof) merge in the object store with `git merge-tree --write-tree`, which git 2.38
added. `harness doctor` reports the version against that.
"""
from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness import proc

MERGE_TREE_WRITE_TREE = (2, 38)
VERSION_TIMEOUT_S = 30.0
_VERSION = re.compile(r"^git version (\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class GitVersion:
    """`git --version` as the installed git answers: the program's path, its words, the number."""

    path: str
    text: str
    number: tuple[int, ...]

    @property
    def supports_merge_tree_write_tree(self) -> bool:
        return self.number >= MERGE_TREE_WRITE_TREE


def parse_git_version(text: str) -> tuple[int, ...] | None:
    """(major, minor, patch) of `git version 2.39.5` (vendor suffixes such as `(Apple Git-146)` or
    `.windows.1` ignored); None when `text` is not git's answer."""
    match = _VERSION.match(text.strip())
    if match is None:
        return None
    return tuple(int(part) for part in match.groups(default="0"))


def git_version(cwd: Path) -> GitVersion | None:
    """The git on PATH and its version, run in `cwd`; None when there is none (or it does not answer as
    git does)."""
    path = shutil.which("git")
    if path is None:
        return None
    try:
        done = proc.run(["git", "--version"], cwd=cwd, timeout_s=VERSION_TIMEOUT_S, capture=True)
    except proc.StartError:
        return None
    text = (done.output or "").strip()
    number = parse_git_version(text) if done.ok else None
    return GitVersion(path, text, number) if number is not None else None
