"""Evidence folders: layout, crash-safe writes, compression of big files, SHA256SUMS, templates.

Layout: `<evidence_root>/<initiative>/reports/<stamp>/<slug>/`, one fresh folder per iteration.
Every write is atomic (temp file in the same folder, fsync, os.replace, fsync of the folder), so a
harness killed mid-write leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import Any

import jinja2

from harness.errors import EvidenceError

SUMS_NAME = "SHA256SUMS"
TEMPLATES_DIR = Path(__file__).parent / "templates"
_NAME_PART = re.compile(r"(?!\.)[A-Za-z0-9._-]+")  # the ledger's plain-name rule
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


# --- time --------------------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError(f"{dt!r} has no time zone; pass an aware datetime (e.g. evidence.utc_now())")
    return dt.astimezone(UTC)


def stamp(dt: datetime) -> str:
    """Folder-safe UTC stamp: 2025-11-06T084500Z."""
    return _as_utc(dt).strftime("%Y-%m-%dT%H%M%SZ")


def iso(dt: datetime) -> str:
    """ISO 8601 UTC to the second: 2025-11-06T08:45:00Z."""
    return _as_utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- folders and atomic writes -----------------------------------------------------------------------


def evidence_dir(repo_root: Path, evidence_root: str, initiative: str, slug: str, stamp: str) -> Path:
    """Create and return a fresh `<evidence_root>/<initiative>/reports/<stamp>/<slug>/`.

    An existing folder is never reused: the stamp gets a suffix (`...084500Z-2`, `-3`, ...).
    """
    root_rel = PurePosixPath(evidence_root)
    if root_rel.is_absolute() or ".." in root_rel.parts:
        raise EvidenceError(f"evidence_root {evidence_root!r} must be a repo-relative path without `..`")
    for label, part in (("initiative", initiative), ("slug", slug), ("stamp", stamp)):
        if not _NAME_PART.fullmatch(part):
            raise EvidenceError(
                f"{label} {part!r} cannot be a folder name: use letters, digits, `.`, `_` and `-` "
                f"(not starting with `.`)"
            )
    reports = Path(repo_root) / root_rel / initiative / "reports"
    for n in range(1, 10_000):
        folder = reports / (stamp if n == 1 else f"{stamp}-{n}") / slug
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            folder.mkdir()  # the exclusive create is what claims the folder
        except FileExistsError:
            continue
        return folder
    raise EvidenceError(f"{reports / stamp}: too many folders with this stamp; clean up old evidence")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise EvidenceError(f"cannot write {path}: {exc.strerror}; check permissions and free space") from exc
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; evidence is meant to be read by others
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        _unlink_quietly(tmp)
        raise EvidenceError(f"cannot write {path}: {exc.strerror}; check permissions and free space") from exc
    except BaseException:
        _unlink_quietly(tmp)
        raise


def _unlink_quietly(path: str | Path) -> None:
    Path(path).unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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


def atomic_write_json(path: Path, obj: Any) -> None:
    """Sorted keys, indent 2, strict JSON (no NaN), trailing newline."""
    text = json.dumps(to_jsonable(obj), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False)
    atomic_write_text(path, text + "\n")


# --- compression and checksums -----------------------------------------------------------------------


def _files(folder: Path) -> list[Path]:
    files = []
    for p in sorted(Path(folder).rglob("*")):
        if p.is_symlink():
            raise EvidenceError(f"{p} is a symlink; evidence folders hold regular files only")
        if p.is_file():
            files.append(p)
    return files


def compress_large_files(folder: Path, cap_bytes: int) -> list[str]:
    """Gzip every file larger than `cap_bytes` to `<name>.gz` (reproducibly: mtime 0) and remove it.

    Returns the relative posix paths of the originals that were compressed; each now lives at
    that path + ".gz". Files already ending in .gz and SHA256SUMS are left alone.
    """
    folder = Path(folder)
    compressed = []
    for p in _files(folder):
        if p.name == SUMS_NAME or p.suffix == ".gz" or p.stat().st_size <= cap_bytes:
            continue
        target = p.with_name(p.name + ".gz")
        if target.exists():
            raise EvidenceError(f"cannot compress {p}: {target} already exists")
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{target.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as raw, p.open("rb") as src:
                with gzip.GzipFile(filename=p.name, mode="wb", fileobj=raw, mtime=0) as gz:
                    shutil.copyfileobj(src, gz, 1 << 20)
                raw.flush()
                os.fsync(raw.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        p.unlink()
        _fsync_dir(p.parent)
        compressed.append(p.relative_to(folder).as_posix())
    return compressed


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_sha256sums(folder: Path) -> Path:
    """Write `<folder>/SHA256SUMS` over every other file below it, as `sha256sum -c` reads it."""
    folder = Path(folder)
    lines = []
    for p in _files(folder):
        rel = p.relative_to(folder).as_posix()
        if rel == SUMS_NAME:
            continue
        if "\n" in rel or "\\" in rel:
            # sha256sum escapes such names in a way other tools misread; refuse them instead.
            raise EvidenceError(f"{p}: file names with newlines or backslashes cannot be checksummed")
        lines.append(f"{_sha256(p)}  {rel}\n")
    target = folder / SUMS_NAME
    atomic_write_text(target, "".join(lines))
    return target


def verify_sha256sums(folder: Path) -> list[str]:
    """Problems found (empty when the folder matches its SHA256SUMS exactly)."""
    folder = Path(folder)
    sums = folder / SUMS_NAME
    if not sums.is_file():
        return [f"{SUMS_NAME} is missing in {folder}"]
    problems = []
    listed: dict[str, str] = {}
    for n, line in enumerate(sums.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        match = _SUM_LINE.fullmatch(line)
        if not match:
            problems.append(f"{SUMS_NAME} line {n} is malformed: {line!r}")
            continue
        listed[match.group(2)] = match.group(1)
    for rel, digest in listed.items():
        p = folder / rel
        if not p.is_file():
            problems.append(f"missing: {rel} is listed in {SUMS_NAME} but does not exist")
        elif _sha256(p) != digest:
            problems.append(f"checksum mismatch: {rel} was changed after {SUMS_NAME} was written")
    try:
        present = {p.relative_to(folder).as_posix() for p in _files(folder)} - {SUMS_NAME}
    except EvidenceError as exc:
        return [*problems, str(exc)]
    problems.extend(f"not listed: {rel} is not in {SUMS_NAME}" for rel in sorted(present - listed.keys()))
    return problems


# --- templates ---------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _environment(search_path: str) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(search_path),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,  # the output is Markdown and prompts, not HTML
    )


def render_template(name: str, search_path: Path | None = None, **context: Any) -> str:
    """Render template `name` from harness/templates/ (or `search_path`) with `context`."""
    folder = Path(search_path) if search_path is not None else TEMPLATES_DIR
    try:
        return _environment(str(folder)).get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise EvidenceError(f"template {name!r} not found in {folder}") from exc
    except jinja2.UndefinedError as exc:
        raise EvidenceError(f"template {name!r} in {folder} needs a value that was not given: {exc}") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise EvidenceError(f"template {exc.filename or name} line {exc.lineno}: {exc.message}") from exc
