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
    """The change under proof, partitioned. Paths are repo-relative posix strings.

    `changes` is the change the stages prove and the commit holds (`commit_paths`), `tests` the test files
    among them; `left_out` names the files the commit leaves out, with the reason, and `left_out_changes`
    are those files' changes (set aside while the stages run: harness.durability.set_aside)."""

    changes: tuple[Change, ...]
    tests: tuple[Change, ...]
    commit_paths: tuple[str, ...]
    left_out: tuple[tuple[str, str], ...]
    harness_owned: tuple[str, ...]
    left_out_changes: tuple[Change, ...] = ()

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


def _left_out_reason(change: Change, config: Config) -> str | None:
    """Why the commit leaves `change` out (an `ignore` rule, the size cap), or None when it is committed."""
    if config.ignore and matches_any(change.path, config.ignore):
        return "matches an ignore rule in harness.yaml"
    cap_bytes = config.caps.changed_file_bytes
    if change.kind != "deleted" and change.size_bytes > cap_bytes:
        return f"{change.size_bytes} bytes, over the {cap_bytes}-byte cap"
    return None


def classify_changes(changes: Iterable[Change], config: Config, *, leave_out: bool = True) -> ChangeSet:
    """Partition changes: harness-owned paths (never part of the change), the files left out of the commit
    (`ignore` rules, the size cap) with the reason, and the change itself with its tests (`test_globs`).

    `leave_out` False: nothing is left out (committed work proven as it is, `harness verify`)."""
    kept, owned = split_owned(changes, config)
    left_out: list[tuple[str, str]] = []
    left_out_changes: list[Change] = []
    work: list[Change] = []
    for change in kept:
        why = _left_out_reason(change, config) if leave_out else None
        if why is None:
            work.append(change)
        else:
            left_out.append((change.path, why))
            left_out_changes.append(change)
    tests = tuple(c for c in work if matches_any(c.path, config.test_globs))
    return ChangeSet(tuple(work), tests, tuple(c.path for c in work), tuple(left_out),
                     tuple(c.path for c in owned), tuple(left_out_changes))


def work_to_commit(changes: Iterable[Change], config: Config) -> tuple[Change, ...]:
    """The changes a working-tree attempt would commit: neither harness-owned nor left out. A tree whose
    only changes are files the commit leaves out holds no work (they are set aside from every proof)."""
    return classify_changes(changes, config).changes
