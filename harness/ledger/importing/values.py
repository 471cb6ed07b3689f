"""One field value of another ledger -> this harness's: a status, a priority, the ids a dependency names.

Pure functions over one value, each returning a record with the words that decided, so the import can
show `from -> to` and report what it could not map.

Status: the words before the first separator (` — `, ` - `, `(`, `;`, `: `, `. `) decide, markup removed,
`_`/`-` read as spaces, checked in this order: "not started" -> pending; blocked, paused, on hold,
waiting, awaiting, stalled, parked, deferred -> blocked (the text after the separator is the reason);
in progress, active, ongoing, wip, started, underway -> in_progress; done, complete(d), finished,
resolved, closed, fixed, shipped, merged, archived, superseded, ✅ -> done; pending, planned, planning,
todo, open, queued, proposed, backlog, ready, new -> pending. Anything else is not recognised and becomes
`blocked` with a reason saying so: an item whose state nobody can read must not run by accident.

Priority: the first word; Critical (urgent, highest, blocker) 10, High 20, Medium (normal, moderate) 30,
Low (lowest, minor) 40, so that Critical runs first and there is room between them; a number, or `P<n>`,
is kept as that number.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

_MARKUP = re.compile(r"[*`]+|~~")
_SEPARATOR = re.compile(r"\s+[—–]+\s*|\s+--?\s+|\s*\(|;\s*|:\s+|\.\s+|\s*[—–]+$")
_NOT_STARTED = re.compile(r"(?<![a-z])not started(?![a-z])")
_WORDS = {
    "blocked": re.compile(r"(?<![a-z])(?:blocked|paused|on hold|waiting|awaiting|stalled|parked|deferred)(?![a-z])"),
    "in_progress": re.compile(r"(?<![a-z])(?:in progress|active|ongoing|wip|started|underway)(?![a-z])"),
    "done": re.compile(r"(?<![a-z])(?:done|complete|completed|finished|resolved|closed|fixed|shipped|merged|"
                       r"archived|superseded)(?![a-z])|✅|✔"),
    "pending": re.compile(r"(?<![a-z])(?:pending|planned|planning|todo|to do|open|queued|proposed|backlog|ready|"
                          r"new)(?![a-z])"),
}
PRIORITY_WORDS = {"critical": 10, "urgent": 10, "highest": 10, "blocker": 10, "high": 20, "medium": 30,
                  "normal": 30, "moderate": 30, "low": 40, "lowest": 40, "minor": 40}
_PRIORITY_WORD = re.compile(r"[+-]?[0-9]+|[A-Za-z]+[0-9]*")
_NONE = frozenset({"", "none", "n/a", "na", "nothing", "—", "–", "-", "--"})
# A token that could be an id: not part of a longer word, a path (`/`) or a dotted name on either side.
_TOKEN = re.compile(r"(?<![\w./-])[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?(?![\w/-])")
_ID_LIKE = re.compile(r"[A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)+(?:\.[A-Z0-9]+)*")
_STRUCK = re.compile(r"~~(.+?)~~")


@dataclass(frozen=True)
class StatusValue:
    status: str            # pending, in_progress, done or blocked
    reason: str | None     # with blocked: why
    words: str             # the words that decided ("Phase 3 in progress"), markup removed
    recognised: bool


@dataclass(frozen=True)
class PriorityValue:
    priority: int | None   # None: not recognised
    word: str              # "Critical", "2", "TBD"


@dataclass(frozen=True)
class Dependencies:
    ids: tuple[str, ...]       # the new ids of the items named, in order of mention
    unknown: tuple[str, ...]   # id-like words that name no item
    struck: tuple[str, ...]    # item ids struck through (`~~ID~~`): resolved, so not counted
    names_itself: bool
    says_none: bool            # "None", "—", empty: no dependency, and nothing to report


def map_status(raw: str) -> StatusValue:
    plain = _MARKUP.sub("", raw).strip()
    cut = _SEPARATOR.search(plain)
    words = (plain[:cut.start()] if cut else plain).strip()
    rest = plain[cut.start():].strip() if cut else ""
    rest = rest.lstrip("—–-;:.").strip()
    if rest.startswith("(") and rest.endswith(")") and rest.count("(") == 1:
        rest = rest[1:-1].strip()
    key = re.sub(r"[_-]+", " ", words.lower())
    if _NOT_STARTED.search(key):
        return StatusValue("pending", None, words, True)
    for status, pattern in _WORDS.items():
        if pattern.search(key):
            reason = None
            if status == "blocked":
                reason = rest or (words if key.strip() != "blocked" else None)
            return StatusValue(status, reason, words, True)
    shown = words or plain
    return StatusValue("blocked", f"imported status {shown!r} is not recognised; set Status by hand", shown, False)


def map_priority(raw: str) -> PriorityValue:
    plain = _MARKUP.sub("", raw).strip()
    m = _PRIORITY_WORD.match(plain)
    word = m[0] if m else plain
    if m and word.lstrip("+-").isdigit():
        return PriorityValue(int(word), word)
    if m and word[:1] in "Pp" and word[1:].isdigit():
        return PriorityValue(int(word[1:]), word)
    return PriorityValue(PRIORITY_WORDS.get(word.lower()), word)


@dataclass(frozen=True)
class IdIndex:
    """Each source id (as written in its heading) -> its new id; `odd`: the source ids that are not one
    token (`calib sweep/v2`), searched for as phrases."""

    ids: Mapping[str, str]
    odd: tuple[str, ...]

    @classmethod
    def of(cls, ids: Mapping[str, str]) -> IdIndex:
        return cls(ids, tuple(i for i in ids if _TOKEN.fullmatch(i) is None))


def find_dependencies(raw: str, index: IdIndex, own_id: str) -> Dependencies:
    """The items `raw` names; `own_id` is the naming item's source id. Ids inside a path and struck-through
    ids are not dependencies."""
    ids = index.ids
    plain = raw.replace("`", " ").strip()
    says_none = _MARKUP.sub("", plain).strip().lower().rstrip(".") in _NONE or plain.lower().startswith("none")
    struck: list[str] = []

    def strike(m: re.Match[str]) -> str:
        struck.extend(t for t in _TOKEN.findall(m[1]) if t in ids)
        return " " * len(m[0])

    text = _STRUCK.sub(strike, plain)
    found: list[tuple[int, str]] = []
    unknown: list[str] = []
    names_itself = False
    for m in _TOKEN.finditer(text):
        token = m[0]
        if token == own_id:
            names_itself = True
        elif token in ids:
            found.append((m.start(), ids[token]))
        elif _ID_LIKE.fullmatch(token):
            unknown.append(token)
    for source_id in index.odd:
        for m in re.finditer(r"(?<![\w-])" + re.escape(source_id) + r"(?![\w-])", text):
            if source_id == own_id:
                names_itself = True
            else:
                found.append((m.start(), ids[source_id]))
    ordered = tuple(dict.fromkeys(new for _, new in sorted(found)))
    return Dependencies(ordered, tuple(dict.fromkeys(unknown)), tuple(dict.fromkeys(struck)), names_itself,
                        says_none and not ordered)
