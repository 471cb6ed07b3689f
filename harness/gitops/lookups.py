"""Questions about many commits at once, each answered by one git process however many commits are asked.

A report over a ledger of 20,000 attempts cannot afford a git process per attempt (several ms each): the
recording commits come from one walk of the history, the base commits are checked through gitpython's
persistent `cat-file --batch-check`, and commit subjects come from one `git show -s` per chunk.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import git

from harness.errors import GitError
from harness.gitops.command import git_status, run_git
from harness.gitops.revisions import TRAILER_KEY, resolve

_SHAS_PER_CALL = 200
_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True)
class CommitSummary:
    sha: str
    date: str  # committer date, ISO 8601
    subject: str


def trailer_index(repo: git.Repo, key: str, rev: str = "HEAD") -> dict[str, tuple[str, ...]]:
    """Every value of trailer `key` (key case-insensitive) on commits reachable from `rev` -> those commits,
    newest first: what `find_commits_with_trailer` answers for one value, for all values in one walk."""
    if not TRAILER_KEY.fullmatch(key):
        raise GitError(f"trailer key {key!r} must be letters, digits and dashes")
    start = resolve(repo, rev)
    # --grep narrows the walk to candidate messages inside git; the trailer parse then decides exactly.
    out = run_git(repo, "log", "--fixed-strings", "--regexp-ignore-case", f"--grep={key}:",
                  f"--format=%H%x00%(trailers:key={key},valueonly,unfold,separator=%x1e)%x00", start, "--")
    fields = out.split("\0")
    found: dict[str, list[str]] = {}
    for i in range(0, len(fields) - 1, 2):
        sha = fields[i].strip()
        for value in fields[i + 1].split("\x1e"):
            if value.strip():
                found.setdefault(value.strip(), []).append(sha)
    return {value: tuple(shas) for value, shas in found.items()}


def existing_commits(repo: git.Repo, names: Iterable[str]) -> frozenset[str]:
    """The hex names (full or abbreviated shas) among `names` that name a commit in the repository."""
    found = set()
    for name in dict.fromkeys(names):
        if not 4 <= len(name) <= 64 or not _HEX.issuperset(name):
            continue
        try:
            _, kind, _ = repo.git.get_object_header(name)  # gitpython's persistent cat-file --batch-check
        except ValueError:  # missing or ambiguous
            continue
        if kind == b"commit" or kind == "commit":
            found.add(name)
    return frozenset(found)


def commit_summaries(repo: git.Repo, shas: Iterable[str]) -> dict[str, CommitSummary]:
    """Full sha, committer date and subject of each commit among `shas` that exists, keyed as asked."""
    wanted = [s for s in dict.fromkeys(shas) if 4 <= len(s) <= 64 and _HEX.issuperset(s)]
    summaries: dict[str, CommitSummary] = {}
    for start in range(0, len(wanted), _SHAS_PER_CALL):
        chunk = wanted[start:start + _SHAS_PER_CALL]
        found = _summaries(repo, chunk)
        if found is None:  # one name that is not a commit fails the whole call: ask one at a time
            for sha in chunk:
                summaries.update(_summaries(repo, [sha]) or {})
        else:
            summaries.update(found)
    return summaries


def _summaries(repo: git.Repo, names: list[str]) -> dict[str, CommitSummary] | None:
    # `^{commit}` makes a blob or tree name an error instead of printing its content.
    status, out, _ = git_status(repo, "log", "--no-walk=unsorted", "--format=%H%x00%cI%x00%s%x00",
                                "--end-of-options", *(f"{n}^{{commit}}" for n in names), "--")
    if status != 0:
        return None
    fields = out.split("\0")
    records = [CommitSummary(fields[i].strip(), fields[i + 1], fields[i + 2])
               for i in range(0, len(fields) - 1, 3)]
    by_sha = {r.sha: r for r in records}
    return {name: summary for name in names for sha, summary in by_sha.items() if sha.startswith(name.lower())}
