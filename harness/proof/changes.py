"""Which changed files form the change, which are tests, and which are left out of the commit (and why)."""
from __future__ import annotations

import posixpath
from collections.abc import Iterable
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


def owned_by_harness(path: str, config: Config) -> bool:
    """The ledger and the harness's folders (evidence, selector runs) belong to the harness: what it writes
    there is never part of a change, and an agent's edits there are taken back."""
    return path == config.ledger or any(_under(path, root) for root in harness_roots(config))


def split_owned(changes: Iterable[Change], config: Config) -> tuple[tuple[Change, ...], tuple[Change, ...]]:
    """(the changes that are the work, the changes to harness-owned paths), each sorted by path."""
    ordered = sorted(changes, key=lambda c: c.path)
    owned = tuple(c for c in ordered if owned_by_harness(c.path, config))
    return tuple(c for c in ordered if not owned_by_harness(c.path, config)), owned


def classify_changes(changes: Iterable[Change], config: Config) -> ChangeSet:
    """Partition changes: harness-owned paths (never part of the change), tests (`test_globs`), and the
    files left out of the commit (`ignore` rules, the size cap) with the reason."""
    kept, owned = split_owned(changes, config)
    cap_bytes = config.caps.changed_file_bytes
    left_out: list[tuple[str, str]] = []
    commit: list[str] = []
    for change in kept:
        if config.ignore and matches_any(change.path, config.ignore):
            left_out.append((change.path, "matches an ignore rule in harness.yaml"))
        elif change.kind != "deleted" and change.size_bytes > cap_bytes:
            left_out.append((change.path, f"{change.size_bytes} bytes, over the {cap_bytes}-byte cap"))
        else:
            commit.append(change.path)
    tests = tuple(c for c in kept if matches_any(c.path, config.test_globs))
    return ChangeSet(kept, tests, tuple(commit), tuple(left_out), tuple(c.path for c in owned))
