"""Shared by tests of atomic writes: watch the fsync and rename calls a write makes."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def record_fsyncs_and_renames(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, ...]]:
    """("fsync", real path of the descriptor) and ("replace", src, dst) in the order they happen."""
    events: list[tuple[str, ...]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        events.append(("fsync", os.path.realpath(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        events.append(("replace", os.path.realpath(src), os.path.realpath(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def assert_synced_before_renamed(events: list[tuple[str, ...]], target: Path) -> None:
    """`target` was renamed into place from a temporary file whose data was fsync'd first, and its folder
    was fsync'd after."""
    renames = [(i, e[1]) for i, e in enumerate(events) if e[0] == "replace" and e[2] == os.path.realpath(target)]
    assert renames, f"{target.name} was never renamed into place"
    index, temporary = renames[-1]
    assert ("fsync", temporary) in events[:index], f"{target.name} was renamed into place without an fsync"
    assert ("fsync", os.path.realpath(target.parent)) in events[index:], f"{target.parent} was not fsync'd"
