"""Running git: one call path, git's own words in every error, and advice on what to do.

Commands that take paths run with GIT_LITERAL_PATHSPECS, so file names containing `*` or `:` are never
read as patterns; long path lists are cut into chunks that keep argv far below the OS limit.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import git
from git.exc import CommandError, GitCommandNotFound

from harness.errors import GitError

_PATHS_PER_CALL = 500
# gitpython reads objects (commits, trees, blobs) through one `git cat-file --batch` process per Repo, which
# two threads must not talk to at once (overlapping stages do): hold this lock around such reads.
odb_lock = threading.Lock()


def git_error(exc: CommandError, advice: str = "") -> GitError:
    """A GitError carrying the command, git's own stderr and what to do."""
    command = " ".join(str(part) for part in exc.command)
    stderr = _unwrap(exc.stderr)
    if not advice:
        advice = _advice_for(stderr)
    if isinstance(exc, GitCommandNotFound):
        return GitError(f"git could not be started ({command}); install git and make sure it is on PATH")
    message = f"`{command}` failed (exit {exc.status})"
    if stderr:
        message += f":\n{stderr}"
    if advice:
        message += f"\n{advice}"
    return GitError(message)


def _unwrap(text: str) -> str:
    # gitpython stores stderr as "\n  stderr: '<text>'"; recover git's own words.
    prefix = "\n  stderr: '"
    if text.startswith(prefix) and text.endswith("'"):
        text = text[len(prefix) : -1]
    return text.strip()


def _advice_for(stderr: str) -> str:
    if "index.lock" in stderr:
        return "Another git process seems to be running; if none is, delete the index.lock file named above."
    if "not a git repository" in stderr:
        return "Run the harness inside a git repository (`git init` and a first commit)."
    if "unknown revision" in stderr or "bad revision" in stderr:
        return "Check the revision name (`git log --oneline` lists commits)."
    return ""


def run_git(
    repo: git.Repo, *args: str, env: Mapping[str, str] | None = None, advice: str = ""
) -> str:
    try:
        return repo.git.execute(
            ["git", *args],
            env={"GIT_LITERAL_PATHSPECS": "1", **(env or {})},
            strip_newline_in_stdout=False,
        )
    except CommandError as exc:
        raise git_error(exc, advice) from exc


def run_git_bytes(repo: git.Repo, *args: str) -> bytes:
    """Like run_git, for output that may not be text (a blob)."""
    try:
        return repo.git.execute(["git", *args], env={"GIT_LITERAL_PATHSPECS": "1"}, stdout_as_string=False,
                                strip_newline_in_stdout=False)
    except CommandError as exc:
        raise git_error(exc) from exc


def _execute_status(repo: git.Repo, args: tuple[str, ...], *, as_string: bool) -> tuple[Any, Any, Any]:
    """git `args` without raising: GitPython's (status, stdout, stderr), stdout as text or bytes."""
    return repo.git.execute(
        ["git", *args],
        env={"GIT_LITERAL_PATHSPECS": "1"},
        with_extended_output=True,
        with_exceptions=False,
        stdout_as_string=as_string,
        strip_newline_in_stdout=False,
    )


def git_status(repo: git.Repo, *args: str) -> tuple[int, str, str]:
    """(status, stdout, stderr) without raising: for commands whose failure is an answer."""
    status, out, err = _execute_status(repo, args, as_string=True)
    return int(status or 0), str(out), str(err)


def git_status_bytes(repo: git.Repo, *args: str) -> tuple[int, bytes, str]:
    """Like git_status, with stdout as bytes (file contents)."""
    status, out, err = _execute_status(repo, args, as_string=False)
    return int(status or 0), bytes(out), err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)


def chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _PATHS_PER_CALL):
        yield items[start : start + _PATHS_PER_CALL]

