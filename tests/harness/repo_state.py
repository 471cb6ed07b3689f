"""What a harness command may leave behind in a repository, snapshotted for before/after comparisons."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.conftest import git


@dataclass(frozen=True)
class RepoState:
    """HEAD, `git status`, every file of the working tree (bytes) and every ref."""

    head: str
    status: str
    files: dict[str, bytes]
    refs: str


def repo_state(repo: Path) -> RepoState:
    files = {p.relative_to(repo).as_posix(): p.read_bytes() for p in sorted(repo.rglob("*"))
             if p.is_file() and ".git" not in p.relative_to(repo).parts}
    return RepoState(head=git(repo, "rev-parse", "HEAD").strip(),
                     status=git(repo, "status", "--porcelain", "--untracked-files=all"),
                     files=files, refs=git(repo, "for-each-ref", "--format=%(refname) %(objectname)"))


def leftovers(repo: Path, evidence_root: str = "plans/active") -> list[str]:
    """An attempt's state files that should not be there when no attempt is running: the journal and what
    it keeps, staging folders, evidence folders (empty ones too) and refs of aborted attempts."""
    state = repo / ".git" / "harness"
    found = [str(p) for p in (state / "journal.json", state / "journal.kept") if p.exists()]
    found += [str(p) for p in (state / "staging").glob("*")] if (state / "staging").is_dir() else []
    found += [str(p) for p in (repo / evidence_root).rglob("*")] if (repo / evidence_root).exists() else []
    found += git(repo, "for-each-ref", "--format=%(refname)", "refs/harness/aborted").split()
    return found
