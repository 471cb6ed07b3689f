"""The working tree against HEAD or a revision: what changed, and moving changed files between trees.

The full working-tree view (untracked files included, ignored ones not) is built in a temporary index
file (GIT_INDEX_FILE), so HEAD, the branch, the real index and the working tree stay exactly as they
were. Paths are repo-relative posix strings; a rename is a deletion plus an addition.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal

import git

from harness.errors import GitError
from harness.gitops.command import chunks, odb_lock, run_git
from harness.gitops.revisions import resolve, root, short

ChangeKind = Literal["added", "modified", "deleted"]
_SYMLINK_MODE = 0o120000


@dataclass(frozen=True)
class Change:
    """One path that differs. `path` is repo-relative posix; `size_bytes` is 0 when deleted."""

    path: str
    kind: ChangeKind
    size_bytes: int


@contextlib.contextmanager
def worktree_index(repo: git.Repo) -> Iterator[dict[str, str]]:
    """An environment whose GIT_INDEX_FILE holds the whole working tree (untracked too, ignored not).

    Starts from a copy of the real index so git can reuse its stat cache instead of hashing every file.
    """
    with tempfile.TemporaryDirectory(prefix="harness-index-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        real = Path(repo.git_dir) / "index"
        if real.is_file():
            # copy2 keeps the index's mtime: git re-reads entries not older than it ("racily clean"), so
            # a same-size edit made in the tick of the last index write is still seen
            shutil.copy2(real, index)
        else:
            run_git(repo, "read-tree", "HEAD", env=env)
        run_git(repo, "add", "--all", env=env)
        yield env


def _parse_name_status(out: str) -> list[tuple[str, str]]:
    fields = out.split("\0")
    pairs = []
    for i in range(0, len(fields) - 1, 2):
        status, path = fields[i].strip(), fields[i + 1]
        if status:
            pairs.append((status[0], path))
    return pairs


_KINDS: dict[str, ChangeKind] = {"A": "added", "M": "modified", "T": "modified", "D": "deleted"}


def working_changes(repo: git.Repo) -> list[Change]:
    """Working tree vs HEAD, staged or not, untracked included, ignored excluded; renames = delete + add."""
    top = root(repo)
    with worktree_index(repo) as env:
        out = run_git(repo, "diff-index", "--cached", "--no-renames", "-z", "--name-status", "HEAD", env=env)
    changes = []
    for status, path in _parse_name_status(out):
        kind = _KINDS.get(status, "modified")
        size = 0
        if kind != "deleted":
            st = os.lstat(top / path)
            size = st.st_size if not stat.S_ISDIR(st.st_mode) else 0
        changes.append(Change(path, kind, size))
    return sorted(changes, key=lambda c: c.path)


def changes_between(repo: git.Repo, base: str, head: str) -> list[Change]:
    """What `head` changed relative to `base`; sizes are those of the blobs at `head`."""
    base_sha, head_sha = resolve(repo, base), resolve(repo, head)
    out = run_git(repo, "diff-tree", "-r", "--no-renames", "-z", "--name-status", base_sha, head_sha)
    changes = []
    with odb_lock:
        head_tree = repo.commit(head_sha).tree
        for status, path in _parse_name_status(out):
            kind = _KINDS.get(status, "modified")
            size = 0 if kind == "deleted" else int(getattr(head_tree / path, "size", 0))
            changes.append(Change(path, kind, size))
    return sorted(changes, key=lambda c: c.path)


def is_clean(repo: git.Repo, paths: Sequence[str] | None = None, *, untracked: bool = True) -> bool:
    """No staged, unstaged or (unless `untracked` is False) untracked non-ignored change, optionally only
    among `paths`."""
    args = ["status", "--porcelain=v1", "-z", f"--untracked-files={'all' if untracked else 'no'}"]
    if paths is not None:
        if not paths:
            return True
        return all(not run_git(repo, *args, "--", *chunk) for chunk in chunks(list(paths)))
    return not run_git(repo, *args)


def numstat(repo: git.Repo, base: str, paths: Sequence[str] | None = None) -> tuple[int, int, int]:
    """(files, lines added, lines removed) of the working tree (untracked included) against `base`.

    Binary files count as files with no lines.
    """
    base_sha = resolve(repo, base)
    with worktree_index(repo) as env:
        out = run_git(
            repo, "diff-index", "--cached", "--no-renames", "--numstat", "-z", base_sha,
            *(["--", *paths] if paths else []), env=env,
        )
    return _sum_numstat(out)


def numstat_between(repo: git.Repo, base: str, head: str,
                    paths: Sequence[str] | None = None) -> tuple[int, int, int]:
    """(files, lines added, lines removed) of the commits base..head, as `numstat` counts the working tree."""
    base_sha, head_sha = resolve(repo, base), resolve(repo, head)
    args = ["diff-tree", "-r", "--no-renames", "--numstat", "-z", base_sha, head_sha]
    if not paths:
        return _sum_numstat(run_git(repo, *args))
    totals = [_sum_numstat(run_git(repo, *args, "--", *chunk)) for chunk in chunks(list(paths))]
    return sum(t[0] for t in totals), sum(t[1] for t in totals), sum(t[2] for t in totals)


def _sum_numstat(out: str) -> tuple[int, int, int]:
    """Sum `--numstat -z` records (`added<TAB>removed<TAB>path`); a binary file shows `-` for both."""
    files = added = removed = 0
    for record in out.split("\0"):
        parts = record.split("\t")
        if len(parts) < 3:
            continue
        files += 1
        added += int(parts[0]) if parts[0].isdigit() else 0
        removed += int(parts[1]) if parts[1].isdigit() else 0
    return files, added, removed


def safe_rel(path: str) -> PurePosixPath:
    p = PurePosixPath(path)
    if not path or p.is_absolute() or ".." in p.parts or p.as_posix() == ".":
        raise GitError(f"{path!r} is not a repo-relative file path (no leading `/`, no `..`)")
    return p


def _remove_path(dst_root: Path, rel: PurePosixPath) -> None:
    target = dst_root / rel
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        raise GitError(f"{target} is a directory where a deleted file was expected; remove it by hand")
    # Git does not track directories: a folder emptied by deletions would not exist in a checkout.
    parent = target.parent
    while parent != dst_root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _prepare_target(dst_root: Path, rel: PurePosixPath) -> Path:
    target = dst_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        raise GitError(f"{target} is a directory but should become a file; remove it by hand")
    return target


def _ordered(changes: Iterable[Change]) -> list[Change]:
    # Deletions first, so a file replaced by a folder of the same name (or the reverse) can be written.
    return sorted(changes, key=lambda c: (c.kind != "deleted", c.path))


def copy_working_files(src_root: Path, dst_root: Path, changes: Iterable[Change]) -> None:
    """Make `dst_root` match `src_root` for the changed paths: copy added/modified, delete deleted."""
    src_root, dst_root = Path(src_root), Path(dst_root)
    for change in _ordered(changes):
        rel = safe_rel(change.path)
        if change.kind == "deleted":
            _remove_path(dst_root, rel)
            continue
        source = src_root / rel
        if not os.path.lexists(source):
            raise GitError(f"{source} is listed as {change.kind} but does not exist; list the changes again")
        target = _prepare_target(dst_root, rel)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        else:
            shutil.copy2(source, target)


def write_files_at_rev(repo: git.Repo, rev: str, changes: Iterable[Change], dst_root: Path) -> None:
    """Like copy_working_files, with the content (and executable bit, symlinks) of each path at `rev`."""
    sha = resolve(repo, rev)
    dst_root = Path(dst_root)
    for change in _ordered(changes):
        rel = safe_rel(change.path)
        if change.kind == "deleted":
            _remove_path(dst_root, rel)
            continue
        with odb_lock:
            try:
                blob = repo.commit(sha).tree / rel.as_posix()
            except KeyError as exc:
                raise GitError(f"{rel} does not exist at {short(rev)}; it cannot be written from there") from exc
            data = blob.data_stream.read()
        target = _prepare_target(dst_root, rel)
        if blob.mode == _SYMLINK_MODE:
            os.symlink(os.fsdecode(data), target)
        else:
            target.write_bytes(data)
            target.chmod(0o755 if blob.mode & 0o111 else 0o644)


def discard_changes(repo: git.Repo, changes: Iterable[Change]) -> None:
    """Put the changed paths back to HEAD in the index and the working tree.

    Paths in HEAD are restored; paths not in HEAD are unstaged and deleted, with folders they leave
    empty. Save the work first (snapshot_to_ref) if it may be wanted later.
    """
    top = root(repo)
    rels = sorted({safe_rel(c.path).as_posix() for c in changes})
    in_head: set[str] = set()
    for chunk in chunks(rels):
        listed = run_git(repo, "ls-tree", "-r", "--name-only", "-z", "HEAD", "--", *chunk)
        in_head.update(filter(None, listed.split("\0")))
    added = [p for p in rels if p not in in_head]
    for chunk in chunks(added):
        run_git(repo, "rm", "--cached", "--quiet", "--ignore-unmatch", "--", *chunk)
    # Added files go first: one may sit where HEAD has a folder that the checkout below recreates.
    for rel in added:
        if os.path.lexists(top / rel):
            _remove_path(top, PurePosixPath(rel))
    tracked = [p for p in rels if p in in_head]
    for chunk in chunks(tracked):
        run_git(repo, "checkout", "HEAD", "--", *chunk)
