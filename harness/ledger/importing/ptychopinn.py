"""The PtychoPINN ledger format (hoidn/PtychoPINN `docs/fix_plan.md` and its archives) -> this grammar.

The source: a preamble (title, `**Last Updated:**` lines, `---` rules, notes), `##` section headings
("Active / Pending Initiatives", "Done / Archived Initiatives"), items under `### [ID] Title` (older
files: `## [ID] Title`), each a list of `- Key: value` bullets in their own spellings (`- Depends on:`,
`- **Status:**`, `- Owner/Date:`, `- Goals:` with nested bullets, `- Attempts History:` with nested dated
bullets), items separated by `---`, and stray diff markers (`-### [ID]`, `-  - *date*`) left by edits.

The conversion, line by line (every line ends up in the new ledger or in a note):
- an item heading becomes `## [ID] Title`; an id this grammar refuses (`[seed]`) or one used before gets a
  valid, unique id (SEED, ID-2), and dependencies follow the new spelling;
- its field block is written new: Status, Priority and Depends-On mapped (`values`); every source line
  of the item, those three included, stays as prose in its order after a `- Section: <name>` line; a
  prose line that would read as one of this harness's fields gets `Imported ` after its dash
  (`- Imported Status: done — ...`) so nobody mistakes it for a field;
- a `### Attempts History` heading is renamed: earlier histories carry no evidence the harness can check;
- section headings (and text under them before their first item) and text after an item's closing `---`
  move to the preamble as `###` headings and prose (that `---` with them); a `---` with nothing after
  it but the next heading is dropped;
- a diff marker before a heading or an indented bullet is removed;
- lines inside code fences are kept and never read as structure.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from harness.errors import LedgerError
from harness.ledger.importing.records import ImportedItem, ImportNote, ImportResult, LedgerFormat, NoteKind
from harness.ledger.importing.values import (
    Dependencies,
    IdIndex,
    PriorityValue,
    StatusValue,
    find_dependencies,
    map_priority,
    map_status,
)
from harness.ledger.model import ATTEMPTS_HEADING, DEFAULT_PRIORITY, ID_PATTERN, ID_RE, KNOWN_FIELDS
from harness.ledger.parse import closes_fence, field_key, opens_fence

ITEM_HEADING = re.compile(r"(#{2,3})[ \t]+\[([^\]]*)\][ \t]*(.*?)[ \t]*")
_HEADING = re.compile(r"(#{1,6})(?:[ \t]+(.*?))?[ \t]*")
DIFF_MARKER = re.compile(r"[-+](?=#{1,6}(?:[ \t]|$)|[ \t]{2,}(?:[-*+]|[0-9]+[.)])[ \t])")
_BREAK = re.compile(r" {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*")
SOURCE_FIELD = re.compile(r"- (?:\*\*)?([A-Za-z][A-Za-z0-9 /_()&.-]*?)(?:\*\*)?[ \t]*:(?:\*\*)?(?:[ \t]+(.*?))?[ \t]*")
_ID_JUNK = re.compile(r"[^A-Z0-9._-]+")
IMPORTED_ATTEMPTS = ATTEMPTS_HEADING + " (imported; not verified by the harness)"
_KEYS = {"status": "status", "priority": "priority", "depends on": "depends", "depends": "depends",
         "dependencies": "depends", "dependency": "depends"}


def source_key(key: str) -> str:
    """A source field key compared without case, `_`/`-` or repeated spaces: `Depends-On` = `depends on`."""
    return re.sub(r"[\s_-]+", " ", key.lower()).strip()


@dataclass(frozen=True)
class _Line:
    number: int
    text: str     # as written, less a diff marker
    fenced: bool  # a fence line or inside a fence: never read as structure


@dataclass
class _SourceItem:
    line: int
    source_id: str
    title: str
    section: str | None
    heading: str
    body: list[_Line] = field(default_factory=list)


@dataclass
class _Source:
    """The file split into its parts while reading; `moved`: blocks that go to the end of the preamble."""

    preamble: list[_Line] = field(default_factory=list)
    moved: list[list[_Line]] = field(default_factory=list)
    items: list[_SourceItem] = field(default_factory=list)
    notes: list[ImportNote] = field(default_factory=list)
    noted: set[int] = field(default_factory=set)
    breaks: set[int] = field(default_factory=set)  # lines of a `---` that ended an item

    def note(self, line: int, kind: NoteKind, text: str, message: str) -> None:
        self.notes.append(ImportNote(line, kind, text, message))
        self.noted.add(line)


def convert(text: str, source: str) -> ImportResult:
    """The PtychoPINN ledger `text` in this harness's grammar; LedgerError when it holds no item or a code
    fence is never closed. `source` names the file in messages."""
    src = _read(text, source)
    if not src.items:
        raise LedgerError(f"{source}: no items: expected `### [ID] Title` (or `## [ID] Title`) headings")
    new_ids = _assign_ids(src)
    aliases = {}
    for item, new_id in zip(src.items, new_ids):
        aliases.setdefault(item.source_id, new_id)
    for new_id in list(aliases.values()):
        aliases.setdefault(new_id, new_id)
    index = IdIndex.of(aliases)
    out = _preamble(src)
    rows, unknown = [], []
    for item, new_id in zip(src.items, new_ids):
        rows.append(_convert_item(src, item, new_id, index, out, unknown))
    result_text = "\n".join(out).strip("\n") + "\n"
    notes = tuple(sorted(src.notes, key=lambda n: n.line))
    return ImportResult(LedgerFormat.PTYCHOPINN, source, result_text, tuple(rows), notes,
                        tuple(dict.fromkeys(unknown)))


def _preamble(src: _Source) -> list[str]:
    """The source's preamble, then each block that belongs to no item (sections, text between items)."""
    out = [line.text for line in _trim(src.preamble)]
    for block in src.moved:
        lines = _trim(block)
        if len(lines) == 1 and lines[0].number in src.breaks:
            src.note(lines[0].number, NoteKind.MOVED, lines[0].text, "a `---` between items: dropped (item headings "
                     "separate items)")
            continue
        if lines:
            out += [""] + [line.text for line in lines]
        for line in lines:
            if line.text.strip() and line.number not in src.noted:
                src.note(line.number, NoteKind.MOVED, line.text, "outside any item: moved to the preamble" + (
                    " with the text after it" if line.number in src.breaks else ""))
    return out


def _read(text: str, source: str) -> _Source:
    pieces = text.removeprefix("\ufeff").split("\n")
    if pieces[-1] == "":
        pieces.pop()
    src = _Source()
    target, section, item = src.preamble, None, None
    fence: tuple[str, int] | None = None
    fence_line = 0
    for number, raw in enumerate(pieces, 1):
        raw = raw.removesuffix("\r")
        if fence is not None:
            target.append(_Line(number, raw, True))
            if closes_fence(raw, *fence):
                fence = None
            continue
        body = raw
        if DIFF_MARKER.match(body):
            body = body[1:]
            src.note(number, NoteKind.CHANGED, raw, "a diff marker (the leading `-`) removed")
        if (opened := opens_fence(body)) is not None:
            fence, fence_line = opened, number
            target.append(_Line(number, body, True))
            continue
        heading = _HEADING.fullmatch(body) if body[:1] == "#" else None
        if heading is not None:
            if (m := ITEM_HEADING.fullmatch(body)) is not None:
                item = _SourceItem(number, m[2].strip(), m[3], section, raw)
                src.items.append(item)
                target = item.body
                continue
            if len(heading[1]) == 2 or (len(heading[1]) == 1 and src.items):
                section, item = heading[2] or "", None
                demoted = f"### {section}"
                if src.items:
                    target = [_Line(number, demoted, False)]
                    src.moved.append(target)
                    src.note(number, NoteKind.MOVED, raw, f"a section heading: moved to the preamble as `{demoted}`;"
                             f" its items say `- Section: {section}`")
                else:
                    src.preamble.append(_Line(number, demoted, False))
                    src.note(number, NoteKind.CHANGED, raw, f"a section heading: written `{demoted}` (a level-2 "
                             f"heading must be an item here); its items say `- Section: {section}`")
                continue
        if item is not None and target is item.body and _BREAK.fullmatch(body):
            target = [_Line(number, body, False)]  # the item ends here; what follows is between items
            src.moved.append(target)
            src.breaks.add(number)
            continue
        target.append(_Line(number, body, False))
    if fence is not None:
        raise LedgerError(f"{source}:{fence_line}: this code fence is never closed, so the rest of the file "
                          f"would read as code (expected a closing {fence[0] * fence[1]} line; close it and import "
                          "again)")
    return src


def _assign_ids(src: _Source) -> list[str]:
    """A valid id per item, unique: a valid id keeps its spelling the first time; others are upper-cased
    with runs of other characters as `-`, then given `-2`, `-3`... until no item has it or will have it."""
    valid = {i.source_id for i in src.items if ID_RE.fullmatch(i.source_id)}
    taken: set[str] = set()
    first_line: dict[str, int] = {}
    new_ids = []
    for item in src.items:
        sid = item.source_id
        if ID_RE.fullmatch(sid) and sid not in taken:
            new_id = sid
        else:
            base = _ID_JUNK.sub("-", sid.upper()).strip("-._") or f"ITEM-{item.line}"
            new_id, n = base, 2
            while new_id in taken or (new_id != sid and new_id in valid):
                new_id, n = f"{base}-{n}", n + 1
            if sid in first_line:
                why = f"[{sid}] is already the id of the item at line {first_line[sid]}: this one is [{new_id}]"
            else:
                why = (f"[{sid}] is not an id this harness accepts ({ID_PATTERN}): it is [{new_id}] now, and "
                       "Depends on lines that name it follow")
            src.note(item.line, NoteKind.CHANGED, item.heading, why)
        taken.add(new_id)
        first_line.setdefault(sid, item.line)
        new_ids.append(new_id)
    return new_ids


def _source_fields(src: _Source, item: _SourceItem) -> dict[str, tuple[_Line, str, str]]:
    """The first Status, Priority and Depends-on line of the item: kind -> (line, key as written, value)."""
    found: dict[str, tuple[_Line, str, str]] = {}
    for line in item.body:
        if line.fenced or line.text[:2] != "- " or (m := SOURCE_FIELD.fullmatch(line.text)) is None:
            continue
        kind = _KEYS.get(source_key(m[1]))
        if kind is None:
            continue
        if kind in found:
            src.note(line.number, NoteKind.UNMAPPED, line.text, f"a second {m[1]} line (line "
                     f"{found[kind][0].number} was used): kept as prose")
            continue
        found[kind] = (line, m[1], m[2] or "")
    return found


def _convert_item(src: _Source, item: _SourceItem, new_id: str, index: IdIndex, out: list[str],
                  unknown: list[str]) -> ImportedItem:
    found = _source_fields(src, item)
    title = item.title.strip()
    if not title:
        title = new_id
        src.note(item.line, NoteKind.CHANGED, item.heading, "an untitled item: its id stands as its title")
    status = _status(src, item, found.get("status"))
    priority = _priority(src, found.get("priority"))
    depends = _depends(src, item, found.get("depends"), index, unknown)
    out += ["", f"## [{new_id}] {title}",
            f"- Status: {status.status}" + (f" ({status.reason})" if status.reason else "")]
    if priority is not None and priority.priority is not None:
        out.append(f"- Priority: {priority.priority}")
    if depends is not None and depends.ids:
        out.append(f"- Depends-On: {', '.join(depends.ids)}")
    body = _trim(item.body)
    if item.section is not None or body:
        out.append("")
    if item.section is not None:
        out.append(f"- Section: {item.section}")
        if body and body[0].text[:2] != "- ":
            out.append("")
    out += [_prose(src, line) for line in body]
    return ImportedItem(item.line, item.source_id, new_id, title, item.section,
                        status.words if "status" in found else None, status.status, status.reason,
                        priority.word if priority is not None else None,
                        priority.priority if priority is not None else None,
                        depends.ids if depends is not None else ())


def _status(src: _Source, item: _SourceItem, found: tuple[_Line, str, str] | None) -> StatusValue:
    if found is None:
        src.note(item.line, NoteKind.CHANGED, item.heading, "no Status line: pending, this harness's default")
        return StatusValue("pending", None, "", True)
    line, _, value = found
    status = map_status(value)
    if not status.recognised:
        src.note(line.number, NoteKind.UNMAPPED, line.text, f"Status {status.words!r} is not a status this import "
                 "knows: the item is blocked, with a reason saying so, until you set its Status")
    return status


def _priority(src: _Source, found: tuple[_Line, str, str] | None) -> PriorityValue | None:
    if found is None:
        return None
    line, _, value = found
    priority = map_priority(value)
    if priority.priority is None:
        src.note(line.number, NoteKind.UNMAPPED, line.text, f"Priority {priority.word!r} is not a priority this "
                 f"import knows (Critical, High, Medium, Low or a number): the item keeps the default "
                 f"{DEFAULT_PRIORITY}")
    return priority


def _depends(src: _Source, item: _SourceItem, found: tuple[_Line, str, str] | None, index: IdIndex,
             unknown: list[str]) -> Dependencies | None:
    if found is None:
        return None
    line, key, value = found
    depends = find_dependencies(value, index, item.source_id)
    unknown += depends.unknown
    problems = []
    if depends.unknown:
        problems.append(f"names {', '.join(depends.unknown)}, which no item here has: left out of Depends-On")
    if depends.names_itself:
        problems.append("names the item itself: left out")
    if not depends.ids and not depends.unknown and not depends.says_none:
        problems.append("names no item of this ledger" + (
            f" (struck through, so not counted: {', '.join(depends.struck)})" if depends.struck else ""))
    if problems:
        src.note(line.number, NoteKind.UNMAPPED, line.text, f"{key} " + "; ".join(problems) + "; the line stays as prose")
    return depends


def _prose(src: _Source, line: _Line) -> str:
    """A source line as prose that this grammar cannot misread: no attempts section, no field line."""
    if line.fenced:
        return line.text
    if line.text.rstrip() == ATTEMPTS_HEADING:
        src.note(line.number, NoteKind.CHANGED, line.text, f"renamed `{IMPORTED_ATTEMPTS}`: its lines are no "
                 "attempts this harness recorded")
        return IMPORTED_ATTEMPTS
    key = field_key(line.text)
    if key in KNOWN_FIELDS:
        if key not in ("Status", "Priority"):
            src.note(line.number, NoteKind.CHANGED, line.text, f"`- {key}:` is a field of this harness with its own "
                     f"meaning: kept as prose as `- Imported {key}:`")
        return "- Imported " + line.text[2:]
    return line.text


def _trim(lines: list[_Line]) -> list[_Line]:
    start, stop = 0, len(lines)
    while start < stop and not lines[start].text.strip():
        start += 1
    while stop > start and not lines[stop - 1].text.strip():
        stop -= 1
    return lines[start:stop]
