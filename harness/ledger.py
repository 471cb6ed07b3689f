"""docs/fix_plan.md <-> Ledger / Item / Attempt: parse, lint, and minimal edits that keep every other byte.

The grammar is normative in docs/specs/ledger.md. Parsing is one linear pass over the lines; the parsed
records keep the line numbers that the two edits (`with_status`, `with_attempt`) need, so an edit touches
only its own line(s) and the caller writes the result with `write_ledger_atomic`.
"""
from __future__ import annotations

import difflib
import gc
import os
import re
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import NamedTuple

from harness.atomic import replacing
from harness.errors import LedgerError

DEFAULT_LEDGER_PATH = "docs/fix_plan.md"
STATUSES = ("pending", "in_progress", "done", "blocked")
MODES = ("tdd", "chore", "docs")
KNOWN_FIELDS = ("Status", "Priority", "Depends-On", "Initiative", "Slug", "Spec", "Mode",
                "RED", "Regression", "Exit-Criteria")
REPEATABLE_FIELDS = frozenset({"RED", "Regression", "Exit-Criteria"})
DEFAULT_STATUS = "pending"
DEFAULT_PRIORITY = 100
DEFAULT_MODE = "tdd"
ATTEMPTS_HEADING = "### Attempts History"
SEPARATOR = " \u00b7 "
SLUG_MAX = 60

ID_PATTERN = "[A-Z0-9][A-Z0-9._-]*"
PLAIN_NAME_PATTERN = "[A-Za-z0-9._-]+ (not starting with a dot)"
ATTEMPT_FORMAT = ("- <YYYY-MM-DDTHH:MM:SSZ> \u00b7 #<n> \u00b7 "
                  "<GREEN | FAILED at <stage> | ABORTED at <stage>> \u00b7 "
                  "<base commit hex> \u00b7 <evidence path>")

_ID = re.compile(ID_PATTERN)
_PLAIN_NAME = re.compile(r"(?!\.)[A-Za-z0-9._-]+")
_ITEM_HEADING = re.compile(r"##[ \t]+\[([^\]]*)\][ \t]*(.*?)[ \t]*")
_HEADING_LEVEL = re.compile(r"(#{1,6})(?:[ \t]|$)")
_FIELD = re.compile(r"- ([A-Za-z][A-Za-z0-9_-]*):(?:[ \t]+(.*?))?[ \t]*")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_STATUS_VALUE = re.compile(r"([^\s(]+)(?:[ \t]*\((.*)\))?")
_PRIORITY = re.compile(r"[+-]?[0-9]+")
_TIMESTAMP = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
                        r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?Z")
_NUMBER = re.compile(r"#[1-9][0-9]*")
_OUTCOME = re.compile(r"GREEN|(?:FAILED|ABORTED) at ([A-Za-z][A-Za-z0-9_-]*)")
_COMMIT = re.compile(r"[0-9a-fA-F]{7,64}")
_EVIDENCE = re.compile(r"[^\s\u00b7](?:[^\u00b7\r\n]*[^\s\u00b7])?")
_ATTEMPT = re.compile(
    "- (" + _TIMESTAMP.pattern + ") \u00b7 #([1-9][0-9]*) \u00b7 "
    "(GREEN|(?:FAILED|ABORTED) at ([A-Za-z][A-Za-z0-9_-]*)) \u00b7 "
    "(" + _COMMIT.pattern + ") \u00b7 (" + _EVIDENCE.pattern + ")[ \t]*")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


class Attempt(NamedTuple):
    """One `### Attempts History` line; `outcome` is as written: `GREEN`, `FAILED at red`, `ABORTED at agent`.

    A NamedTuple rather than a dataclass because a large ledger holds 100k of them and this builds 4x faster.
    """

    timestamp: str
    number: int
    outcome: str
    stage: str | None
    base_commit: str
    evidence: str
    line: int

    @property
    def succeeded(self) -> bool:
        return self.outcome == "GREEN"

    @property
    def failed(self) -> bool:
        """ABORTED counts as failed: the attempt did not reach GREEN."""
        return self.outcome != "GREEN"


@dataclass(frozen=True, slots=True)
class PathProblem:
    """An Initiative or Slug value that cannot be used as a path component."""

    field: str
    value: str
    line: int
    message: str


@dataclass(frozen=True, slots=True)
class Item:
    """One `## [ID] Title` section, with defaults applied (docs/specs/ledger.md).

    Line numbers are 1-based. `line` is the heading, `end_line` the item's last line (trailing blank lines
    included), `content_end_line` its last non-blank line. `fields_line` is the first field line,
    `attempts_line` the last `### Attempts History` heading and `attempt_append_line` the line a new attempt
    goes after. `stray_field_lines` are known-key field lines found in the prose (ignored, linted).
    `fields` holds every field as written (unknown keys included); `prose` the other lines, LF-joined,
    without leading and trailing blank lines.
    """

    id: str
    title: str
    line: int
    end_line: int
    status: str
    status_reason: str | None
    status_known: bool
    status_line: int | None
    priority: int
    depends_on: tuple[str, ...]
    initiative: str
    slug: str
    spec: str | None
    mode: str
    red: tuple[str, ...]
    regression: tuple[str, ...]
    exit_criteria: tuple[str, ...]
    fields: Mapping[str, tuple[str, ...]] = field(hash=False)
    field_lines: Mapping[str, tuple[int, ...]] = field(hash=False)
    prose: str
    attempts: tuple[Attempt, ...]
    attempts_line: int | None
    fields_line: int | None
    content_end_line: int
    attempt_append_line: int | None
    stray_field_lines: tuple[int, ...]

    @property
    def next_attempt_number(self) -> int:
        return max((a.number for a in self.attempts), default=0) + 1

    def path_problems(self) -> tuple[PathProblem, ...]:
        """Initiative/Slug values that are not plain names (defaults always are)."""
        problems = []
        for name, value in (("Initiative", self.initiative), ("Slug", self.slug)):
            if not _PLAIN_NAME.fullmatch(value):
                line = self.field_lines.get(name, (self.line,))[0]
                problems.append(PathProblem(name, value, line, (
                    f"{name} {value!r} of item {self.id} is not a plain name: it becomes a path component, "
                    f"so it must match {PLAIN_NAME_PATTERN}")))
        return tuple(problems)


def ensure_plain_names(item: Item, path: str | None = None) -> None:
    """Raise LedgerError naming field, value, line and rule when Initiative or Slug is not a plain name."""
    problems = item.path_problems()
    if problems:
        where = f"{path}:" if path else "line "
        raise LedgerError("; ".join(f"{where}{p.line}: {p.message}" for p in problems))


@dataclass(frozen=True)
class Ledger:
    """A parsed ledger: `text` exactly as read (edits start from it) and its items in file order."""

    path: str
    text: str = field(repr=False)
    items: tuple[Item, ...] = field(repr=False)
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {item.id: i for i, item in enumerate(self.items)})

    def __repr__(self) -> str:
        return f"Ledger(path={self.path!r}, items={len(self.items)})"

    def ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    def get(self, item_id: str) -> Item:
        index = self._index.get(item_id)
        if index is not None:
            return self.items[index]
        ids = list(self._index)
        close = [i for i in ids if i.upper() == item_id.upper()] or difflib.get_close_matches(
            item_id.upper(), ids, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else (
            "; the ledger holds no items" if not ids else f"; `harness ledger` lists all {len(ids)} ids")
        raise LedgerError(f"{self.path}: no item [{item_id}]{hint}")


# ---------------------------------------------------------------------------------------------- parsing

class _Builder:
    """Mutable state of the item being read; `build` freezes it."""

    __slots__ = ("append_line", "attempts", "attempts_line", "field_lines", "fields", "fields_line", "id",
                 "line", "phase", "prose", "stray", "title")

    def __init__(self, item_id: str, title: str, line: int) -> None:
        self.id, self.title, self.line = item_id, title, line
        self.phase = 0  # 0: before the field block, 1: in it, 2: after it
        self.fields: dict[str, list[str]] = {}
        self.field_lines: dict[str, list[int]] = {}
        self.fields_line: int | None = None
        self.prose: list[str] = []
        self.attempts: list[Attempt] = []
        self.attempts_line: int | None = None
        self.append_line: int | None = None
        self.stray: list[int] = []


_Fail = Callable[[int, str, str, str, "str | None"], None]


def _build(b: _Builder, end_line: int, content_end: int, fail: _Fail) -> Item:
    fields = {key: tuple(values) for key, values in b.fields.items()}
    lines = {key: tuple(numbers) for key, numbers in b.field_lines.items()}
    get = fields.get
    # Known keys other than RED/Regression/Exit-Criteria hold one value: `_add_field` refuses a second.
    status_raw, status_reason = get("Status", (None,))[0], None
    if status_raw is None:
        status = DEFAULT_STATUS
    elif m := _STATUS_VALUE.fullmatch(status_raw):
        status, status_reason = m[1], (m[2] or "").strip() or None
    else:
        status = status_raw  # e.g. empty or "in progress": kept as written, reported by lint
    priority = DEFAULT_PRIORITY
    priority_raw = get("Priority", (None,))[0]
    if priority_raw is not None:
        if _PRIORITY.fullmatch(priority_raw):
            priority = int(priority_raw)
        else:
            fail(lines["Priority"][0], "parse-error",
                 f"Priority {priority_raw!r} of item {b.id} is not an integer", "an integer such as 1 or -5; "
                 f"lower runs first, default {DEFAULT_PRIORITY}", b.id)
    depends_raw = get("Depends-On", ("",))[0]
    depends = tuple(d for d in (p.strip() for p in depends_raw.split(",")) if d) if depends_raw else ()
    prose = b.prose
    start, stop = 0, len(prose)
    while start < stop and not prose[start].strip():
        start += 1
    while stop > start and not prose[stop - 1].strip():
        stop -= 1
    red, regression, exit_criteria = get("RED", ()), get("Regression", ()), get("Exit-Criteria", ())
    return Item(
        id=b.id, title=b.title, line=b.line, end_line=end_line,
        status=status, status_reason=status_reason, status_known=status in STATUSES,
        status_line=lines["Status"][0] if "Status" in lines else None,
        priority=priority, depends_on=depends,
        initiative=get("Initiative", ("",))[0] or b.id, slug=get("Slug", ("",))[0] or slugify(b.title, b.id),
        spec=get("Spec", ("",))[0] or None, mode=get("Mode", ("",))[0] or DEFAULT_MODE,
        red=tuple(v for v in red if v) if red else (),
        regression=tuple(v for v in regression if v) if regression else (),
        exit_criteria=tuple(v for v in exit_criteria if v) if exit_criteria else (),
        fields=MappingProxyType(fields), field_lines=MappingProxyType(lines),
        prose="\n".join(prose[start:stop]) if start < stop else "", attempts=tuple(b.attempts),
        attempts_line=b.attempts_line, fields_line=b.fields_line, content_end_line=content_end,
        attempt_append_line=b.append_line, stray_field_lines=tuple(b.stray),
    )


def slugify(title: str, item_id: str) -> str:
    """Title -> plain name: lowercase, runs of other characters -> `_`, trimmed, at most 60 characters."""
    slug = _SLUG_JUNK.sub("_", title.lower()).strip("_")[:SLUG_MAX].rstrip("_")
    return slug or item_id.lower()


def _closes_fence(body: str, char: str, length: int) -> bool:
    stripped = body.lstrip(" ")
    if len(body) - len(stripped) > 3:
        return False
    stripped = stripped.rstrip(" \t")
    return len(stripped) >= length and stripped == char * len(stripped)


def _parse(text: str, fail: _Fail) -> list[Item]:
    """One pass over the lines. `fail` either raises or records; after it returns the pass recovers."""
    # A big ledger allocates ~10 acyclic objects per line; generational GC passes over them cost ~25%.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _parse_lines(text, fail)
    finally:
        if gc_was_enabled:
            gc.enable()


def _parse_lines(text: str, fail: _Fail) -> list[Item]:
    pieces = text.split("\n")
    count = len(pieces) - 1 if pieces[-1] == "" else len(pieces)
    has_cr = "\r" in text
    items: list[Item] = []
    first_line: dict[str, int] = {}
    cur: _Builder | None = None
    fence_char, fence_len, fence_line = "", 0, 0
    field_re, attempt_re = _FIELD.fullmatch, _ATTEMPT.fullmatch
    new_attempt = tuple.__new__  # what Attempt(...) calls, minus a Python-level frame per attempt

    def finish(end: int, append_line: int | None) -> None:
        content_end = end
        while content_end > cur.line and not pieces[content_end - 1].strip():
            content_end -= 1
        cur.append_line = append_line
        items.append(_build(cur, end, content_end, fail))

    if pieces[0][:1] == "\ufeff":
        pieces[0] = pieces[0][1:]
    # Locals, not builder attributes, on the hot path: most lines of a big ledger are attempt lines.
    in_attempts, append_line, add_attempt = False, None, None
    for lineno, body in enumerate(pieces[:count], 1):
        if has_cr and body[-1:] == "\r":
            body = body[:-1]
        if fence_char:
            if _closes_fence(body, fence_char, fence_len):
                fence_char = ""
            if cur is not None and not in_attempts:
                cur.prose.append(body)
            continue
        if in_attempts and body[:2] == "- ":
            m = attempt_re(body)
            if m is not None:
                stamp, number, outcome, stage, commit, evidence = m.groups()
                # the pattern bounds every part of the time but the day of the month; fromisoformat settles it
                if stamp[8:10] <= "28" or _valid_timestamp(stamp):
                    add_attempt(new_attempt(Attempt, (stamp, int(number), outcome, stage, commit, evidence,
                                                      lineno)))
                    append_line = lineno
                    continue
            _attempt_error(body, lineno, cur.id, fail)
            continue
        first = body[:1]
        if first == "#":
            level_match = _HEADING_LEVEL.match(body)
            level = len(level_match[1]) if level_match else 0
            if level == 2:
                if cur is not None:
                    finish(lineno - 1, append_line)
                cur, in_attempts, append_line = None, False, None
                m = _ITEM_HEADING.fullmatch(body)
                if m is None or not _ID.fullmatch(m[1]) or not m[2]:
                    _heading_error(body, m, lineno, fail)
                    continue
                item_id = m[1]
                if item_id in first_line:
                    fail(lineno, "duplicate-id",
                         f"duplicate id [{item_id}] at lines {first_line[item_id]} and {lineno}",
                         "unique ids; rename one of them", item_id)
                else:
                    first_line[item_id] = lineno
                cur = _Builder(item_id, m[2], lineno)
                add_attempt = cur.attempts.append
                continue
            if cur is None:
                continue
            cur.phase = 2
            if level:
                if body.rstrip() == ATTEMPTS_HEADING:
                    in_attempts = True
                    cur.attempts_line = append_line = lineno
                    continue
                if level <= 3:
                    in_attempts = False
            if not in_attempts:
                cur.prose.append(body)
            continue
        if (first == "`" or first == "~" or first == " ") and (fm := _FENCE_OPEN.fullmatch(body)) and not (
                fm[1][0] == "`" and "`" in fm[2]):
            fence_char, fence_len, fence_line = fm[1][0], len(fm[1]), lineno
            if cur is not None:
                cur.phase = 2
                if not in_attempts:
                    cur.prose.append(body)
            continue
        if cur is None:
            continue
        if cur.phase < 2:
            if first == "-" and (m := field_re(body)):
                _add_field(cur, m[1], m[2] or "", lineno, fail)
                cur.phase = 1
                continue
            if cur.phase == 0 and not body.strip():
                continue
            cur.phase = 2
        if in_attempts:
            if append_line == lineno - 1 and (first == " " or first == "\t") and body.strip():
                append_line = lineno  # an indented continuation belongs to the attempt above it
            continue
        if first == "-" and (m := field_re(body)) and m[1] in KNOWN_FIELDS:
            cur.stray.append(lineno)
        cur.prose.append(body)
    if fence_char:
        fail(fence_line, "parse-error", "this code fence is never closed, so everything after it would be "
             "hidden from the harness", f"a closing {fence_char * fence_len} line", cur.id if cur else None)
    if cur is not None:
        finish(count, append_line)
    return items


def _add_field(cur: _Builder, key: str, value: str, lineno: int, fail: _Fail) -> None:
    if key in cur.fields and key not in REPEATABLE_FIELDS and key in KNOWN_FIELDS:
        first = cur.field_lines[key][0]
        fail(lineno, "parse-error", f"{key} given twice in item {cur.id} (first at line {first})",
             "one line per field; only " + ", ".join(sorted(REPEATABLE_FIELDS)) + " may repeat", cur.id)
        return
    cur.fields.setdefault(key, []).append(value)
    cur.field_lines.setdefault(key, []).append(lineno)
    if cur.fields_line is None:
        cur.fields_line = lineno


def _heading_error(body: str, m: re.Match[str] | None, lineno: int, fail: _Fail) -> None:
    if m is not None and not _ID.fullmatch(m[1]):
        message = f"item id [{m[1]}] is not valid"
        expected = f"an id matching {ID_PATTERN}: capitals, digits, '.', '_', '-'"
    elif m is not None:
        message = f"item [{m[1]}] has no title"
        expected = "`## [ID] Title`"
    else:
        message = f"level-2 heading {body.strip()!r} is not an item heading"
        expected = "`## [ID] Title`; use `###` or deeper for other headings"
    fail(lineno, "parse-error", message, expected, None)


def _valid_timestamp(value: str) -> bool:
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def _attempt_error(body: str, lineno: int, item_id: str, fail: _Fail) -> None:
    parts = body[2:].split(SEPARATOR)
    detail = ""
    if len(parts) != 5:
        detail = f"; found {len(parts)} part(s) separated by ' \u00b7 ', need 5"
    else:
        checks = ((_TIMESTAMP, parts[0], "time (UTC, ending in Z)"), (_NUMBER, parts[1], "attempt number"),
                  (_OUTCOME, parts[2], "outcome"), (_COMMIT, parts[3], "base commit"),
                  (_EVIDENCE, parts[4].rstrip(" \t"), "evidence path"))
        for regex, value, what in checks:
            if not regex.fullmatch(value) or (regex is _TIMESTAMP and not _valid_timestamp(value)):
                detail = f"; the {what} {value!r} is not valid"
                break
    fail(lineno, "parse-error", f"attempt line of item {item_id} does not parse{detail}", ATTEMPT_FORMAT,
         item_id)


def parse_ledger(text: str, path: str | os.PathLike[str] = DEFAULT_LEDGER_PATH) -> Ledger:
    """Parse the whole ledger; the first grammar error raises `path:line: message (expected ...)`."""
    where = str(path)

    def fail(line: int, code: str, message: str, expected: str, item_id: str | None) -> None:
        raise LedgerError(f"{where}:{line}: {message} (expected {expected})")

    return Ledger(where, text, tuple(_parse(text, fail)))


def load_ledger(path: Path) -> Ledger:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise LedgerError(f"{path}: no ledger here; run `harness init` to create one, or set `ledger:` in "
                          "harness.yaml to where yours is") from None
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read the ledger ({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise LedgerError(f"{path}:{line}: the ledger is not UTF-8 (byte {exc.start}); save it as UTF-8"
                          ) from None
    return parse_ledger(text, path)


# ---------------------------------------------------------------------------------------------- editing

def _crlf(text: str) -> bool:
    i = text.find("\n")
    return i > 0 and text[i - 1] == "\r"


def _insert(pieces: list[str], after_line: int, new_lines: list[str], crlf: bool) -> None:
    """Insert lines after 1-based `after_line` of `text.split("\\n")`, keeping the line-ending style and a
    missing final newline (the last piece is then a line without its end)."""
    eol = "\r" if crlf else ""
    if after_line >= len(pieces):  # after the last line of a file without a final newline
        pieces[-1] += eol
        pieces.extend([s + eol for s in new_lines[:-1]] + [new_lines[-1]])
    else:
        pieces[after_line:after_line] = [s + eol for s in new_lines]


def _checked(pieces: list[str], item: Item, added: int, path: str, check: Callable[[Item], bool],
             what: str) -> str:
    """Re-read the edited item alone (an item never shares a code fence with another) before returning.

    Blank lines stand in for the lines above it, so that an error names the line in the whole file."""
    region = "\n" * (item.line - 1) + "\n".join(pieces[item.line - 1:item.end_line + added])
    try:
        edited = parse_ledger(region, path).items
    except LedgerError as exc:
        raise LedgerError(f"{path}: {what} for [{item.id}] would leave an unparsable ledger ({exc}); "
                          "nothing was changed") from None
    if len(edited) != 1 or edited[0].id != item.id or not check(edited[0]):
        raise LedgerError(f"{path}: {what} for [{item.id}] did not read back as written; nothing was changed")
    return "\n".join(pieces)


def _status_text(item_id: str, status: str, reason: str | None) -> str:
    """The Status line for `status` (and a blocked reason), validated."""
    if status not in STATUSES:
        raise LedgerError(f"cannot set status {status!r} on [{item_id}] "
                          f"(expected one of {', '.join(STATUSES)})")
    if reason is not None:
        if status != "blocked":
            raise LedgerError(f"a status reason is only kept with `blocked`, not {status!r} "
                              f"(item [{item_id}])")
        if not reason.strip() or "\n" in reason or "\r" in reason or reason != reason.strip():
            raise LedgerError(f"status reason for [{item_id}] must be one non-empty line without surrounding "
                              f"spaces, got {reason!r}")
    return f"- Status: {status}" + (f" ({reason})" if reason else "")


def with_status(text: str, item_id: str, status: str, reason: str | None = None, *,
                path: str = DEFAULT_LEDGER_PATH) -> str:
    """Return `text` with only the item's Status line replaced (or inserted as its first field)."""
    if reason is not None:
        reason = reason.strip()
    new_line = _status_text(item_id, status, reason)
    item = parse_ledger(text, path).get(item_id)
    pieces = text.split("\n")
    if item.status_line is not None:
        old = pieces[item.status_line - 1]
        pieces[item.status_line - 1] = new_line + ("\r" if old.endswith("\r") else "")
        added = 0
    else:
        _insert(pieces, item.fields_line - 1 if item.fields_line else item.line, [new_line], _crlf(text))
        added = 1
    return _checked(pieces, item, added, path, lambda it: it.status == status and it.status_reason == reason,
                    "setting the status")


def _utc_stamp(timestamp: str | datetime) -> str:
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise LedgerError(f"attempt time {timestamp!r} has no time zone; pass an aware UTC datetime")
        return timestamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if not (_TIMESTAMP.fullmatch(timestamp) and _valid_timestamp(timestamp)):
        raise LedgerError(f"attempt time {timestamp!r} is not valid (expected UTC like 2025-11-06T08:45:00Z)")
    return timestamp


def format_attempt(*, timestamp: str | datetime, number: int, outcome: str, base_commit: str,
                   evidence: str) -> str:
    """One attempt line (no line ending); each part is checked so the line always parses back."""
    stamp = _utc_stamp(timestamp)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise LedgerError(f"attempt number {number!r} is not valid (expected an integer >= 1)")
    if not _OUTCOME.fullmatch(outcome):
        raise LedgerError(f"attempt outcome {outcome!r} is not valid (expected GREEN, FAILED at <stage> or "
                          "ABORTED at <stage>, stage a word such as red)")
    if not _COMMIT.fullmatch(base_commit):
        raise LedgerError(f"base commit {base_commit!r} is not valid (expected 7 to 64 hex digits)")
    if not _EVIDENCE.fullmatch(evidence):
        raise LedgerError(f"evidence path {evidence!r} is not valid (expected one line, no '\u00b7', no "
                          "surrounding spaces)")
    return f"- {stamp}{SEPARATOR}#{number}{SEPARATOR}{outcome}{SEPARATOR}{base_commit}{SEPARATOR}{evidence}"


def with_attempt(text: str, item_id: str, *, timestamp: str | datetime, number: int, outcome: str,
                 base_commit: str, evidence: str, path: str = DEFAULT_LEDGER_PATH) -> str:
    """Return `text` with one attempt line added to the item's `### Attempts History` (made if absent)."""
    line = format_attempt(timestamp=timestamp, number=number, outcome=outcome, base_commit=base_commit,
                          evidence=evidence)
    item = parse_ledger(text, path).get(item_id)
    if number < item.next_attempt_number:
        raise LedgerError(f"attempt #{number} for [{item_id}] does not follow its last attempt "
                          f"#{item.next_attempt_number - 1} (expected #{item.next_attempt_number} or higher)")
    pieces = text.split("\n")
    if item.attempt_append_line is not None:
        new_lines = [line]
        _insert(pieces, item.attempt_append_line, new_lines, _crlf(text))
    else:
        new_lines = ["", ATTEMPTS_HEADING, line]
        _insert(pieces, item.content_end_line, new_lines, _crlf(text))
    count = len(item.attempts) + 1
    return _checked(pieces, item, len(new_lines), path,
                    lambda it: len(it.attempts) == count and it.attempts[-1].number == number
                    and it.attempts[-1].outcome == outcome, "appending an attempt")


def record_attempt(ledger: Ledger, item_id: str, *, timestamp: str | datetime, number: int, outcome: str,
                   base_commit: str, evidence: str, status: str | None = None,
                   reason: str | None = None) -> str:
    """Both edits of one attempt, an appended attempt line and optionally a new Status, on one parse.

    A parse of a large ledger costs a noticeable fraction of a second, so this reuses `ledger`'s parse and
    re-reads only the edited item to check the result, as the single edits do.
    """
    line = format_attempt(timestamp=timestamp, number=number, outcome=outcome, base_commit=base_commit,
                          evidence=evidence)
    status_text = _status_text(item_id, status, reason) if status is not None else None
    item = ledger.get(item_id)
    if number < item.next_attempt_number:
        raise LedgerError(f"attempt #{number} for [{item_id}] does not follow its last attempt "
                          f"#{item.next_attempt_number - 1} (expected #{item.next_attempt_number} or higher)")
    pieces = ledger.text.split("\n")
    crlf = _crlf(ledger.text)
    # The attempt goes below the Status line, so appending it first leaves the Status line numbers valid.
    if item.attempt_append_line is not None:
        new_lines = [line]
        _insert(pieces, item.attempt_append_line, new_lines, crlf)
    else:
        new_lines = ["", ATTEMPTS_HEADING, line]
        _insert(pieces, item.content_end_line, new_lines, crlf)
    added = len(new_lines)
    if status_text is not None:
        if item.status_line is not None:
            old = pieces[item.status_line - 1]
            pieces[item.status_line - 1] = status_text + ("\r" if old.endswith("\r") else "")
        else:
            _insert(pieces, item.fields_line - 1 if item.fields_line else item.line, [status_text], crlf)
            added += 1
    count = len(item.attempts) + 1
    return _checked(pieces, item, added, ledger.path,
                    lambda it: len(it.attempts) == count and it.attempts[-1].number == number
                    and it.attempts[-1].outcome == outcome
                    and (status is None or (it.status == status and it.status_reason == reason)),
                    "recording an attempt")


def write_ledger_atomic(path: Path, text: str, *, check: bool = True) -> Ledger | None:
    """Replace `path` atomically (temp file in its folder, fsync, rename) with `text`.

    With `check` (the default) the whole text must parse first; callers whose edits were already checked
    item by item (`record_attempt`) may skip the full re-parse.
    """
    path = Path(path)
    ledger = parse_ledger(text, path) if check else None
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    try:
        with replacing(path, mode=mode) as handle:
            handle.write(text.encode("utf-8"))
    except OSError as exc:
        raise LedgerError(f"{path}: cannot write the ledger here ({exc.strerror or exc}); "
                          "the old file is unchanged") from None
    return ledger
