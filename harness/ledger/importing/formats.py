"""Which format a ledger file is in, and the one entry point: `import_ledger(text, fmt=...)`.

Detection looks at the lines outside code fences. No `## [ID]`/`### [ID]` item heading: unknown. A file
this harness's grammar reads is HARNESS (nothing to convert) unless it shows PtychoPINN's marks (item
headings at level 3, diff-marked headings, its field spellings: `- Depends on:`, `- Owner/Date:`,
`- Working Plan:`, `- **Status:**`, `- Priority: High`, `- Status: done — prose`); it stays HARNESS even
then when it holds attempt lines, which a conversion would turn into prose. A file with those marks is
PTYCHOPINN; one with neither is unknown.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.errors import LedgerError
from harness.ledger.importing import ptychopinn
from harness.ledger.importing.records import IMPORT_FORMATS, ImportResult, LedgerFormat
from harness.ledger.model import KNOWN_FIELDS, STATUSES
from harness.ledger.parse import closes_fence, opens_fence, parse_ledger

CONVERTERS: dict[LedgerFormat, Callable[[str, str], ImportResult]] = {LedgerFormat.PTYCHOPINN: ptychopinn.convert}
_PTYCHOPINN_KEYS = frozenset({"depends on", "owner/date", "working plan", "reports hub", "attempts history",
                              "return condition", "return conditions", "goals", "exit criteria", "test strategy",
                              "spec owner", "do now"})


@dataclass(frozen=True)
class Detection:
    format: LedgerFormat | None  # None: not a format the import knows
    reason: str


def detect_format(text: str) -> Detection:
    items = level3 = marked = 0
    signals: list[str] = []
    fence: tuple[str, int] | None = None
    for raw in text.removeprefix("\ufeff").splitlines():
        if fence is not None:
            fence = None if closes_fence(raw, *fence) else fence
            continue
        if (fence := opens_fence(raw)) is not None:
            continue
        body = raw[1:] if ptychopinn.DIFF_MARKER.match(raw) else raw
        if (m := ptychopinn.ITEM_HEADING.fullmatch(body)) is not None:
            items += 1
            level3 += len(m[1]) == 3
            marked += body is not raw
        elif body[:2] == "- " and (f := ptychopinn.SOURCE_FIELD.fullmatch(body)) is not None:
            key, value = ptychopinn.source_key(f[1]), (f[2] or "").strip()
            if body.startswith("- **") or (f[1] not in KNOWN_FIELDS and key in _PTYCHOPINN_KEYS) or (
                    key == "priority" and not value.lstrip("+-").isdigit()) or (
                    key == "status" and value.split(" (")[0] not in STATUSES):
                signals.append(f"`- {f[1]}:`")
    if not items:
        return Detection(None, "it has no `## [ID] Title` or `### [ID] Title` item headings")
    try:
        ledger, problem = parse_ledger(text), None
    except LedgerError as exc:
        ledger, problem = None, str(exc)
    # A file this grammar reads is converted only when it shows the other format's marks, and never when it
    # holds attempt lines: those would become prose.
    if ledger is not None and (not (level3 or marked or signals) or any(i.attempts for i in ledger.items)):
        return Detection(LedgerFormat.HARNESS, f"{len(ledger.items)} item(s) that parse as they stand")
    if level3 or marked or signals:
        shown = ", ".join(list(dict.fromkeys(signals))[:3])
        return Detection(LedgerFormat.PTYCHOPINN,
                         f"{items} item heading(s)" + (f", fields such as {shown}" if shown else ""))
    return Detection(None, f"its {items} item heading(s) carry none of the PtychoPINN format's marks, and this "
                     f"harness's grammar refuses it ({problem})")


def import_ledger(text: str, *, fmt: str = "auto", source: str = "ledger") -> ImportResult:
    """Convert `text` (the file named `source`, for messages) from `fmt` ("auto": detect it) to this
    harness's grammar. LedgerError when the format is unknown, already this harness's, or not importable."""
    if fmt == "auto":
        detection = detect_format(text)
        if detection.format is None:
            raise LedgerError(f"{source}: cannot tell its format: {detection.reason}; pass --format ptychopinn to "
                              "read it as a PtychoPINN fix_plan.md (`### [ID] Title` items with `- Status:` bullets)")
        if detection.format is LedgerFormat.HARNESS:
            raise LedgerError(f"{source}: is already in this harness's ledger format ({detection.reason}); nothing to "
                              "convert: copy it to the ledger path (harness.yaml `ledger:`) or point `ledger:` at it")
        chosen = detection.format
    else:
        try:
            chosen = LedgerFormat(fmt)
        except ValueError:
            chosen = None
        if chosen not in IMPORT_FORMATS:
            raise LedgerError(f"cannot import the format {fmt!r}; known: auto, "
                              + ", ".join(str(f) for f in IMPORT_FORMATS))
    return CONVERTERS[chosen](text, source)


def read_source(path: Path) -> str:
    """The text of the file to import; LedgerError naming it when it is missing, unreadable or not UTF-8."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise LedgerError(f"{path}: no such file; give the path of the ledger to import") from None
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise LedgerError(f"{path}: is not UTF-8 (line {line}, byte {exc.start}); save it as UTF-8 and import "
                          "it again") from None
