"""Every file the harness writes whole is written atomically, here.

A write goes to a temporary file in the target's folder, is flushed and fsync'd, gets its mode (0644 by
default: evidence is meant to be read by others; mkstemp makes 0600), replaces the target with
os.replace, and the folder is fsync'd so the rename itself survives a crash. A harness killed mid-write
leaves the old file or the new one, never half of one, and no temporary file.

`replacing` is the one implementation (a file object to stream into, raising OSError); the
`atomic_write_*` functions create missing folders and turn an OSError into an EvidenceError naming the
file. JSON is strict (no NaN: `to_jsonable` writes it as "NaN"), sorted, indented by 2.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from harness.clock import iso
from harness.errors import EvidenceError

FILE_MODE = 0o644


@contextlib.contextmanager
def replacing(path: Path | str, *, mode: int = FILE_MODE) -> Iterator[IO[bytes]]:
    """A binary file whose content replaces `path` when the block ends without an exception.

    The folder must exist. Raises OSError; then `path` is as it was and the temporary file is gone.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(folder: Path | str) -> None:
    """Make a rename or unlink in `folder` durable. Some filesystems refuse fsync on a folder; the
    rename is atomic without it, so that refusal is not an error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data`, creating missing folders; raises EvidenceError naming the file."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with replacing(path, mode=mode) as handle:
            handle.write(data)
    except OSError as exc:
        raise EvidenceError(f"cannot write {path}: {exc.strerror or exc}; check permissions and free space"
                            ) from exc


def atomic_write_text(path: Path | str, text: str, *, mode: int = FILE_MODE) -> None:
    """`atomic_write_bytes` of `text` in UTF-8."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path: Path | str, obj: Any) -> None:
    """`obj` through `to_jsonable`, as strict JSON: sorted keys, indent 2, trailing newline."""
    text = json.dumps(to_jsonable(obj), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text + "\n")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data from records: dataclasses, paths, datetimes, tuples, sets; NaN/inf as strings.

    JSON has no NaN or infinity; writing them as "NaN"/"Infinity"/"-Infinity" keeps the file valid
    for strict parsers without losing what was measured.
    """
    if isinstance(obj, float):
        if math.isnan(obj):
            return "NaN"
        if math.isinf(obj):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if obj is None or isinstance(obj, str | int | bool):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise EvidenceError(f"JSON object keys must be strings, got {key!r}")
            out[key] = to_jsonable(value)
        return out
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, set | frozenset):
        return sorted(to_jsonable(v) for v in obj)
    if isinstance(obj, Path | PurePosixPath):
        return obj.as_posix()
    if isinstance(obj, datetime):
        return iso(obj) if obj.tzinfo is not None else obj.isoformat()
    raise EvidenceError(f"cannot write {type(obj).__name__} value {obj!r} as JSON; convert it first")
