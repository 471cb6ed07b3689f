"""Reading the ledger: text -> Ledger, in one linear pass over the lines.

`parse_ledger` raises on the first grammar error (`path:line: message (expected ...)`); `parse_items`
hands every problem to a callback instead, so `harness ledger lint` can report them all.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType

from harness.errors import LedgerError
from harness.ledger.model import (
    ATTEMPT_FORMAT,
    ATTEMPTS_HEADING,
    COMMIT_RE,
    DEFAULT_LEDGER_PATH,
    DEFAULT_MODE,
    DEFAULT_PRIORITY,
    DEFAULT_STATUS,
    EVIDENCE_RE,
    ID_PATTERN,
    ID_RE,
    KNOWN_FIELDS,
    OUTCOME_RE,
    REPEATABLE_FIELDS,
    SEPARATOR,
    SLUG_MAX,
    STATUSES,
    TIMESTAMP_RE,
    Attempt,
    Item,
    Ledger,
    valid_timestamp,
)

_ITEM_HEADING = re.compile(r"##[ \t]+\[([^\]]*)\][ \t]*(.*?)[ \t]*")
_HEADING_LEVEL = re.compile(r"(#{1,6})(?:[ \t]|$)")
_FIELD = re.compile(r"- ([A-Za-z][A-Za-z0-9_-]*):(?:[ \t]+(.*?))?[ \t]*")
_FENCE_OPEN = re.compile(r" {0,3}(`{3,}|~{3,})(.*)")
_STATUS_VALUE = re.compile(r"([^\s(]+)(?:[ \t]*\((.*)\))?")
_PRIORITY = re.compile(r"[+-]?[0-9]+")
_NUMBER = re.compile(r"#[1-9][0-9]*")
_ATTEMPT = re.compile(
    "- (" + TIMESTAMP_RE.pattern + ") \u00b7 #([1-9][0-9]*) \u00b7 "
    "(GREEN|(?:FAILED|ABORTED) at ([A-Za-z][A-Za-z0-9_-]*)) \u00b7 "
    "(" + COMMIT_RE.pattern + ") \u00b7 (" + EVIDENCE_RE.pattern + ")[ \t]*")
_SLUG_JUNK = re.compile(r"[^a-z0-9]+")


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


# Called with (line, code, message, expected, item id) for each grammar problem; it raises or records.
Fail = Callable[[int, str, str, str, "str | None"], None]


def _build(b: _Builder, end_line: int, content_end: int, fail: Fail) -> Item:
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
        acceptance=tuple(v for v in get("Acceptance", ()) if v),
        allow=tuple(k for k in (p.strip() for p in get("Allow", ("",))[0].split(",")) if k),
        mutation=get("Mutation", ("",))[0] or None,
    )


def slugify(title: str, item_id: str) -> str:
    """Title -> plain name: lowercase, runs of other characters -> `_`, trimmed, at most 60 characters."""
    slug = _SLUG_JUNK.sub("_", title.lower()).strip("_")[:SLUG_MAX].rstrip("_")
    return slug or item_id.lower()


def field_key(body: str) -> str | None:
    """The key when `body` is written as a field line `- Key: value` (rule 8), else None."""
    m = _FIELD.fullmatch(body)
    return m[1] if m else None


def opens_fence(body: str) -> tuple[str, int] | None:
    """(fence character, length) when `body` opens a fenced code block (rule 2), else None."""
    fm = _FENCE_OPEN.fullmatch(body)
    if fm is None or (fm[1][0] == "`" and "`" in fm[2]):
        return None
    return fm[1][0], len(fm[1])


def closes_fence(body: str, char: str, length: int) -> bool:
    """Whether `body` closes a fence opened with `length` times `char` (rule 2)."""
    stripped = body.lstrip(" ")
    if len(body) - len(stripped) > 3:
        return False
    stripped = stripped.rstrip(" \t")
    return len(stripped) >= length and stripped == char * len(stripped)


def parse_items(text: str, fail: Fail) -> list[Item]:
    """One pass over the lines. `fail` either raises or records; after it returns the pass recovers.

    The garbage collector is left alone: switching it off is process-wide, and other threads (parallel
    workers) allocate meanwhile. It costs a 20,000-item ledger ~25-40% more parse time, a 5,000-item one ~5%."""
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
            if closes_fence(body, fence_char, fence_len):
                fence_char = ""
            if cur is not None and not in_attempts:
                cur.prose.append(body)
            continue
        if in_attempts and body[:2] == "- ":
            m = attempt_re(body)
            if m is not None:
                stamp, number, outcome, stage, commit, evidence = m.groups()
                # the pattern bounds every part of the time but the day of the month; fromisoformat settles it
                if stamp[8:10] <= "28" or valid_timestamp(stamp):
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
                if m is None or not ID_RE.fullmatch(m[1]) or not m[2]:
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


def _add_field(cur: _Builder, key: str, value: str, lineno: int, fail: Fail) -> None:
    if key in cur.fields and key not in REPEATABLE_FIELDS and key in KNOWN_FIELDS:
        first = cur.field_lines[key][0]
        fail(lineno, "parse-error", f"{key} given twice in item {cur.id} (first at line {first})",
             "one line per field; only " + ", ".join(sorted(REPEATABLE_FIELDS)) + " may repeat", cur.id)
        return
    cur.fields.setdefault(key, []).append(value)
    cur.field_lines.setdefault(key, []).append(lineno)
    if cur.fields_line is None:
        cur.fields_line = lineno


def _heading_error(body: str, m: re.Match[str] | None, lineno: int, fail: Fail) -> None:
    if m is not None and not ID_RE.fullmatch(m[1]):
        message = f"item id [{m[1]}] is not valid"
        expected = f"an id matching {ID_PATTERN}: capitals, digits, '.', '_', '-'"
    elif m is not None:
        message = f"item [{m[1]}] has no title"
        expected = "`## [ID] Title`"
    else:
        message = f"level-2 heading {body.strip()!r} is not an item heading"
        expected = "`## [ID] Title`; use `###` or deeper for other headings"
    fail(lineno, "parse-error", message, expected, None)


def _attempt_error(body: str, lineno: int, item_id: str, fail: Fail) -> None:
    parts = body[2:].split(SEPARATOR)
    detail = ""
    if len(parts) != 5:
        detail = f"; found {len(parts)} part(s) separated by ' \u00b7 ', need 5"
    else:
        checks = ((TIMESTAMP_RE, parts[0], "time (UTC, ending in Z)"), (_NUMBER, parts[1], "attempt number"),
                  (OUTCOME_RE, parts[2], "outcome"), (COMMIT_RE, parts[3], "base commit"),
                  (EVIDENCE_RE, parts[4].rstrip(" \t"), "evidence path"))
        for regex, value, what in checks:
            if not regex.fullmatch(value) or (regex is TIMESTAMP_RE and not valid_timestamp(value)):
                detail = f"; the {what} {value!r} is not valid"
                break
    fail(lineno, "parse-error", f"attempt line of item {item_id} does not parse{detail}", ATTEMPT_FORMAT,
         item_id)


def parse_ledger(text: str, path: str | os.PathLike[str] = DEFAULT_LEDGER_PATH) -> Ledger:
    """Parse the whole ledger; the first grammar error raises `path:line: message (expected ...)`."""
    where = str(path)

    def fail(line: int, code: str, message: str, expected: str, item_id: str | None) -> None:
        raise LedgerError(f"{where}:{line}: {message} (expected {expected})")

    return Ledger(where, text, tuple(parse_items(text, fail)))


def load_ledger(path: Path) -> Ledger:
    path = Path(path)
    return parse_ledger(read_ledger_text(path), path)


def read_ledger_text(path: Path) -> str:
    """The ledger file's text; LedgerError saying what to do when it is missing, unreadable or not UTF-8."""
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
    return text

