"""What an import produces: the new ledger's text, a row per item, and a note per line it changed.

A note names a source line (1-based, as written) and says what happened to it. Its kind says how much the
reader should care: UNMAPPED lines carry a value the import could not map (kept as prose, and the
reason `harness ledger import --check` exits 1); CHANGED lines were rewritten in place; MOVED lines now
sit elsewhere (the preamble) or were dropped as pure structure (a `---` between items).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum


class LedgerFormat(StrEnum):
    """A ledger format `harness ledger import` recognises. Only IMPORT_FORMATS can be converted: HARNESS is
    this harness's own grammar (docs/specs/ledger.md), detected so that importing it says so."""

    PTYCHOPINN = "ptychopinn"  # hoidn/PtychoPINN docs/fix_plan.md: `### [ID] Title` under `##` sections
    HARNESS = "harness"


IMPORT_FORMATS = (LedgerFormat.PTYCHOPINN,)


class NoteKind(StrEnum):
    UNMAPPED = "unmapped"  # a value the import could not map: kept as prose
    CHANGED = "changed"    # the line was rewritten in place (diff marker, id, heading)
    MOVED = "moved"        # the line went to the preamble, or was dropped as structure (`---`)


@dataclass(frozen=True)
class ImportNote:
    line: int
    kind: NoteKind
    text: str  # the source line as written
    message: str


@dataclass(frozen=True)
class ImportedItem:
    """One item: where it was, its id before and after, and each mapped value with the words it came from
    (`status_from`: the words that decided the status, e.g. "Phase 3 in progress"; None: no such line)."""

    line: int
    source_id: str
    id: str
    title: str
    section: str | None
    status_from: str | None
    status: str
    status_reason: str | None
    priority_from: str | None
    priority: int | None  # None: the item keeps the harness's default
    depends_on: tuple[str, ...]


@dataclass(frozen=True)
class ImportResult:
    format: LedgerFormat
    source: str  # the file's name, as given
    text: str    # the ledger in this harness's grammar
    items: tuple[ImportedItem, ...]
    notes: tuple[ImportNote, ...]
    unknown_ids: tuple[str, ...]  # ids a dependency names that no item has, in order of first mention

    @property
    def unmapped(self) -> tuple[ImportNote, ...]:
        return tuple(n for n in self.notes if n.kind is NoteKind.UNMAPPED)

    def to_dict(self) -> dict:
        """JSON-ready: everything but the ledger text."""
        return {"format": str(self.format), "source": self.source,
                "items": [{**asdict(i), "depends_on": list(i.depends_on)} for i in self.items],
                "notes": [{**asdict(n), "kind": str(n.kind)} for n in self.notes],
                "unknown_ids": list(self.unknown_ids)}
