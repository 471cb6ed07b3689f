"""`git bisect run` inside a temporary linked worktree, and moving that worktree between commits.

These commands run in the worktree's folder through harness.proc, with git's location variables
(GIT_DIR, GIT_WORK_TREE, GIT_INDEX_FILE, GIT_COMMON_DIR) removed from their environment: git sets GIT_DIR
for the program `git bisect run` starts, and an inherited variable would point a command at another
checkout. git keeps the bisect state (BISECT_* files, refs/bisect/*) per worktree, so the user's checkout,
HEAD and any bisect of their own are untouched. `bisect_run` runs the step program until git names a
commit and always resets the bisect afterwards.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import proc
from harness.errors import GitError

_LOCATION_VARS = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_COMMON_DIR")
_FIRST_BAD = re.compile(r"^([0-9a-f]{40}(?:[0-9a-f]{24})?) is the first bad commit", re.MULTILINE)
_SHA_LINE = re.compile(r"^([0-9a-f]{40}(?:[0-9a-f]{24})?)\b", re.MULTILINE)


@dataclass(frozen=True)
class BisectRun:
    """How `git bisect run` ended: the first bad commit, or the candidates that skipped commits leave
    (`first_bad` None), or neither when it failed; `log` is everything git and the steps printed."""

    first_bad: str | None
    candidates: tuple[str, ...]
    returncode: int
    log: str


def _run(folder: Path, argv: Sequence[str]) -> proc.Finished:
    env = {k: v for k, v in os.environ.items() if k not in _LOCATION_VARS}
    try:
        return proc.run(argv, cwd=folder, env=env, capture=True)
    except proc.StartError as exc:
        raise GitError(f"git could not be started in {folder} ({exc.reason}); install git and make sure it "
                       "is on PATH") from None


def _git(folder: Path, *args: str) -> str:
    done = _run(folder, ["git", *args])
    if done.returncode != 0:
        raise GitError(f"`git {' '.join(args)}` failed in {folder} (exit {done.returncode}):\n"
                       f"{(done.output or '').strip()}")
    return done.output or ""


def worktree_head(folder: Path) -> str:
    """The full sha of the commit checked out in `folder`."""
    return _git(folder, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").strip()


def checkout_detached(worktree: Path, sha: str) -> None:
    """Detach `worktree` at `sha` (its tree must be clean, as a fresh temporary worktree is)."""
    _git(worktree, "checkout", "--quiet", "--detach", sha)


def bisect_run(worktree: Path, *, good: str, bad: str, step: Sequence[str]) -> BisectRun:
    """`git bisect start BAD GOOD` then `git bisect run STEP...` in `worktree`; the bisect is reset after.

    git starts `step` as an argv list at each commit it checks out (exit 0 good, 1-127 bad except 125,
    125 skip, 128 or more: abort the bisect).
    """
    try:
        _git(worktree, "bisect", "start", bad, good, "--")
        done = _run(worktree, ["git", "bisect", "run", *step])
    finally:
        # Never raises: the bisect's own outcome (or error) is what the caller needs to see.
        _run(worktree, ["git", "bisect", "reset"])
    log = done.output or ""
    if (m := _FIRST_BAD.search(log)) is not None:
        return BisectRun(m[1], (), done.returncode, log)
    if "only 'skip'ped commits left" in log:
        tail = log.split("could be any of:", 1)[-1]
        return BisectRun(None, tuple(dict.fromkeys(_SHA_LINE.findall(tail))), done.returncode, log)
    return BisectRun(None, (), done.returncode, log)
