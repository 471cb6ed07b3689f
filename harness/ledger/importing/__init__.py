"""`harness ledger import`: a ledger in another loop's format -> this harness's grammar, no line lost.

    records     LedgerFormat, NoteKind, ImportNote, ImportedItem, ImportResult: what an import produces
    values      one source value -> ours: map_status, map_priority, find_dependencies
    ptychopinn  the PtychoPINN fix_plan.md format: read its structure, write this grammar
    formats     detect_format, import_ledger (the entry point), read_source

The mapping is normative in docs/specs/ledger.md ("Importing a ledger").
"""
from __future__ import annotations

from harness.ledger.importing.formats import Detection, detect_format, import_ledger, read_source
from harness.ledger.importing.records import (
    IMPORT_FORMATS,
    ImportedItem,
    ImportNote,
    ImportResult,
    LedgerFormat,
    NoteKind,
)

__all__ = ["IMPORT_FORMATS", "Detection", "ImportNote", "ImportResult", "ImportedItem", "LedgerFormat", "NoteKind",
           "detect_format", "import_ledger", "read_source"]
