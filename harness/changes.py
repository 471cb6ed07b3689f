"""Which changed files form the change, which are tests, and which are left out of the commit (and why)."""
from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from harness.config import Config
from harness.gitops import Change
from harness.globs import matches_any


@dataclass(frozen=True)
class ChangeSet:
    """The change under proof, partitioned. Paths are repo-relative posix strings."""

    changes: tuple[Change, ...]
    tests: tuple[Change, ...]
    commit_paths: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]
    harness_owned: tuple[str, ...]

    @property
    def has_test_changes(self) -> bool:
        return bool(self.tests)


def harness_roots(config: Config) -> tuple[str, ...]:
    """Folders only the harness writes: the evidence root and the folder of the selector-run history."""
    history_dir = posixpath.dirname(config.selectors.history)
    return (config.evidence_root, *([history_dir] if history_dir else []))


def _under(path: str, root: str) -> bool:
    root = root.rstrip("/")
    return path == root or path.startswith(root + "/")


def classify_changes(
    changes: Iterable[Change],
    *,
    test_globs: Sequence[str],
    ignore_globs: Sequence[str],
    cap_bytes: int,
    ledger_path: str,
    owned_roots: Sequence[str],
) -> ChangeSet:
    """Partition changes. The ledger and the harness's folders (evidence, selector runs) belong to the
    harness: never part of the change."""
    kept: list[Change] = []
    owned: list[str] = []
    left_out: list[tuple[str, str]] = []
    commit: list[str] = []
    for change in sorted(changes, key=lambda c: c.path):
        if change.path == ledger_path or any(_under(change.path, root) for root in owned_roots):
            owned.append(change.path)
            continue
        kept.append(change)
        if ignore_globs and matches_any(change.path, ignore_globs):
            left_out.append((change.path, "matches an ignore rule in harness.yaml"))
        elif change.kind != "deleted" and change.size_bytes > cap_bytes:
            left_out.append((change.path, f"{change.size_bytes} bytes, over the {cap_bytes}-byte cap"))
        else:
            commit.append(change.path)
    tests = tuple(c for c in kept if matches_any(c.path, test_globs))
    return ChangeSet(tuple(kept), tests, tuple(commit), tuple(left_out), tuple(owned))
