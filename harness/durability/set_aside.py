"""What the harness moves out of the way during an attempt, kept beside the journal, so that however the
attempt ends (GREEN, FAILED, an error, kill -9) it is put back exactly as it was.

- The files left out of the commit (harness.proof.changes: `ignore` rules, the size cap) are set aside
  while the stages run (`setting_aside`, used by harness.iteration.prove): each path is put back to its
  state at the base commit (removed if it is new), so every stage sees the tree that will be committed.
- The ledger as it was just before the harness writes its attempt line (`keep_ledger`, used by
  harness.iteration.commit): until the recording commit exists that line is an uncommitted edit beside
  the person's own; `put_back_ledger` takes out the harness's write and nothing else.

The copies live in the journal's `keep_dir` (`<git-dir>/harness/journal.kept/`, a worker's beside its
journal). Order makes a crash at any instant recoverable: a file is moved out only after the journal names
it, and the journal forgets it only after it is back; a copy that exists is the file's content, a copy
that is gone means the tree holds it. `put_back` (called by recovery at the next start) is idempotent.
"""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import git

from harness.atomic import atomic_write_bytes, fsync_dir
from harness.durability.journal import Journal
from harness.errors import HarnessError
from harness.gitops import Change, merge_texts, write_files_at_rev

SET_ASIDE_KEY = "set_aside"
LEDGER_KEY = "ledger_kept"
_FILES = "set-aside"
_LEDGER_BEFORE, _LEDGER_WRITTEN = "ledger.before", "ledger.written"


class SetAsideError(HarnessError):
    """A file set aside could not be put back (something else now occupies its path)."""


@dataclass(frozen=True)
class SetAside:
    """One path moved out of the way. `had`: "file" when something was there (moved to `copy` under the
    journal's keep dir: a file or a symlink, with its mode); "nothing" when the change deleted it (it is
    put back by removing the path again)."""

    path: str
    had: Literal["file", "nothing"]
    copy: str | None


def _move(src: Path, dst: Path) -> None:
    """Move a file or symlink; `dst` appears whole before `src` disappears (a copy across file systems)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        tmp = dst.with_name(f".{dst.name}.tmp")
        shutil.copy2(src, tmp, follow_symlinks=False)
        if not tmp.is_symlink():
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        os.replace(tmp, dst)
        fsync_dir(dst.parent)
        src.unlink()
    fsync_dir(src.parent)


def _remove_empty_parents(root: Path, path: Path) -> None:
    """A folder emptied by moving a file out would not exist at the base commit either."""
    parent = path.parent
    while parent != root and parent.is_dir() and not any(parent.iterdir()):
        parent.rmdir()
        parent = parent.parent


def _entries(record: dict[str, Any]) -> tuple[Path, list[SetAside]]:
    return Path(record["root"]), [SetAside(e["path"], e["had"], e.get("copy")) for e in record["files"]]


def put_back(journal: Journal, record: dict[str, Any] | None = None) -> tuple[str, ...]:
    """Put every file the journal names as set aside back where it was; the journal then forgets them.
    `record`: the journal's content when the caller has it already. Returns the paths put back."""
    record = journal.load() if record is None else record
    aside = (record or {}).get(SET_ASIDE_KEY)
    if not aside:
        return ()
    root, entries = _entries(aside)
    for entry in entries:
        target = root / entry.path
        if entry.had == "nothing":
            if target.is_symlink() or target.is_file():
                target.unlink()
                _remove_empty_parents(root, target)
            continue
        copy = journal.keep_dir / _FILES / str(entry.copy)
        if not os.path.lexists(copy):
            continue  # moved back already, or never moved out: the tree holds it
        if target.is_dir() and not target.is_symlink():
            raise SetAsideError(f"{target} is now a folder; the file left out of the commit that was there is "
                                f"kept in {copy}: move the folder away and run the harness again to put it back")
        _move(copy, target)
    journal.update(**{SET_ASIDE_KEY: None})
    shutil.rmtree(journal.keep_dir / _FILES, ignore_errors=True)
    return tuple(e.path for e in entries)


@contextlib.contextmanager
def setting_aside(repo: git.Repo, root: Path, base: str, changes: Sequence[Change],
                  journal: Journal) -> Iterator[None]:
    """Within the block the changed `changes` paths of the tree at `root` are as at `base` (removed when
    new); after it, however it ends, they are back exactly as they were."""
    if not changes:
        yield
        return
    entries = [SetAside(c.path, "nothing" if c.kind == "deleted" else "file",
                        None if c.kind == "deleted" else str(n)) for n, c in enumerate(changes)]
    journal.update(**{SET_ASIDE_KEY: {"root": str(root), "files": [asdict(e) for e in entries]}})
    try:
        for entry in entries:
            if entry.had == "file":
                target = root / entry.path
                _move(target, journal.keep_dir / _FILES / str(entry.copy))
                _remove_empty_parents(root, target)
        at_base = [Change(c.path, "modified", 0) for c in changes if c.kind != "added"]
        write_files_at_rev(repo, base, at_base, root)
        yield
    finally:
        put_back(journal)


def keep_ledger(journal: Journal, before: bytes, written: bytes) -> None:
    """Before the harness writes `written` over the ledger's `before`: keep both and name them in the
    journal, so that recovery can take the harness's write out again (put_back_ledger)."""
    atomic_write_bytes(journal.keep_dir / _LEDGER_BEFORE, before)
    atomic_write_bytes(journal.keep_dir / _LEDGER_WRITTEN, written)
    journal.update(**{LEDGER_KEY: True})


def put_back_ledger(repo: git.Repo, journal: Journal, ledger: Path,
                    record: dict[str, Any] | None = None) -> str | None:
    """Take the dead attempt's uncommitted write out of the ledger, keeping every edit of the person's:
    the ledger as it was before the write when nothing changed it since, else the person's later edits with
    the harness's write taken out (a three-way merge). Returns a note for the user when that merge
    conflicts (the ledger is then left as it is), else None."""
    record = journal.load() if record is None else record
    if not (record or {}).get(LEDGER_KEY):
        return None  # the harness never wrote the ledger in this attempt: it is the person's as it is
    before = (journal.keep_dir / _LEDGER_BEFORE).read_bytes()
    written = (journal.keep_dir / _LEDGER_WRITTEN).read_bytes()
    current = ledger.read_bytes() if ledger.is_file() else None
    note = None
    if current is None or current == written:
        _write_like(ledger, before)
    elif current != before:
        merged = merge_texts(repo, ours=current, base=written, theirs=before)
        if merged is None:
            note = (f"{ledger.name} was edited after the interrupted attempt wrote its line, and that line "
                    f"could not be taken out without touching those edits: it is left as it is; remove the "
                    f"interrupted attempt's line by hand")
        else:
            _write_like(ledger, merged)
    journal.update(**{LEDGER_KEY: None})
    return note


def _write_like(path: Path, data: bytes) -> None:
    mode = path.stat().st_mode & 0o777 if path.is_file() else 0o644
    atomic_write_bytes(path, data, mode=mode)
