"""The ledger's model: its grammar's constants and patterns, and the records a parse produces.

The grammar is normative in docs/specs/ledger.md. Records keep the line numbers the edits need
(harness.ledger.edit), so an edit touches only its own line(s).
"""
from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from harness.errors import LedgerError

DEFAULT_LEDGER_PATH = "docs/fix_plan.md"
STATUSES = ("pending", "in_progress", "done", "blocked")
MODES = ("tdd", "chore", "docs")
KNOWN_FIELDS = ("Status", "Priority", "Depends-On", "Initiative", "Slug", "Spec", "Mode",
                "RED", "Regression", "Exit-Criteria", "Acceptance", "Allow", "Mutation")
REPEATABLE_FIELDS = frozenset({"RED", "Regression", "Exit-Criteria", "Acceptance"})
# What the test-integrity gate finds; `- Allow:` lifts named kinds for one item (they are still recorded).
INTEGRITY_KINDS = ("test-removed", "test-skipped", "assertions-removed", "assertions-weakened",
                   "expected-values-changed", "known-failures-added",
                   "selection-narrowed", "gates-weakened", "test-machinery-changed",
                   "code-under-test-replaced", "runner-detected", "always-equal")
MUTATION_VALUES = ("required", "off")
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

ID_RE = re.compile(ID_PATTERN)
PLAIN_NAME_RE = re.compile(r"(?!\.)[A-Za-z0-9._-]+")
TIMESTAMP_RE = re.compile(r"[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
                          r"T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?Z")
OUTCOME_RE = re.compile(r"GREEN|(?:FAILED|ABORTED) at ([A-Za-z][A-Za-z0-9_-]*)")
COMMIT_RE = re.compile(r"[0-9a-fA-F]{7,64}")
EVIDENCE_RE = re.compile(r"[^\s\u00b7](?:[^\u00b7\r\n]*[^\s\u00b7])?")


def valid_timestamp(value: str) -> bool:
    """Whether `value` (already matching TIMESTAMP_RE) is a real date: the pattern allows 31 February."""
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


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
    acceptance: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    mutation: str | None = None

    @property
    def next_attempt_number(self) -> int:
        return max((a.number for a in self.attempts), default=0) + 1

    def path_problems(self) -> tuple[PathProblem, ...]:
        """Initiative/Slug values that are not plain names (defaults always are)."""
        problems = []
        for name, value in (("Initiative", self.initiative), ("Slug", self.slug)):
            if not PLAIN_NAME_RE.fullmatch(value):
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

