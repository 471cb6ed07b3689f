"""docs/fix_plan.md <-> Ledger / Item / Attempt: parse, lint, and minimal edits that keep every other byte.

The grammar is normative in docs/specs/ledger.md. Parsing is one linear pass over the lines; the parsed
records keep the line numbers that the two edits (`with_status`, `with_attempt`) need, so an edit touches
only its own line(s) and the caller writes the result with `write_ledger_atomic`.

    model   the grammar's constants and patterns; Attempt, Item, Ledger
    parse   text -> Ledger (parse_ledger, load_ledger); parse_items reports problems to a callback
    edit    with_status, with_attempt, record_attempt, format_attempt, write_ledger_atomic
    lint    what is wrong with a ledger that still parses, or does not
"""
from __future__ import annotations

from harness.ledger.edit import format_attempt, record_attempt, with_attempt, with_status, write_ledger_atomic
from harness.ledger.lint import LINT_CODES, LedgerFinding, lint_ledger, lint_text, unknown_status_warnings
from harness.ledger.model import (
    ATTEMPT_FORMAT,
    ATTEMPTS_HEADING,
    DEFAULT_LEDGER_PATH,
    DEFAULT_MODE,
    DEFAULT_PRIORITY,
    DEFAULT_STATUS,
    ID_PATTERN,
    INTEGRITY_KINDS,
    KNOWN_FIELDS,
    MODES,
    MUTATION_VALUES,
    PLAIN_NAME_PATTERN,
    REPEATABLE_FIELDS,
    SEPARATOR,
    SLUG_MAX,
    STATUSES,
    Attempt,
    Item,
    Ledger,
    PathProblem,
    ensure_plain_names,
)
from harness.ledger.parse import load_ledger, parse_ledger, read_ledger_text, slugify

__all__ = [
    "ATTEMPTS_HEADING", "ATTEMPT_FORMAT", "DEFAULT_LEDGER_PATH", "DEFAULT_MODE", "DEFAULT_PRIORITY",
    "DEFAULT_STATUS", "ID_PATTERN", "INTEGRITY_KINDS", "KNOWN_FIELDS", "LINT_CODES", "MODES",
    "MUTATION_VALUES", "PLAIN_NAME_PATTERN",
    "REPEATABLE_FIELDS", "SEPARATOR", "SLUG_MAX", "STATUSES", "Attempt", "Item", "Ledger", "LedgerFinding",
    "PathProblem", "ensure_plain_names", "format_attempt", "lint_ledger", "lint_text", "load_ledger",
    "parse_ledger", "read_ledger_text", "record_attempt", "slugify", "unknown_status_warnings", "with_attempt", "with_status", "write_ledger_atomic",
]
