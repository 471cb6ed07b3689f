"""The repository and its commits: opening it, naming revisions, reading commits and their trailers."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import git
from git.exc import GitCommandNotFound, InvalidGitRepositoryError, NoSuchPathError

from harness.errors import GitError
from harness.gitops.command import git_error, git_status, run_git

TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author_name: str
    author_email: str
    date: datetime
    subject: str


def open_repo(path: Path | str, *, require_commit: bool = True) -> git.Repo:
    """The repository containing `path` (parents are searched); it must have a working tree and, unless
    `require_commit` is False (`harness init` in a fresh `git init`), a commit."""
    where = Path(path)
    if not where.exists():
        raise GitError(f"{where} does not exist; pass the path of a git repository")
    try:
        repo = git.Repo(where, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError) as exc:
        raise GitError(
            f"{where.resolve()} is not inside a git repository; run `git init` there and make a first "
            f"commit, or run the harness from inside an existing repository"
        ) from exc
    if repo.bare or repo.working_tree_dir is None:
        raise GitError(f"{repo.git_dir} is a bare repository; the harness needs a working tree (clone it)")
    try:
        has_commit = repo.head.is_valid() if require_commit else True
    except GitCommandNotFound as exc:
        raise git_error(exc) from None
    if not has_commit:
        raise GitError(
            f"{repo.working_tree_dir} has no commits yet; make a first commit "
            f"(`git add -A && git commit -m initial`) before running the harness"
        )
    return repo


def root(repo: git.Repo) -> Path:
    """The working tree's top directory."""
    assert repo.working_tree_dir is not None  # open_repo refuses bare repositories
    return Path(repo.working_tree_dir)


def common_git_dir(repo: git.Repo) -> Path:
    """The git directory shared by all worktrees of the repository: where per-repo harness state belongs."""
    return Path(repo.common_dir).resolve()


def own_git_dir(repo: git.Repo) -> Path:
    """This checkout's own git directory: the common one for the main checkout, `<common>/worktrees/<name>`
    for a linked worktree (its HEAD and index live there)."""
    return Path(repo.git_dir).resolve()


def main_worktree(repo: git.Repo) -> Path:
    """The working tree of the repository's main checkout (the first `git worktree list` names), whichever
    checkout `repo` is: where repository-relative settings such as holdout.dir are taken from."""
    out = run_git(repo, "worktree", "list", "--porcelain")
    first = next((line for line in out.splitlines() if line.startswith("worktree ")), None)
    return Path(first[len("worktree "):]).resolve() if first else root(repo).resolve()


def head_sha(repo: git.Repo) -> str:
    return run_git(repo, "rev-parse", "--verify", "HEAD^{commit}").strip()


def resolve(repo: git.Repo, rev: str) -> str:
    """The full sha of the commit `rev` names (branch, tag, sha, `HEAD~2`, ...)."""
    if not rev or rev.startswith("-") or any(c in rev for c in "\0\n"):
        raise GitError(f"{rev!r} is not a revision name; give a commit sha, branch or tag")
    status, out, _ = git_status(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}"
    )
    if status != 0:
        raise GitError(
            f"{rev!r} does not name a commit in {root(repo)}; check it with `git log --oneline` "
            f"(a shallow clone or an unfetched branch can also cause this)"
        )
    return out.strip()


def short(sha: str, length: int = 10) -> str:
    return sha[:length]


def commit_exists(repo: git.Repo, sha: str) -> bool:
    if not _HEX.fullmatch(sha or ""):
        return False
    status, _, _ = git_status(repo, "cat-file", "-e", f"{sha}^{{commit}}")
    return status == 0


def is_ancestor(repo: git.Repo, ancestor: str, descendant: str) -> bool:
    """Whether `ancestor` is `descendant` or one of its ancestors."""
    status, _, err = git_status(repo, "merge-base", "--is-ancestor", resolve(repo, ancestor),
                                resolve(repo, descendant))
    if status not in (0, 1):
        raise GitError(f"`git merge-base --is-ancestor {ancestor} {descendant}` failed (exit {status}):\n"
                       f"{err.strip()}")
    return status == 0


def commits_between(repo: git.Repo, base: str, head: str) -> list[str]:
    """The commits reachable from `head` but not from `base` (`base..head`), newest first."""
    return run_git(repo, "rev-list", f"{resolve(repo, base)}..{resolve(repo, head)}").split()


def parents_of(repo: git.Repo, sha: str) -> tuple[str, ...]:
    """The parents of commit `sha`, first parent first (none for a root commit, two or more for a merge)."""
    full = resolve(repo, sha)
    return tuple(run_git(repo, "rev-list", "--parents", "-n", "1", full).split()[1:])


def log_lines(repo: git.Repo, rev: str = "HEAD") -> list[str]:
    """`<short sha> <subject>` of every commit reachable from `rev`, newest first."""
    return run_git(repo, "log", "--format=%h %s", resolve(repo, rev), "--").splitlines()


def commit_message(repo: git.Repo, sha: str) -> str:
    """The whole message of a commit (subject, body, trailers), without surrounding blank lines."""
    return run_git(repo, "show", "-s", "--format=%B", resolve(repo, sha)).strip()


def commit_info(repo: git.Repo, sha: str) -> CommitInfo:
    full = resolve(repo, sha)
    out = run_git(repo, "show", "-s", "--format=%H%x00%an%x00%ae%x00%aI%x00%s", full)
    commit, name, email, date, subject = out.rstrip("\n").split("\0", 4)
    return CommitInfo(commit, name, email, datetime.fromisoformat(date), subject)


def trailers_of(repo: git.Repo, sha: str) -> dict[str, list[str]]:
    """The trailers of a commit's message, keyed as written, values in order."""
    full = resolve(repo, sha)
    out = run_git(repo, "show", "-s", "--format=%(trailers:only,unfold,separator=%x00)", full)
    result: dict[str, list[str]] = {}
    for line in out.rstrip("\n").split("\0"):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            result.setdefault(key.strip(), []).append(value.strip())
    return result


def find_commits_with_trailer(repo: git.Repo, key: str, value: str, rev: str = "HEAD") -> list[str]:
    """Commits reachable from `rev` with trailer `key: value` (key case-insensitive), newest first."""
    if not TRAILER_KEY.fullmatch(key):
        raise GitError(f"trailer key {key!r} must be letters, digits and dashes")
    start = resolve(repo, rev)
    # --grep narrows the walk to candidate messages inside git; the trailer parse then decides exactly.
    out = run_git(
        repo, "log", "--fixed-strings", f"--grep={value}",
        f"--format=%H%x00%(trailers:key={key},valueonly,unfold,separator=%x1e)%x00", start, "--",
    )
    fields = out.split("\0")
    found = []
    for i in range(0, len(fields) - 1, 2):
        values = [v.strip() for v in fields[i + 1].split("\x1e")]
        if value.strip() in values:
            found.append(fields[i].strip())
    return found
