"""One harness per repository: an flock on a file that is never deleted.

The lock is an `flock` on `<git-dir>/harness/lock`, a file that is never deleted or replaced: the
kernel drops the lock when its holder dies, however it dies, so there is no stale-pid race. The
file's JSON content only says who holds (or last held) the lock, for messages and takeover logs.
Pass the repository's common git dir (gitops.common_git_dir) so linked worktrees share one lock.
"""
from __future__ import annotations

import fcntl
import json
import os
import shlex
import socket
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from harness.clock import iso, utc_now
from harness.errors import LockError, RepositoryBusy

STATE_DIR = "harness"
LOCK_NAME = "lock"


class RepoLock:
    """Context manager holding the repository lock.

    After entering, `record` is what this harness wrote, and `took_over_from` is the record of a
    previous holder that died without releasing (kill -9, power loss), or None.
    """

    def __init__(self, git_dir: Path, command: str | None = None) -> None:
        self.path = Path(git_dir) / STATE_DIR / LOCK_NAME
        self.command = command if command is not None else shlex.join(["harness", *sys.argv[1:]])
        self.record: dict[str, Any] = {}
        self.took_over_from: dict[str, Any] | None = None
        self._fd: int | None = None

    def __enter__(self) -> Self:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # os.open makes the descriptor non-inheritable: an agent started by the harness must not
            # keep the lock alive after the harness itself has died.
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise LockError(f"cannot open lock file {self.path}: {exc.strerror}; check permissions") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_record(fd)
            os.close(fd)
            raise RepositoryBusy(
                f"another harness ({_describe(holder)}) is running on this repository; wait for it to "
                f"finish or stop it (lock file: {self.path})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        previous = _read_record(fd)
        # Holding the flock proves the previous holder is gone; without a `released` mark it died
        # mid-run and may have left a journal, a worktree or an agent behind.
        if previous and "pid" in previous and not previous.get("released"):
            self.took_over_from = previous
        self.record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": iso(utc_now()),
            "command": self.command,
        }
        _write_record(fd, self.record)
        self._fd = fd
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _write_record(fd, {**self.record, "released": iso(utc_now())})
        finally:
            os.close(fd)  # closing the descriptor releases the flock


def _read_record(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 65536, 0)
        record = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(fd: int, record: dict[str, Any]) -> None:
    # In place, never replaced: a new inode would carry no lock.
    data = (json.dumps(record, sort_keys=True) + "\n").encode("utf-8")
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return (
        f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, "
        f"started {holder.get('started', '?')}, `{holder.get('command', '?')}`"
    )
