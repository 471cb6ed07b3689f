"""Every git operation of the harness: small typed functions over gitpython's `git.Repo`.

Operations that must not disturb the user's state (snapshots, commits of chosen paths, the full
working-tree view) build their trees in a temporary index file (GIT_INDEX_FILE), so HEAD, the branch,
the real index and the working tree stay exactly as they were unless the function says otherwise.
Paths are repo-relative posix strings; commands that take paths run with GIT_LITERAL_PATHSPECS so
file names containing `*` or `:` are never read as patterns.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Literal

import git
from git.exc import CommandError, GitCommandNotFound, InvalidGitRepositoryError, NoSuchPathError

from harness.errors import GitError

ChangeKind = Literal["added", "modified", "deleted"]
WORKTREE_PREFIX = "harness-wt-"
_PATHS_PER_CALL = 500  # keeps argv far below the OS limit for long path lists
_SYMLINK_MODE = 0o120000
_TRAILER_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*")
_HEX = re.compile(r"[0-9a-fA-F]{4,64}")


@dataclass(frozen=True)
class Change:
    """One path that differs. `path` is repo-relative posix; `size_bytes` is 0 when deleted."""

    path: str
    kind: ChangeKind
    size_bytes: int


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    author_name: str
    author_email: str
    date: datetime
    subject: str


# --- running git -------------------------------------------------------------------------------------


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


def _git(
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


def _git_status(repo: git.Repo, *args: str) -> tuple[int, str, str]:
    """(status, stdout, stderr) without raising: for commands whose failure is an answer."""
    status, out, err = repo.git.execute(
        ["git", *args],
        env={"GIT_LITERAL_PATHSPECS": "1"},
        with_extended_output=True,
        with_exceptions=False,
        strip_newline_in_stdout=False,
    )
    return int(status or 0), str(out), str(err)


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _PATHS_PER_CALL):
        yield items[start : start + _PATHS_PER_CALL]


# --- repository and revisions ------------------------------------------------------------------------


def open_repo(path: Path | str) -> git.Repo:
    """The repository containing `path` (parents are searched); it must have a working tree and a commit."""
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
    if not repo.head.is_valid():
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


def head_sha(repo: git.Repo) -> str:
    return _git(repo, "rev-parse", "--verify", "HEAD^{commit}").strip()


def resolve(repo: git.Repo, rev: str) -> str:
    """The full sha of the commit `rev` names (branch, tag, sha, `HEAD~2`, ...)."""
    if not rev or rev.startswith("-") or any(c in rev for c in "\0\n"):
        raise GitError(f"{rev!r} is not a revision name; give a commit sha, branch or tag")
    status, out, _ = _git_status(
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
    status, _, _ = _git_status(repo, "cat-file", "-e", f"{sha}^{{commit}}")
    return status == 0


def commit_info(repo: git.Repo, sha: str) -> CommitInfo:
    full = resolve(repo, sha)
    out = _git(repo, "show", "-s", "--format=%H%x00%an%x00%ae%x00%aI%x00%s", full)
    commit, name, email, date, subject = out.rstrip("\n").split("\0", 4)
    return CommitInfo(commit, name, email, datetime.fromisoformat(date), subject)


# --- what changed ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _worktree_index(repo: git.Repo) -> Iterator[dict[str, str]]:
    """An environment whose GIT_INDEX_FILE holds the whole working tree (untracked too, ignored not).

    Starts from a copy of the real index so git can reuse its stat cache instead of hashing every file.
    """
    with tempfile.TemporaryDirectory(prefix="harness-index-") as tmp:
        index = Path(tmp) / "index"
        env = {"GIT_INDEX_FILE": str(index)}
        real = Path(repo.git_dir) / "index"
        if real.is_file():
            shutil.copyfile(real, index)
        else:
            _git(repo, "read-tree", "HEAD", env=env)
        _git(repo, "add", "--all", env=env)
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
    with _worktree_index(repo) as env:
        out = _git(repo, "diff-index", "--cached", "--no-renames", "-z", "--name-status", "HEAD", env=env)
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
    base_sha, head_commit = resolve(repo, base), repo.commit(resolve(repo, head))
    out = _git(repo, "diff-tree", "-r", "--no-renames", "-z", "--name-status", base_sha, head_commit.hexsha)
    changes = []
    for status, path in _parse_name_status(out):
        kind = _KINDS.get(status, "modified")
        size = 0 if kind == "deleted" else int(getattr(head_commit.tree / path, "size", 0))
        changes.append(Change(path, kind, size))
    return sorted(changes, key=lambda c: c.path)


def is_clean(repo: git.Repo, paths: Sequence[str] | None = None) -> bool:
    """No staged, unstaged or untracked (non-ignored) change, optionally only among `paths`."""
    args = ["status", "--porcelain=v1", "-z", "--untracked-files=all"]
    if paths is not None:
        if not paths:
            return True
        return all(not _git(repo, *args, "--", *chunk) for chunk in _chunks(list(paths)))
    return not _git(repo, *args)


def numstat(repo: git.Repo, base: str, paths: Sequence[str] | None = None) -> tuple[int, int, int]:
    """(files, lines added, lines removed) of the working tree (untracked included) against `base`.

    Binary files count as files with no lines.
    """
    base_sha = resolve(repo, base)
    with _worktree_index(repo) as env:
        out = _git(
            repo, "diff-index", "--cached", "--no-renames", "--numstat", "-z", base_sha,
            *(["--", *paths] if paths else []), env=env,
        )
    files = added = removed = 0
    for record in out.split("\0"):
        parts = record.split("\t")
        if len(parts) < 3:
            continue
        files += 1
        added += int(parts[0]) if parts[0].isdigit() else 0
        removed += int(parts[1]) if parts[1].isdigit() else 0
    return files, added, removed


# --- globs -------------------------------------------------------------------------------------------


def matches_any(path: str, globs: Iterable[str]) -> bool:
    """gitignore-like matching of a repo-relative posix path.

    `**` spans directories (`tests/**` is everything under tests/, `**/test_*.py` matches at any depth
    including the top); `*`, `?` and `[...]` never match `/`; a pattern without a slash matches a name
    at any depth; a leading `/` anchors to the root; a pattern that matches a directory matches
    everything below it, as in .gitignore.
    """
    normalized = PurePosixPath(path).as_posix().lstrip("/")
    return any(_glob_regex(g).match(normalized) is not None for g in globs)


@lru_cache(maxsize=1024)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    if not pattern.strip("/"):
        return re.compile(r"(?!)")
    directory_only = pattern.endswith("/")
    body = pattern.strip("/")
    if not pattern.startswith("/") and "/" not in body:
        body = "**/" + body
    segments = body.split("/")
    parts = []
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else "(?:[^/]+/)*")
        else:
            parts.append(_segment_regex(segment) + ("" if last else "/"))
    tail = "/.*" if directory_only else "(?:/.*)?"
    return re.compile("".join(parts) + tail + r"\Z", re.DOTALL)


def _segment_regex(segment: str) -> str:
    out = []
    i = 0
    while i < len(segment):
        c = segment[i]
        if c == "*":
            while i + 1 < len(segment) and segment[i + 1] == "*":
                i += 1
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "\\" and i + 1 < len(segment):
            i += 1
            out.append(re.escape(segment[i]))
        elif c == "[" and (end := _class_end(segment, i)) != -1:
            inner = segment[i + 1 : end]
            negate = inner[:1] in ("!", "^")
            inner = (inner[1:] if negate else inner).replace("\\", "\\\\")
            out.append(f"[^/{inner}]" if negate else f"[{inner}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out)


def _class_end(segment: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1 (then `[` is literal)."""
    first = start + 1
    if segment[first : first + 1] in ("!", "^"):
        first += 1
    # A `]` right after `[` or `[!` belongs to the class, as in fnmatch.
    return segment.find("]", first + 1) if first < len(segment) else -1


# --- temporary worktrees -----------------------------------------------------------------------------


@contextlib.contextmanager
def temp_worktree(repo: git.Repo, rev: str) -> Iterator[Path]:
    """A detached checkout of `rev` in a temporary directory; always removed and pruned afterwards."""
    sha = resolve(repo, rev)
    parent = Path(tempfile.mkdtemp(prefix=WORKTREE_PREFIX))
    # Keep the repository's folder name: some tools and test suites look at the root folder's name.
    path = parent / root(repo).name
    try:
        _git(repo, "worktree", "add", "--detach", str(path), sha)
        yield path
    finally:
        with contextlib.suppress(GitError):
            _git(repo, "worktree", "remove", "--force", str(path))
        shutil.rmtree(parent, ignore_errors=True)
        _git(repo, "worktree", "prune")


def prune_stale_worktrees(repo: git.Repo) -> list[Path]:
    """Remove worktrees left registered by a harness that was killed; returns their paths.

    Call it while holding the repository lock: only then is no live harness using one.
    """
    listing = _git(repo, "worktree", "list", "--porcelain")
    lines = listing.splitlines()
    registered = [Path(line.removeprefix("worktree ")) for line in lines if line.startswith("worktree ")]
    stale = [path for path in registered if path.parent.name.startswith(WORKTREE_PREFIX)]
    for path in stale:
        with contextlib.suppress(GitError):
            _git(repo, "worktree", "remove", "--force", "--force", str(path))
        shutil.rmtree(path.parent, ignore_errors=True)
    _git(repo, "worktree", "prune")
    return stale


# --- moving files between trees ----------------------------------------------------------------------


def _safe_rel(path: str) -> PurePosixPath:
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
        rel = _safe_rel(change.path)
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
    tree = repo.commit(resolve(repo, rev)).tree
    dst_root = Path(dst_root)
    for change in _ordered(changes):
        rel = _safe_rel(change.path)
        if change.kind == "deleted":
            _remove_path(dst_root, rel)
            continue
        try:
            blob = tree / rel.as_posix()
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
    rels = sorted({_safe_rel(c.path).as_posix() for c in changes})
    in_head: set[str] = set()
    for chunk in _chunks(rels):
        listed = _git(repo, "ls-tree", "-r", "--name-only", "-z", "HEAD", "--", *chunk)
        in_head.update(filter(None, listed.split("\0")))
    added = [p for p in rels if p not in in_head]
    for chunk in _chunks(added):
        _git(repo, "rm", "--cached", "--quiet", "--ignore-unmatch", "--", *chunk)
    # Added files go first: one may sit where HEAD has a folder that the checkout below recreates.
    for rel in added:
        if os.path.lexists(top / rel):
            _remove_path(top, PurePosixPath(rel))
    tracked = [p for p in rels if p in in_head]
    for chunk in _chunks(tracked):
        _git(repo, "checkout", "HEAD", "--", *chunk)


# --- recording commits -------------------------------------------------------------------------------


def _commit_tree(repo: git.Repo, tree: str, parent: str, message: str, identity: tuple[str, str]) -> str:
    name, email = identity
    if not name.strip() or not email.strip() or any(c in name + email for c in "<>\n"):
        raise GitError(f"commit identity {identity!r} is invalid; set commit.name and commit.email")
    now = datetime.now().astimezone()
    # Explicit dates: an inherited GIT_AUTHOR_DATE must not back-date the harness's commits.
    date = f"{int(now.timestamp())} {now.strftime('%z')}"
    env = {
        "GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email, "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email, "GIT_COMMITTER_DATE": date,
    }
    return _git(repo, "commit-tree", tree, "-p", parent, "-m", message, env=env).strip()


def _check_ref(repo: git.Repo, ref: str) -> None:
    status, _, _ = _git_status(repo, "check-ref-format", ref)
    if status != 0 or not ref.startswith("refs/"):
        raise GitError(f"{ref!r} is not a valid full ref name (e.g. refs/harness/failed/ITEM-1/2)")


def snapshot_to_ref(repo: git.Repo, ref: str, message: str, *, identity: tuple[str, str]) -> str:
    """Store the current working tree (untracked included, ignored not) as a child of HEAD at `ref`.

    HEAD, the branch, the index and the working tree are left untouched.
    """
    _check_ref(repo, ref)
    head = head_sha(repo)
    with _worktree_index(repo) as env:
        tree = _git(repo, "write-tree", env=env).strip()
    sha = _commit_tree(repo, tree, head, message, identity)
    _git(repo, "update-ref", "-m", "harness: snapshot", ref, sha)
    return sha


def _trailer_block(trailers: Sequence[tuple[str, str]]) -> str:
    lines = []
    for key, value in trailers:
        if not _TRAILER_KEY.fullmatch(key):
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
    rels = sorted({_safe_rel(p).as_posix() for p in paths})
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
        _git(repo, "read-tree", head, env=env)
        for chunk in _chunks(present):
            _git(repo, "add", "--force", "--", *chunk, env=env)
        for chunk in _chunks(absent):
            known = set(filter(None, _git(repo, "ls-files", "-z", "--", *chunk, env=env).split("\0")))
            unknown = [p for p in chunk if p not in known]
            if unknown:
                raise GitError(
                    f"cannot commit {', '.join(unknown)}: not in the working tree and not in HEAD"
                )
            _git(repo, "rm", "--cached", "--quiet", "--", *chunk, env=env)
        tree = _git(repo, "write-tree", env=env).strip()
    if tree == repo.commit(head).tree.hexsha:
        raise GitError(f"nothing to commit: {', '.join(rels)} are the same as in HEAD ({short(head)})")
    sha = _commit_tree(repo, tree, head, full_message, identity)
    # Compare-and-swap on HEAD: if anything moved it meanwhile, fail instead of dropping that commit.
    _git(repo, "update-ref", "-m", "harness: commit", "HEAD", sha, head,
         advice="HEAD moved while the harness was committing; inspect `git log` and run again.")
    for chunk in _chunks(rels):
        _git(repo, "reset", "-q", sha, "--", *chunk)
    return sha


# --- trailers ----------------------------------------------------------------------------------------


def trailers_of(repo: git.Repo, sha: str) -> dict[str, list[str]]:
    """The trailers of a commit's message, keyed as written, values in order."""
    full = resolve(repo, sha)
    out = _git(repo, "show", "-s", "--format=%(trailers:only,unfold,separator=%x00)", full)
    result: dict[str, list[str]] = {}
    for line in out.rstrip("\n").split("\0"):
        key, sep, value = line.partition(":")
        if sep and key.strip():
            result.setdefault(key.strip(), []).append(value.strip())
    return result


def find_commits_with_trailer(repo: git.Repo, key: str, value: str, rev: str = "HEAD") -> list[str]:
    """Commits reachable from `rev` with trailer `key: value` (key case-insensitive), newest first."""
    if not _TRAILER_KEY.fullmatch(key):
        raise GitError(f"trailer key {key!r} must be letters, digits and dashes")
    start = resolve(repo, rev)
    # --grep narrows the walk to candidate messages inside git; the trailer parse then decides exactly.
    out = _git(
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
