"""Atomic writes: the content lands whole or not at all, durably, with no temporary file left behind."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import atomic
from harness.errors import EvidenceError
from tests.harness.fsync_watch import assert_synced_before_renamed, record_fsyncs_and_renames


@dataclass(frozen=True)
class _Record:
    name: str
    where: Path
    loss: float


def test_atomic_writes_create_dirs_and_leave_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out.txt"
    atomic.atomic_write_text(target, "héllo\n")
    atomic.atomic_write_text(target, "second\n")
    atomic.atomic_write_bytes(tmp_path / "a" / "raw.bin", b"\0\1")
    assert target.read_text() == "second\n" and (tmp_path / "a" / "raw.bin").read_bytes() == b"\0\1"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]
    assert (target.stat().st_mode & 0o777) == 0o644


def test_atomic_write_json_is_sorted_strict_and_converts_records(tmp_path: Path) -> None:
    path = tmp_path / "attempt.json"
    atomic.atomic_write_json(
        path, {"z": 1, "a": [_Record("r", Path("x/y"), float("nan"))], "inf": float("-inf"), "t": (1, 2)}
    )
    text = path.read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard constant {c}"))
    assert data == {
        "a": [{"loss": "NaN", "name": "r", "where": "x/y"}], "inf": "-Infinity", "t": [1, 2], "z": 1
    }
    with pytest.raises(EvidenceError, match="cannot write object"):
        atomic.atomic_write_json(tmp_path / "bad.json", {"x": object()})
    assert not (tmp_path / "bad.json").exists()
    (tmp_path / "blocker").write_text("a file where a folder is needed")
    with pytest.raises(EvidenceError, match=r"cannot write .*blocker/x\.json"):
        atomic.atomic_write_json(tmp_path / "blocker" / "x.json", {})


def test_the_data_is_fsynced_before_the_rename_and_the_folder_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = record_fsyncs_and_renames(monkeypatch)
    target = tmp_path / "out.json"
    atomic.atomic_write_json(target, {"a": 1})
    assert_synced_before_renamed(events, target)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "kept.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="mid-write"), atomic.replacing(target) as handle:
        handle.write(b"half of the new")
        raise RuntimeError("mid-write")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
    with pytest.raises(FileNotFoundError), atomic.replacing(tmp_path / "no-folder" / "x.txt"):
        pass


def test_a_mode_can_be_kept(tmp_path: Path) -> None:
    target = tmp_path / "private.txt"
    atomic.atomic_write_text(target, "x\n", mode=0o600)
    assert (target.stat().st_mode & 0o777) == 0o600


def test_a_folder_that_refuses_fsync_is_no_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if os.path.isdir(f"/proc/self/fd/{fd}"):
            raise OSError(22, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    atomic.atomic_write_text(tmp_path / "x.txt", "written\n")
    assert (tmp_path / "x.txt").read_text() == "written\n"
