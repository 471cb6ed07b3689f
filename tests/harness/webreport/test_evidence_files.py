"""One evidence folder: its state, its files, its attempt.json; the checksum verdict is verify_sha256sums'."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from harness.durability.evidence import verify_sha256sums, write_sha256sums
from harness.webreport import evidence_files
from harness.webreport.evidence_files import State, VerifyCache, read_evidence

FOLDER = "plans/active/INIT/reports/2025-01-01T000000Z/slug"
SUMMARY = f"{FOLDER}/analysis/summary.md"


def make_folder(root: Path, record: object = None) -> Path:
    folder = root / FOLDER
    (folder / "analysis").mkdir(parents=True)
    (folder / "red").mkdir()
    (folder / "analysis/summary.md").write_text("# summary\n")
    (folder / "red/red.log").write_text("log\n")
    (folder / "attempt.json").write_text(json.dumps(record if record is not None else {"outcome": "GREEN"}))
    write_sha256sums(folder)
    return folder


def test_a_folder_that_matches_its_checksums(tmp_path: Path) -> None:
    make_folder(tmp_path)
    ev = read_evidence(tmp_path, SUMMARY)
    assert ev.state == State.VERIFIED and ev.problems == ()
    assert ev.folder == FOLDER and ev.named_file == SUMMARY
    assert ev.files == {"analysis/summary.md", "red/red.log", "attempt.json", "SHA256SUMS"}
    assert ev.record == {"outcome": "GREEN"} and ev.record_problem is None


@pytest.mark.parametrize("tamper", ["edit", "delete", "add", "bad line", "no sums", "symlink", "empty dir"])
def test_every_other_folder_gets_verify_sha256sums_own_verdict(tmp_path: Path, tamper: str) -> None:
    folder = make_folder(tmp_path)
    if tamper == "edit":
        (folder / "red/red.log").write_text("changed\n")
    elif tamper == "delete":
        (folder / "red/red.log").unlink()
    elif tamper == "add":
        (folder / "red/extra.log").write_text("late\n")
    elif tamper == "bad line":
        with (folder / "SHA256SUMS").open("a") as handle:
            handle.write("not a checksum line\n")
    elif tamper == "no sums":
        (folder / "SHA256SUMS").unlink()
    elif tamper == "symlink":
        os.symlink(folder / "red/red.log", folder / "red/link.log")
    elif tamper == "empty dir":
        (folder / "empty").mkdir()  # not a file: checksums still hold, as verify_sha256sums says
    ev = read_evidence(tmp_path, SUMMARY)
    assert ev.problems == tuple(verify_sha256sums(folder))
    assert (ev.state == State.VERIFIED) == (tamper == "empty dir")
    if tamper == "symlink":
        assert "red/link.log" not in ev.files  # never linked, never followed


@pytest.mark.parametrize("written", ["../outside/analysis/summary.md", "/etc/analysis/summary.md",
                                     ".git/x/analysis/summary.md", "plans/escape/analysis/summary.md"])
def test_paths_that_leave_the_repository_are_not_read(tmp_path: Path, written: str) -> None:
    root = tmp_path / "repo"
    (root / "plans").mkdir(parents=True)
    make_folder(tmp_path / "outside-root")
    os.symlink(tmp_path / "outside-root", root / "plans/escape")
    ev = read_evidence(root, written)
    assert ev.state == State.OUTSIDE and ev.folder is None and ev.files == frozenset() and ev.record is None


def test_a_missing_folder(tmp_path: Path) -> None:
    ev = read_evidence(tmp_path, SUMMARY)
    assert ev.state == State.MISSING and ev.problems == (f"evidence folder {FOLDER} is missing",)


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "attempt.json is not valid JSON"),
    ("[1, 2]", "attempt.json does not hold a JSON object"),
])
def test_an_unreadable_record_is_a_problem_not_a_crash(tmp_path: Path, content: str, problem: str) -> None:
    folder = make_folder(tmp_path)
    (folder / "attempt.json").write_text(content)
    write_sha256sums(folder)
    ev = read_evidence(tmp_path, SUMMARY)
    assert ev.record is None and ev.record_problem.startswith(problem)


def test_the_cache_reuses_a_verdict_until_a_file_changes(tmp_path: Path, monkeypatch) -> None:
    folder = make_folder(tmp_path)
    cache = VerifyCache()
    assert read_evidence(tmp_path, SUMMARY, cache=cache).state == State.VERIFIED
    calls = []
    monkeypatch.setattr("harness.webreport.evidence_files._matches_exactly",
                        lambda *a: calls.append(a) or (True, None))
    assert read_evidence(tmp_path, SUMMARY, cache=cache).state == State.VERIFIED
    assert calls == []  # unchanged: not hashed again
    log = folder / "red/red.log"
    stat = log.stat()
    time.sleep(0.01)
    log.write_text("abc\n")  # same size, and the mtime put back: only the ctime tells
    os.utime(log, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    monkeypatch.undo()
    ev = read_evidence(tmp_path, SUMMARY, cache=cache)
    assert ev.state == State.MISMATCH
    assert "checksum mismatch: red/red.log was changed after SHA256SUMS was written" in ev.problems


def test_the_record_shown_is_the_one_whose_checksum_was_checked(tmp_path: Path, monkeypatch) -> None:
    make_folder(tmp_path, {"outcome": "GREEN", "reason": "all stages passed"})
    reads: list[str] = []
    real = evidence_files._read
    monkeypatch.setattr(evidence_files, "_read", lambda path, *a: reads.append(Path(path).name) or real(path, *a))
    ev = read_evidence(tmp_path, SUMMARY)
    assert ev.state == State.VERIFIED and ev.record == {"outcome": "GREEN", "reason": "all stages passed"}
    assert reads.count("attempt.json") == 1  # read once: hashed, then parsed from the same bytes


def test_an_oversized_record_still_verifies_and_says_why_it_is_not_read(tmp_path: Path, monkeypatch) -> None:
    make_folder(tmp_path, {"outcome": "GREEN", "reason": "x" * 100})
    monkeypatch.setattr(evidence_files, "MAX_RECORD_BYTES", 64)
    ev = read_evidence(tmp_path, SUMMARY)
    assert ev.state == State.VERIFIED and ev.problems == ()  # hashed whole, not only the bytes read for JSON
    assert ev.record is None and ev.record_problem == "attempt.json is larger than the 64 bytes read here"
