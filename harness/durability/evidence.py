"""Evidence folders: layout, compression of big files, SHA256SUMS, and rendering templates.

Layout: `<evidence_root>/<initiative>/reports/<stamp>/<slug>/`, one fresh folder per iteration. Files are
written with harness.atomic, so a harness killed mid-write leaves the old file or the new one, never half
of one; a big file is replaced by its gzip the same way.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any
from xml.sax.saxutils import escape as xml_escape

import jinja2

from harness.atomic import atomic_write_bytes, atomic_write_text, fsync_dir, replacing
from harness.errors import EvidenceError
from harness.templating import TEMPLATES_DIR, environment

SUMS_NAME = "SHA256SUMS"
_NAME_PART = re.compile(r"(?!\.)[A-Za-z0-9._-]+")  # the ledger's plain-name rule
_SUM_LINE = re.compile(r"([0-9a-f]{64}) [ *](.+)")


# --- folders ---------------------------------------------------------------------------------------


def evidence_folder_of(written: str) -> str:
    """The evidence folder of an attempt line's path: attempt lines name `<folder>/analysis/summary.md`; the
    folder is what SHA256SUMS covers. Any other path is taken as the folder itself. POSIX separators."""
    path = PurePosixPath(written)
    if path.name == "summary.md" and path.parent.name == "analysis":
        return path.parent.parent.as_posix()
    return path.as_posix()


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


# --- machine paths ---------------------------------------------------------------------------------

# Files whose text is scanned for absolute paths of the machine (logs, pytest's records, summaries).
TEXT_SUFFIXES = frozenset({".txt", ".log", ".json", ".xml", ".md", ".diff", ".patch", ".csv"})
_PATH_END = r"(?=[/\\\s\"'`:;,)\]}>]|$)"  # a prefix counts only where a path component ends


def machine_prefixes(repo_root: Path | str) -> list[tuple[str, str]]:
    """(absolute prefix, placeholder), longest first: the repository (`<repo>`), the interpreter's
    installation (`<python>`), the temporary directory, where the harness's worktrees live (`<tmp>`), and
    the home directory (`~`). Each in its given and its resolved spelling."""
    pairs: dict[str, str] = {}
    for raw, placeholder in ((repo_root, "<repo>"), (sys.prefix, "<python>"), (sys.base_prefix, "<python>"),
                             (sys.exec_prefix, "<python>"), (tempfile.gettempdir(), "<tmp>"),
                             (os.path.expanduser("~"), "~")):
        for spelling in {str(raw), os.path.realpath(str(raw))}:
            if spelling and spelling not in pairs and len(PurePosixPath(spelling).parts) > 1:
                pairs[spelling] = placeholder
    return sorted(pairs.items(), key=lambda pair: len(pair[0]), reverse=True)


def redact_machine_paths(folder: Path, prefixes: list[tuple[str, str]]) -> list[str]:
    """Replace the absolute `prefixes` in the text files of an evidence folder by their placeholders, so
    that committed evidence names no path of the machine it ran on (what ran stays readable: `<repo>/tests
    /test_x.py`; in an XML file, pytest's junit records, escaped as `&lt;repo&gt;`, so it still parses).
    Returns the files changed; run it before compress_large_files and write_sha256sums."""
    if not prefixes:
        return []
    pattern = re.compile("|".join(f"({re.escape(prefix)}){_PATH_END}" for prefix, _ in prefixes))
    placeholders = [placeholder for _, placeholder in prefixes]
    escaped = [xml_escape(placeholder) for placeholder in placeholders]  # `<tmp>` would break an XML file
    changed = []
    for p in _files(folder):
        if p.name == SUMS_NAME or p.suffix not in TEXT_SUFFIXES:
            continue
        text = p.read_bytes().decode("utf-8", errors="surrogateescape")
        chosen = escaped if p.suffix == ".xml" else placeholders
        redacted = pattern.sub(lambda m, chosen=chosen: chosen[m.lastindex - 1], text)
        if redacted != text:
            atomic_write_bytes(p, redacted.encode("utf-8", errors="surrogateescape"))
            changed.append(p.relative_to(folder).as_posix())
    return changed


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
        with (replacing(target) as raw, p.open("rb") as src,
              gzip.GzipFile(filename=p.name, mode="wb", fileobj=raw, mtime=0) as gz):
            shutil.copyfileobj(src, gz, 1 << 20)
        p.unlink()
        fsync_dir(p.parent)
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


def render_template(name: str, search_path: Path | None = None, **context: Any) -> str:
    """Render template `name` from harness/templates/ (or `search_path`) with `context`."""
    folder = Path(search_path) if search_path is not None else TEMPLATES_DIR
    try:
        return environment(str(folder)).get_template(name).render(**context)
    except jinja2.TemplateNotFound as exc:
        raise EvidenceError(f"template {name!r} not found in {folder}") from exc
    except jinja2.UndefinedError as exc:
        raise EvidenceError(f"template {name!r} in {folder} needs a value that was not given: {exc}") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise EvidenceError(f"template {exc.filename or name} line {exc.lineno}: {exc.message}") from exc
