"""One attempt's evidence folder as the report shows it: where it is, whether it still matches its
SHA256SUMS, which files it holds, and what its attempt.json says.

The checksum check is the one `harness ledger verify` makes (`harness.evidence.verify_sha256sums`). The
folder is the one the ledger's evidence path names (its `analysis/summary.md` is two levels down; any
other path names the folder itself). Nothing outside the repository is read: a path that leaves it, even
through a symlink, is reported as `outside` and its files are neither read nor linked. The files listed
are the regular files below the folder (symlinks are not followed, so none of them leads elsewhere).

A `VerifyCache` lets `harness report --serve` rebuild without hashing unchanged folders again: a folder's
result is reused while every file's size, mtime, ctime and inode stay as they were (ctime cannot be set
back by a user, so an edit that restores the mtime is still seen).
"""
from __future__ import annotations

import json
import os
import posixpath
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from harness.evidence import SUMS_NAME, verify_sha256sums
from harness.webreport.paths import clean_relative, inside

RECORD_NAME = "attempt.json"
MAX_RECORD_BYTES = 5_000_000


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


def folder_of(written: str) -> str:
    """Attempt lines name `<folder>/analysis/summary.md`; the folder is what SHA256SUMS covers."""
    head, name = posixpath.split(written)
    parent, last = posixpath.split(head)
    if name == "summary.md" and last == "analysis":
        return parent
    return written


@dataclass
class VerifyCache:
    """folder -> (signature of its files, problems found): checksums are recomputed only on change."""

    entries: dict[str, tuple[tuple, tuple[str, ...]]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _scan(folder: Path, with_stat: bool) -> tuple[frozenset[str], tuple]:
    files: list[str] = []
    signature: list[tuple] = []
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
                stack.append((rel + "/", Path(entry.path)))
            elif entry.is_file(follow_symlinks=False):
                files.append(rel)
                if with_stat:
                    st = entry.stat(follow_symlinks=False)
                    signature.append((rel, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
            elif with_stat:
                signature.append((rel, "other"))  # a symlink: verify_sha256sums reports it
    return frozenset(files), tuple(sorted(signature, key=repr))


def _record(path: Path) -> tuple[Mapping[str, Any] | None, str | None]:
    try:
        size = path.stat().st_size
        if size > MAX_RECORD_BYTES:
            return None, f"{RECORD_NAME} is {size} bytes, more than the {MAX_RECORD_BYTES} read here"
        data = json.loads(path.read_bytes())
    except OSError as exc:
        return None, f"{RECORD_NAME} cannot be read: {exc.strerror or exc}"
    except ValueError as exc:
        return None, f"{RECORD_NAME} is not valid JSON: {exc}"
    if not isinstance(data, dict):
        return None, f"{RECORD_NAME} does not hold a JSON object"
    return data, None


def read_evidence(root: Path, written: str, *, cache: VerifyCache | None = None) -> Evidence:
    """Check and read the evidence folder that the ledger path `written` names, inside `root` only."""
    folder = clean_relative(folder_of(written))
    named = clean_relative(written)
    if folder is None or named is None or not inside(root, folder):
        return Evidence(written, None, None, State.OUTSIDE,
                        ("the evidence path leaves the repository; it is not read or linked",),
                        frozenset(), None, None)
    path = Path(root) / folder
    if not path.is_dir():
        return Evidence(written, folder, named, State.MISSING, (f"evidence folder {folder} is missing",),
                        frozenset(), None, None)
    files, signature = _scan(path, cache is not None)
    problems: tuple[str, ...] | None = None
    if cache is not None:
        with cache.lock:
            hit = cache.entries.get(folder)
        if hit is not None and hit[0] == signature:
            problems = hit[1]
    if problems is None:
        problems = tuple(verify_sha256sums(path))
        if cache is not None:
            with cache.lock:
                cache.entries[folder] = (signature, problems)
    record, record_problem = (_record(path / RECORD_NAME) if RECORD_NAME in files
                              else (None, f"{RECORD_NAME} is missing"))
    state = State.MISMATCH if problems else State.VERIFIED
    if SUMS_NAME not in files and not problems:
        state = State.MISMATCH
    return Evidence(written, folder, named, state, problems, files, record, record_problem)
