"""Editing the ledger: minimal edits that keep every other byte, and the atomic write.

Each edit re-reads the item it touched before returning, so a result that would not parse back as
written is refused (LedgerError, nothing changed). The caller writes the result with
`write_ledger_atomic`.
"""
from __future__ import annotations

import stat
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from harness.atomic import replacing
from harness.errors import LedgerError
from harness.ledger.model import (
    ATTEMPTS_HEADING,
    COMMIT_RE,
    DEFAULT_LEDGER_PATH,
    EVIDENCE_RE,
    OUTCOME_RE,
    SEPARATOR,
    STATUSES,
    TIMESTAMP_RE,
    Item,
    Ledger,
    valid_timestamp,
)
from harness.ledger.parse import parse_ledger


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
    if not (TIMESTAMP_RE.fullmatch(timestamp) and valid_timestamp(timestamp)):
        raise LedgerError(f"attempt time {timestamp!r} is not valid (expected UTC like 2025-11-06T08:45:00Z)")
    return timestamp


def format_attempt(*, timestamp: str | datetime, number: int, outcome: str, base_commit: str,
                   evidence: str) -> str:
    """One attempt line (no line ending); each part is checked so the line always parses back."""
    stamp = _utc_stamp(timestamp)
    if isinstance(number, bool) or not isinstance(number, int) or number < 1:
        raise LedgerError(f"attempt number {number!r} is not valid (expected an integer >= 1)")
    if not OUTCOME_RE.fullmatch(outcome):
        raise LedgerError(f"attempt outcome {outcome!r} is not valid (expected GREEN, FAILED at <stage> or "
                          "ABORTED at <stage>, stage a word such as red)")
    if not COMMIT_RE.fullmatch(base_commit):
        raise LedgerError(f"base commit {base_commit!r} is not valid (expected 7 to 64 hex digits)")
    if not EVIDENCE_RE.fullmatch(evidence):
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
