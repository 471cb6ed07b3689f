"""What commits changed, as text: a commit's patch (many commits in one `git show`) or a base..head diff.

A commit's patch is its diff against its first parent, in git's own unified format without colour. Paths
are left out by exact repo-relative path (a file or a whole folder) as `:(exclude,literal)` pathspecs, so
git never produces the left-out parts (evidence folders hold megabytes of logs). Revisions come from files
people and agents can edit (a saved ref named in attempt.json), so a name that could be read as an option
or that holds whitespace is refused before git sees it, and names that do not resolve are absent from the
answer. A patch longer than `max_chars` is cut at a line end and says so in `Patch.cut`.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import git

from harness.errors import GitError
from harness.gitops.command import git_status, run_git

MAX_PATCH_CHARS = 200_000
_REVS_PER_CALL = 200
_SAFE_REV = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/^~-]*")
_START = "\x00harness-patch\x00"  # what the format below prints


@dataclass(frozen=True)
class Patch:
    """One commit's change: `text` is the unified diff (possibly cut), `commit` the full sha."""

    commit: str
    text: str
    cut: bool
    files: int


def _usable(rev: str) -> bool:
    return bool(_SAFE_REV.fullmatch(rev)) and ".." not in rev and not rev.endswith((".", "/", ".lock"))


def _resolved(repo: git.Repo, revs: Sequence[str]) -> dict[str, str]:
    """rev -> full commit sha, for the revs that name a commit (one `rev-parse` per chunk)."""
    found: dict[str, str] = {}
    wanted = [r for r in dict.fromkeys(revs) if _usable(r)]
    for start in range(0, len(wanted), _REVS_PER_CALL):
        chunk = wanted[start:start + _REVS_PER_CALL]
        status, out, _ = git_status(repo, "rev-parse", "--verify", "--quiet", "--end-of-options",
                                    *(f"{r}^{{commit}}" for r in chunk))
        if status == 0:
            found.update(zip(chunk, out.split()))
            continue
        for rev in chunk:  # one bad name fails the whole call: ask one at a time
            one_status, one_out, _ = git_status(repo, "rev-parse", "--verify", "--quiet", "--end-of-options",
                                                f"{rev}^{{commit}}")
            if one_status == 0:
                found[rev] = one_out.strip()
    return found


def _pathspecs(exclude: Sequence[str]) -> list[str]:
    specs = []
    for path in exclude:
        clean = path.strip("/")
        if not clean or any(c in clean for c in "\0\n"):
            raise GitError(f"cannot leave {path!r} out of a patch: give a repo-relative file or folder")
        specs.append(f":(exclude,literal){clean}")
    return specs


def _cut(text: str, max_chars: int) -> tuple[str, bool]:
    if len(text) <= max_chars:
        return text, False
    end = text.rfind("\n", 0, max_chars)
    return text[:end + 1 if end > 0 else max_chars], True


def patches(repo: git.Repo, revs: Iterable[str], *, exclude: Sequence[str] = (),
            max_chars: int = MAX_PATCH_CHARS) -> dict[str, Patch]:
    """rev -> its commit's patch against the first parent, for every rev that names a commit.

    Paths equal to or under an `exclude` entry are left out (the ledger, the evidence folders).
    """
    resolved = _resolved(repo, list(revs))
    specs = _pathspecs(exclude)
    by_sha: dict[str, Patch] = {}
    shas = list(dict.fromkeys(resolved.values()))
    for start in range(0, len(shas), _REVS_PER_CALL):
        chunk = shas[start:start + _REVS_PER_CALL]
        # Magic pathspecs need GIT_LITERAL_PATHSPECS off; `literal` keeps each path itself literal.
        out = run_git(repo, "show", "--no-color", "--no-ext-diff", "--no-textconv", "--diff-merges=first-parent",
                      "--patch", "--format=%x00harness-patch%x00%H", *chunk, "--", *specs,
                      env={"GIT_LITERAL_PATHSPECS": "0"})
        for block in out.split(_START)[1:]:
            sha, _, body = block.partition("\n")
            body = body.lstrip("\n")
            text, cut = _cut(body, max_chars)
            files = len(re.findall(r"(?m)^diff --git ", body))
            by_sha[sha.strip()] = Patch(sha.strip(), text, cut, files)
    # With pathspecs git omits a commit that changed nothing else: its patch is empty.
    return {rev: by_sha.get(sha) or Patch(sha, "", False, 0) for rev, sha in resolved.items()}


def range_patch(repo: git.Repo, base: str, head: str, *, exclude: Sequence[str] = (),
                max_chars: int = MAX_PATCH_CHARS) -> Patch | None:
    """The change from `base` to `head` (both commits) as one patch, or None when either does not resolve.

    `Patch.commit` is `head`'s full sha."""
    resolved = _resolved(repo, [base, head])
    if base not in resolved or head not in resolved:
        return None
    out = run_git(repo, "diff", "--no-color", "--no-ext-diff", "--no-textconv", resolved[base], resolved[head],
                  "--", *_pathspecs(exclude), env={"GIT_LITERAL_PATHSPECS": "0"})
    text, cut = _cut(out, max_chars)
    return Patch(resolved[head], text, cut, len(re.findall(r"(?m)^diff --git ", out)))
