"""`harness ledger import FILE [--format auto|ptychopinn] [--out PATH] [--check] [--force] [--json]`.

Converts another loop's ledger into this harness's grammar (harness.ledger.importing), prints what it
mapped (a row per item: status and priority from -> to, dependencies) and every line it could not map or
changed, lints the result, and writes it atomically to `--out` (default: the ledger path of harness.yaml).
An existing ledger is never replaced without `--force`, unless it is blank or the skeleton `harness init`
writes. Exit codes: 0 written (or, with `--check`, nothing to review); 1 with `--check` when lines could
not be mapped or the result has lint findings; 4 when FILE cannot be read or converted, or the ledger
would be replaced: nothing written.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from harness.commands._console import print_table
from harness.commands.init import LEDGER_SKELETON
from harness.errors import ExitCode, HarnessError
from harness.ledger import LedgerFinding, lint_text, write_ledger_atomic
from harness.ledger.importing import ImportNote, ImportResult, NoteKind, import_ledger, read_source
from harness.workspace import open_workspace

_HEADINGS = {NoteKind.UNMAPPED: "could not map, kept as prose", NoteKind.CHANGED: "changed",
             NoteKind.MOVED: "moved to the preamble or dropped"}


def ledger_import(*, repo: Path, file: Path, fmt: str = "auto", out: Path | None = None, check: bool = False,
                  force: bool = False, as_json: bool = False) -> int:
    result = import_ledger(read_source(file), fmt=fmt, source=str(file))
    target = None
    if not check:
        target = out if out is not None else open_workspace(repo).ledger_path
        _refuse_to_replace(target, force, in_place=target.resolve() == Path(file).resolve())
    findings = lint_text(result.text, str(target or "the imported ledger"))
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_ledger_atomic(target, result.text)
    if as_json:
        print(json.dumps({**result.to_dict(), "detected": fmt == "auto", "written": str(target) if target else None,
                          "lint": [dataclasses.asdict(f) for f in findings]}, indent=2, ensure_ascii=False))
    else:
        _print_report(result, findings, detected=fmt == "auto", target=target)
    if check and (result.unmapped or findings):
        return ExitCode.REFUSED
    return ExitCode.OK


def _refuse_to_replace(target: Path, force: bool, *, in_place: bool) -> None:
    """An existing ledger is someone's work: replaced only with --force (blank or init's skeleton: freely)."""
    if target.is_dir():
        raise HarnessError(f"{target} is a folder; give --out the path of the ledger file to write")
    if force or not target.exists():
        return
    try:
        text = target.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{target} exists and cannot be read ({exc}); pass --force to replace it") from None
    if in_place:
        raise HarnessError(f"{target} is the file being imported: pass --force to convert it in place (its old text "
                           "stays in git), or --out to write the import elsewhere")
    if text.strip() and text != LEDGER_SKELETON:
        raise HarnessError(f"{target} already holds a ledger ({len(text.splitlines())} line(s)); pass --force to "
                           "replace it, or --out to write the import elsewhere")


def _print_report(result: ImportResult, findings: list[LedgerFinding], *, detected: bool,
                  target: Path | None) -> None:
    print(f"import: {result.source} read as the {result.format} format ({'detected' if detected else 'as asked'})")
    cells = [(str(i.line), i.id if i.id == i.source_id else f"{i.id} (was [{i.source_id}])", _cut(i.title, 40),
              f"{_cut(i.status_from, 30) if i.status_from else '-'} -> {i.status}",
              f"{_cut(i.priority_from, 12) if i.priority_from else '-'} -> {_priority(i.priority)}",
              ", ".join(i.depends_on) or "-") for i in result.items]
    print_table(("line", "id", "title", "status", "priority", "depends-on"), cells)
    for kind in NoteKind:
        notes = [n for n in result.notes if n.kind is kind]
        if notes:
            print(f"{_HEADINGS[kind]} ({len(notes)} line(s)):")
            for text in _grouped(notes):
                print(text)
    if result.unknown_ids:
        print(f"ids named by dependencies that no item has (left out of Depends-On): {', '.join(result.unknown_ids)}")
    for finding in findings:
        print(f"lint: {finding.render(str(target or 'the imported ledger'))}")
    print(f"lint of the result: {len(findings)} finding(s)" if findings else "lint of the result: no findings")
    if target is None:
        print(f"--check: nothing written ({len(result.items)} item(s) would be)")
    else:
        print(f"wrote {target}: {len(result.items)} item(s); next: `harness ledger lint`, `harness next`")


def _grouped(notes: list[ImportNote]) -> list[str]:
    """One line per note; notes alike in text and message (the `---` between items) share one line."""
    groups: dict[tuple[str, str], list[int]] = {}
    for note in notes:
        groups.setdefault((note.message, note.text), []).append(note.line)
    return [f"  line {lines[0]}: {message}: {text}" if len(lines) == 1 else
            f"  lines {', '.join(map(str, lines))}: {message}: {text}" for (message, text), lines in groups.items()]


def _priority(priority: int | None) -> str:
    return "default" if priority is None else str(priority)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"
