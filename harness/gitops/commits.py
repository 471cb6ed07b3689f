"""Recording work: commits of chosen paths with trailers, snapshots of the working tree on a ref, a new
repository's first commit, and commits replayed onto another parent (a tree with one folder replaced, the
original author kept, the checkout moved onto the result).

Trees are built in a temporary index file, so nothing but the branch (for a commit) or the named ref (for
a snapshot) moves; the branch moves by compare-and-swap, so a concurrent change to HEAD is never dropped.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import git
from git.exc import CommandError

from harness.errors import GitError
from harness.gitops.command import chunks, git_error, git_status, run_git
from harness.gitops.revisions import TRAILER_KEY, head_sha, resolve, root, short
from harness.gitops.tree import safe_rel, worktree_index


def _commit_tree(repo: git.Repo, tree: str, parent: str | None, message: str,
                 identity: tuple[str, str], *, author: tuple[str, str, str] | None = None) -> str:
    """A commit of `tree` with `parent` (None: a root commit) by `identity`, dated now; `author` (name,
    email, git's raw date) keeps another author, as a replayed commit does."""
    name, email = identity
    if not name.strip() or not email.strip() or any(c in name + email for c in "<>\n"):
        raise GitError(f"commit identity {identity!r} is invalid; set commit.name and commit.email")
    now = datetime.now().astimezone()
    # Explicit dates: an inherited GIT_AUTHOR_DATE must not back-date the harness's commits.
    date = f"{int(now.timestamp())} {now.strftime('%z')}"
    author_name, author_email, author_date = author or (name, email, date)
    env = {
        "GIT_AUTHOR_NAME": author_name, "GIT_AUTHOR_EMAIL": author_email, "GIT_AUTHOR_DATE": author_date,
        "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date,
    }
    parents = ["-p", parent] if parent is not None else []
    return run_git(repo, "commit-tree", tree, *parents, "-m", message, env=env).strip()


def _check_ref(repo: git.Repo, ref: str) -> None:
    status, _, _ = git_status(repo, "check-ref-format", ref)
    if status != 0 or not ref.startswith("refs/"):
        raise GitError(f"{ref!r} is not a valid full ref name (e.g. refs/harness/failed/ITEM-1/2)")


def snapshot_to_ref(repo: git.Repo, ref: str, message: str, *, identity: tuple[str, str]) -> str:
    """Store the current working tree (untracked included, ignored not) as a child of HEAD at `ref`.

    HEAD, the branch, the index and the working tree are left untouched.
    """
    _check_ref(repo, ref)
    head = head_sha(repo)
    with worktree_index(repo) as env:
        tree = run_git(repo, "write-tree", env=env).strip()
    sha = _commit_tree(repo, tree, head, message, identity)
    run_git(repo, "update-ref", "-m", "harness: snapshot", ref, sha)
    return sha


def _trailer_block(trailers: Sequence[tuple[str, str]]) -> str:
    lines = []
    for key, value in trailers:
        if not TRAILER_KEY.fullmatch(key):
            raise GitError(f"trailer key {key!r} must be letters, digits and dashes (e.g. Harness-Item)")
        if not value.strip() or "\n" in value or "\r" in value:
            raise GitError(f"trailer {key} needs a non-empty single-line value, got {value!r}")
        lines.append(f"{key}: {value.strip()}")
    return "\n".join(lines)


def commit_paths(
    repo: git.Repo,
    paths: Sequence[str],
    message: str,
    *,
    identity: tuple[str, str],
    trailers: Sequence[tuple[str, str]] = (),
) -> str:
    """Commit exactly `paths` as they are in the working tree (adds, edits, deletions) on top of HEAD.

    Other staged or modified files stay as they were, staged or not. The branch (or detached HEAD)
    moves to the new commit; the real index is synced for `paths` only. Paths are file paths; an
    explicitly named ignored file is committed. Returns the new commit's sha.
    """
    rels = sorted({safe_rel(p).as_posix() for p in paths})
    if not rels:
        raise GitError("commit_paths needs at least one path")
    if not message.strip():
        raise GitError("commit_paths needs a non-empty message")
    full_message = message.strip("\n")
    if trailers:
        full_message += "\n\n" + _trailer_block(trailers)
    top = root(repo)
    folders = [p for p in rels if (top / p).is_dir() and not (top / p).is_symlink()]
    if folders:
        raise GitError(f"commit_paths takes file paths, got folders: {', '.join(folders)}; list their files")
    present = [p for p in rels if os.path.lexists(top / p)]
    absent = [p for p in rels if not os.path.lexists(top / p)]
    head = head_sha(repo)
    with tempfile.TemporaryDirectory(prefix="harness-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, "read-tree", head, env=env)
        for chunk in chunks(present):
            run_git(repo, "add", "--force", "--", *chunk, env=env)
        for chunk in chunks(absent):
            known = set(filter(None, run_git(repo, "ls-files", "-z", "--", *chunk, env=env).split("\0")))
            unknown = [p for p in chunk if p not in known]
            if unknown:
                raise GitError(
                    f"cannot commit {', '.join(unknown)}: not in the working tree and not in HEAD"
                )
            run_git(repo, "rm", "--cached", "--quiet", "--", *chunk, env=env)
        tree = run_git(repo, "write-tree", env=env).strip()
    if tree == repo.commit(head).tree.hexsha:
        raise GitError(f"nothing to commit: {', '.join(rels)} are the same as in HEAD ({short(head)})")
    sha = _commit_tree(repo, tree, head, full_message, identity)
    # Compare-and-swap on HEAD: if anything moved it meanwhile, fail instead of dropping that commit.
    run_git(repo, "update-ref", "-m", "harness: commit", "HEAD", sha, head,
         advice="HEAD moved while the harness was committing; inspect `git log` and run again.")
    for chunk in chunks(rels):
        run_git(repo, "reset", "-q", sha, "--", *chunk)
    return sha


def rewrite_commit(repo: git.Repo, original: str, tree: str, parent: str, message: str, *,
                   identity: tuple[str, str]) -> str:
    """A commit of `tree` on `parent` with `message`, authored as `original` was (name, email, date) and
    committed by `identity` now, as `git rebase` writes a replayed commit. No ref moves."""
    sha = resolve(repo, original)
    fields = run_git(repo, "show", "-s", "--date=raw", "--format=%an%x00%ae%x00%ad", sha).rstrip("\n")
    name, email, date = fields.split("\0")
    if not message.strip():
        raise GitError("rewrite_commit needs a non-empty message")
    return _commit_tree(repo, tree, resolve(repo, parent), message, identity, author=(name, email, date))


def tree_with_folder(repo: git.Repo, commit: str, folder: str, source: Path | None) -> str:
    """The tree of `commit` with the repo-relative `folder` holding exactly the regular files below the
    local folder `source` (None: the folder removed). Written to the object store only; nothing moves."""
    rel = safe_rel(folder).as_posix()
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source is not None else []
    links = [p for p in files if p.is_symlink()]
    if links:
        raise GitError(f"{links[0]} is a symlink; only regular files can be placed in {rel}")
    with tempfile.TemporaryDirectory(prefix="harness-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        run_git(repo, "read-tree", resolve(repo, commit), env=env)
        run_git(repo, "rm", "-r", "--cached", "--quiet", "--ignore-unmatch", "--", rel, env=env)
        for chunk in chunks([str(p) for p in files]):
            blobs = run_git(repo, "hash-object", "-w", "--no-filters", "--", *chunk).split()
            entries = [arg for blob, p in zip(blobs, chunk, strict=True)
                       for arg in ("--cacheinfo", f"100644,{blob},{rel}/{Path(p).relative_to(source).as_posix()}")]
            run_git(repo, "update-index", "--add", *entries, env=env)
        return run_git(repo, "write-tree", env=env).strip()


def move_head(repo: git.Repo, expected: str, new: str, *, reason: str) -> None:
    """Check out commit `new` and point HEAD (its branch) at it, only if HEAD is at `expected`.

    `git read-tree -m -u` carries the index and the working tree from `expected`'s tree to `new`'s and
    refuses, changing nothing, when a local change or an untracked file is in the way; HEAD then moves by
    compare-and-swap. A refusal raises GitError with git's words."""
    old, target = resolve(repo, expected), resolve(repo, new)
    if head_sha(repo) != old:
        raise GitError(f"HEAD is no longer at {short(old)}; inspect `git log` and run again")
    run_git(repo, "read-tree", "-m", "-u", old, target,
            advice="Commit, stash or remove the files named above, then run the harness again.")
    run_git(repo, "update-ref", "-m", reason, "HEAD", target, old,
            advice="HEAD moved while the harness was moving it; inspect `git log` and run again.")


def init_repo(folder: Path, *, branch: str, identity: tuple[str, str], message: str) -> git.Repo:
    """A new repository in `folder` whose first commit, on `branch`, holds every file there (ignored ones
    aside). `identity` (name, email) becomes its user in the repository's own config, never the global one.
    """
    try:
        repo = git.Repo.init(folder, initial_branch=branch)
    except CommandError as exc:
        raise git_error(exc) from exc
    with repo.config_writer() as config:
        config.set_value("user", "name", identity[0])
        config.set_value("user", "email", identity[1])
    run_git(repo, "add", "--all")
    run_git(repo, "commit", "--quiet", "--message", message)
    return repo
