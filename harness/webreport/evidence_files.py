"""One attempt's evidence folder as the report shows it: where it is, whether it still matches its
SHA256SUMS, which files it holds, and what its attempt.json says.

The checksum check is the one `harness ledger verify` makes (`harness.durability.evidence.verify_sha256sums`). The
folder is the one the ledger's evidence path names (its `analysis/summary.md` is two levels down; any
other path names the folder itself). Nothing outside the repository is read: a path that leaves it, even
through a symlink, is reported as `outside` and its files are neither read nor linked. The files listed
are the regular files below the folder (symlinks are not followed, so none of them leads elsewhere).

Most folders match their checksums, and verify_sha256sums' pathlib walk costs milliseconds per folder (a
minute for 20,000 folders), so a folder whose files are exactly those SHA256SUMS lists, each with its
digest, is judged here from the one scan the report makes anyway: that is the only case in which
verify_sha256sums returns no problem. Any other folder is handed to it, for its verdict and its words.

A `VerifyCache` lets `harness report --serve` rebuild without hashing unchanged folders again: a folder's
result is reused while every file's size, mtime, ctime and inode stay as they were (ctime cannot be set
back by a user, so an edit that restores the mtime is still seen).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.durability.evidence import SUMS_NAME, evidence_folder_of, verify_sha256sums
from harness.webreport.paths import clean_relative, inside

RECORD_NAME = "attempt.json"
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")  # a line of SHA256SUMS, as harness.durability.evidence reads it
MAX_RECORD_BYTES = 5_000_000
_BLOCK = 1 << 16  # evidence files are small; big logs are stored gzipped


class State(StrEnum):
    VERIFIED = "verified"  # every file matches SHA256SUMS
    MISMATCH = "mismatch"  # edited, missing or unlisted files, or no SHA256SUMS at all
    MISSING = "missing"  # nothing at the path
    OUTSIDE = "outside"  # the path leaves the repository: not read, not linked


@dataclass(frozen=True)
class Evidence:
    """What the report knows about one evidence folder. Paths are repo-relative posix strings."""

    written: str
    folder: str | None
    named_file: str | None  # the file the ledger names (usually the summary), when inside the repository
    state: State
    problems: tuple[str, ...]
    files: frozenset[str]  # regular files below the folder, folder-relative
    record: Mapping[str, Any] | None
    record_problem: str | None

    def has(self, rel: str) -> bool:
        return rel in self.files


@dataclass
class VerifyCache:
    """folder -> (signature of its files, problems found): checksums are recomputed only on change."""

    entries: dict[str, tuple[tuple, tuple[str, ...]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _scan(folder: str, with_stat: bool) -> tuple[frozenset[str], bool, tuple]:
    """(regular files, whether anything else is there (a symlink), stat signature when asked)."""
    files: list[str] = []
    signature: list[tuple] = []
    other = False
    stack = [("", folder)]
    while stack:
        prefix, where = stack.pop()
        try:
            entries = list(os.scandir(where))
        except OSError:
            continue
        for entry in entries:
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append((rel + "/", entry.path))
            elif entry.is_file(follow_symlinks=False):
                files.append(rel)
                if with_stat:
                    st = entry.stat(follow_symlinks=False)
                    signature.append((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
            else:
                other = True  # a symlink or a special file: verify_sha256sums reports it
                if with_stat:
                    signature.append((rel, "other"))
    return frozenset(files), other, tuple(sorted(signature, key=repr))


def _matches_exactly(folder: str, files: frozenset[str]) -> tuple[bool, bytes | None]:
    """(whether SHA256SUMS lists exactly `files` (less itself), every line well formed, every digest right;
    attempt.json's bytes when they were read for their digest, so the record is not read twice)."""
    try:
        text = _read(f"{folder}/{SUMS_NAME}").decode("utf-8", errors="replace")
    except OSError:
        return False, None
    listed: dict[str, str] = {}
    for line in text.splitlines():
        match = _SUM_LINE.fullmatch(line)
        if match is None:
            return False, None
        listed[match[2]] = match[1]
    if listed.keys() != files - {SUMS_NAME}:
        return False, None
    record = None
    for rel, digest in listed.items():
        try:
            if rel == RECORD_NAME:
                record = _read(f"{folder}/{rel}", MAX_RECORD_BYTES + 1)
                found = hashlib.sha256(record).hexdigest() if len(record) <= MAX_RECORD_BYTES else _sha256(
                    f"{folder}/{rel}")
            else:
                found = _sha256(f"{folder}/{rel}")
        except OSError:
            return False, None
        if found != digest:
            return False, None
    return True, record


def _read(path: str, limit: int = -1) -> bytes:
    """The file's first `limit` bytes (all of it when -1), read with os.read: evidence files are small, and
    a Python file object costs more than the read itself."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while limit:
            block = os.read(fd, _BLOCK if limit < 0 else min(limit, _BLOCK))
            if not block:
                break
            parts.append(block)
            if limit > 0:
                limit -= len(block)
        return b"".join(parts)
    finally:
        os.close(fd)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        while block := os.read(fd, _BLOCK):
            h.update(block)
    finally:
        os.close(fd)
    return h.hexdigest()


def _record(path: str, raw: bytes | None = None) -> tuple[Mapping[str, Any] | None, str | None]:
    """attempt.json at `path` (or its bytes `raw`, already read) as a JSON object, or why not."""
    try:
        if raw is None:
            raw = _read(path, MAX_RECORD_BYTES + 1)
        if len(raw) > MAX_RECORD_BYTES:
            return None, f"{RECORD_NAME} is larger than the {MAX_RECORD_BYTES} bytes read here"
        data = json.loads(raw)
    except OSError as exc:
        return None, f"{RECORD_NAME} cannot be read: {exc.strerror or exc}"
    except ValueError as exc:
        return None, f"{RECORD_NAME} is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"{RECORD_NAME} does not hold a JSON object"
    return data, None


def read_evidence(root: Path, written: str, *, cache: VerifyCache | None = None) -> Evidence:
    """Check and read the evidence folder that the ledger path `written` names, inside `root` only."""
    folder = clean_relative(evidence_folder_of(written))
    named = clean_relative(written)
    if folder is None or named is None or not inside(root, folder):
        return Evidence(written, None, None, State.OUTSIDE,
                        ("the evidence path leaves the repository; it is not read or linked",),
                        frozenset(), None, None)
    path = os.path.join(root, folder)
    if not os.path.isdir(path):
        return Evidence(written, folder, named, State.MISSING, (f"evidence folder {folder} is missing",),
                        frozenset(), None, None)
    files, other, signature = _scan(path, cache is not None)
    problems: tuple[str, ...] | None = None
    if cache is not None:
        with cache.lock:
            hit = cache.entries.get(folder)
        if hit is not None and hit[0] == signature:
            problems = hit[1]
    raw_record = None
    if problems is None:
        exact, raw_record = _matches_exactly(path, files) if not other and SUMS_NAME in files else (False, None)
        problems = () if exact else tuple(verify_sha256sums(Path(path)))
        if cache is not None:
            with cache.lock:
                cache.entries[folder] = (signature, problems)
    record, record_problem = (_record(f"{path}/{RECORD_NAME}", raw_record) if RECORD_NAME in files
                              else (None, f"{RECORD_NAME} is missing"))
    state = State.MISMATCH if problems else State.VERIFIED
    if SUMS_NAME not in files and not problems:
        state = State.MISMATCH
    return Evidence(written, folder, named, state, problems, files, record, record_problem)
