"""Editing the ledger: byte-preserving status and attempt edits, their checks, and the atomic write."""
from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.errors import LedgerError
from harness.ledger import (
    STATUSES,
    Ledger,
    format_attempt,
    parse_ledger,
    record_attempt,
    with_attempt,
    with_status,
    write_ledger_atomic,
)
from tests.harness.ledger.helpers import (
    EXAMPLE,
    PROPERTY,
    assert_matches_model,
    attempt_line,
    ledgers,
    lines_of,
    same_newlines,
)


def test_with_status_replaces_only_the_status_line() -> None:
    new = with_status(EXAMPLE, "DATA-001-MEMMAP", "blocked", "3 failed attempts: FAILED at red")
    old_lines, new_lines = lines_of(EXAMPLE), lines_of(new)
    assert len(old_lines) == len(new_lines)
    assert [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b] == [3]
    assert new_lines[3] == "- Status: blocked (3 failed attempts: FAILED at red)"
    item = parse_ledger(new).get("DATA-001-MEMMAP")
    assert (item.status, item.status_reason) == ("blocked", "3 failed attempts: FAILED at red")
    done = parse_ledger(with_status(new, "DATA-001-MEMMAP", "done")).get("DATA-001-MEMMAP")
    assert (done.status, done.status_reason) == ("done", None)


@pytest.mark.parametrize(("text", "expected"), [
    ("## [A] t\n- Priority: 1\n\nprose\n", "## [A] t\n- Status: done\n- Priority: 1\n\nprose\n"),
    ("## [A] t\n\n- Priority: 1\n", "## [A] t\n\n- Status: done\n- Priority: 1\n"),
    ("## [A] t\n\nprose\n", "## [A] t\n- Status: done\n\nprose\n"),
    ("## [A] t\n- not a field\n", "## [A] t\n- Status: done\n- not a field\n"),
    ("## [A] t", "## [A] t\n- Status: done"),
    ("## [A] t\r\n\r\nprose", "## [A] t\r\n- Status: done\r\n\r\nprose"),
    ("## [A] t\r\n- Mode: tdd  \r\n## [B] u", "## [A] t\r\n- Status: done\r\n- Mode: tdd  \r\n## [B] u"),
])
def test_with_status_inserts_a_missing_status_as_the_first_field(text: str, expected: str) -> None:
    assert with_status(text, "A", "done") == expected


def test_with_status_keeps_the_line_ending_of_the_replaced_line() -> None:
    text = "## [A] t\r\n- Status: pending\r\n- Priority: 1"
    assert with_status(text, "A", "in_progress") == "## [A] t\r\n- Status: in_progress\r\n- Priority: 1"
    assert with_status("## [A] t\n- Status: pending", "A", "done") == "## [A] t\n- Status: done"


@pytest.mark.parametrize(("status", "reason", "fragment"), [
    ("finished", None, "cannot set status 'finished'"),
    ("done", "because", "only kept with `blocked`"),
    ("blocked", "two\nlines", "must be one non-empty line"),
    ("blocked", "  ", "must be one non-empty line"),
])
def test_with_status_rejects_bad_values(status: str, reason: str | None, fragment: str) -> None:
    with pytest.raises(LedgerError, match=fragment):
        with_status(EXAMPLE, "DATA-001-MEMMAP", status, reason)


def test_with_attempt_appends_after_the_last_attempt_and_its_continuation() -> None:
    text = ("## [A] t\n### Attempts History\n" + attempt_line(1) + "\n  detail of #1\n\nA closing note.\n"
            "## [B] u\n")
    new = with_attempt(text, "A", timestamp="2025-11-07T01:02:03Z", number=2, outcome="GREEN",
                       base_commit="abcdef0123", evidence="plans/a/summary.md")
    added = "- 2025-11-07T01:02:03Z · #2 · GREEN · abcdef0123 · plans/a/summary.md"
    assert lines_of(new) == lines_of(text)[:4] + [added] + lines_of(text)[4:]
    assert [a.number for a in parse_ledger(new).get("A").attempts] == [1, 2]


def test_with_attempt_into_an_empty_history_goes_right_after_its_heading() -> None:
    text = "## [A] t\n### Attempts History\n\nno attempts yet\n"
    new = with_attempt(text, "A", timestamp="2025-11-07T01:02:03Z", number=1, outcome="FAILED at red",
                       base_commit="abcdef0", evidence="e")
    assert lines_of(new)[2].startswith("- 2025-11-07T01:02:03Z · #1 · FAILED at red")


@pytest.mark.parametrize(("text", "expected"), [
    ("## [A] t\n- Status: pending\n\nprose\n\n\n## [B] u\n",
     "## [A] t\n- Status: pending\n\nprose\n\n### Attempts History\nLINE\n\n\n## [B] u\n"),
    ("## [A] t", "## [A] t\n\n### Attempts History\nLINE"),
    ("## [A] t\r\n- Status: pending\r\n",
     "## [A] t\r\n- Status: pending\r\n\r\n### Attempts History\r\nLINE\r\n"),
    ("## [A] t\r\nprose  ", "## [A] t\r\nprose  \r\n\r\n### Attempts History\r\nLINE"),
])
def test_with_attempt_creates_the_history_at_the_end_of_the_item(text: str, expected: str) -> None:
    line = format_attempt(timestamp="2025-11-07T01:02:03Z", number=1, outcome="GREEN", base_commit="abcdef0",
                          evidence="e/summary.md")
    new = with_attempt(text, "A", timestamp="2025-11-07T01:02:03Z", number=1, outcome="GREEN",
                       base_commit="abcdef0", evidence="e/summary.md")
    assert new == expected.replace("LINE", line)


def test_with_attempt_requires_a_higher_number_and_valid_parts() -> None:
    with pytest.raises(LedgerError, match=r"attempt #1 for \[DATA-001-MEMMAP\] does not follow .* #2 or hi"):
        with_attempt(EXAMPLE, "DATA-001-MEMMAP", timestamp="2025-11-07T00:00:00Z", number=1, outcome="GREEN",
                     base_commit="abcdef0", evidence="e")
    with pytest.raises(LedgerError, match=r"no item \[NOPE\]"):
        with_attempt(EXAMPLE, "NOPE", timestamp="2025-11-07T00:00:00Z", number=2, outcome="GREEN",
                     base_commit="abcdef0", evidence="e")


@pytest.mark.parametrize(("changes", "fragment"), [
    ({"timestamp": "2025-11-07 00:00:00"}, "attempt time"),
    ({"timestamp": datetime(2025, 11, 7)}, "has no time zone"),
    ({"number": 0}, "attempt number 0"),
    ({"number": True}, "attempt number True"),
    ({"outcome": "FAILED"}, "attempt outcome 'FAILED'"),
    ({"outcome": "FAILED at two words"}, "attempt outcome"),
    ({"base_commit": "HEAD"}, "base commit 'HEAD'"),
    ({"evidence": "a · b"}, "evidence path"),
    ({"evidence": "a\nb"}, "evidence path"),
    ({"evidence": " padded"}, "evidence path"),
])
def test_format_attempt_rejects_what_would_not_parse_back(changes: dict, fragment: str) -> None:
    args = {"timestamp": "2025-11-07T00:00:00Z", "number": 1, "outcome": "GREEN", "base_commit": "abcdef0",
            "evidence": "e"} | changes
    with pytest.raises(LedgerError, match=fragment):
        format_attempt(**args)


def test_format_attempt_converts_an_aware_datetime_to_utc() -> None:
    when = datetime(2025, 11, 7, 9, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    line = format_attempt(timestamp=when, number=3, outcome="ABORTED at agent", base_commit="ABCDEF0",
                          evidence="p/q.md")
    assert line == "- 2025-11-07T07:30:05Z · #3 · ABORTED at agent · ABCDEF0 · p/q.md"


def test_an_edit_never_touches_another_item_even_with_the_same_text() -> None:
    twin = "- Status: pending\n- Priority: 1\n\nsame prose\n\n### Attempts History\n" + attempt_line(1) + "\n"
    text = "# Plan\n\n## [A] t\n" + twin + "\n## [B] t\n" + twin
    new = with_attempt(with_status(text, "B", "in_progress"), "B", timestamp="2025-11-07T00:00:00Z",
                       number=2, outcome="GREEN", base_commit="abcdef0", evidence="e")
    assert new.startswith(text[:text.index("## [B]")])
    assert parse_ledger(new).get("B").status == "in_progress"
    assert len(parse_ledger(new).get("A").attempts) == 1


def test_write_ledger_atomic_writes_exact_bytes_and_keeps_the_file_mode(tmp_path: Path) -> None:
    path = tmp_path / "fix_plan.md"
    path.write_text("# old\n")
    os.chmod(path, 0o640)
    text = "## [A] t\r\n- Status: done\r\nünïcode  "
    ledger = write_ledger_atomic(path, text)
    assert isinstance(ledger, Ledger) and ledger.ids() == ("A",)
    assert path.read_bytes() == text.encode("utf-8")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fix_plan.md"]


def test_write_ledger_atomic_refuses_text_that_does_not_parse(tmp_path: Path) -> None:
    path = tmp_path / "fix_plan.md"
    path.write_text(EXAMPLE)
    with pytest.raises(LedgerError, match=r"fix_plan.md:2: level-2 heading"):
        write_ledger_atomic(path, "# Plan\n## Broken\n")
    assert path.read_text() == EXAMPLE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fix_plan.md"]
    with pytest.raises(LedgerError, match="cannot write the ledger here"):
        write_ledger_atomic(tmp_path / "missing" / "fix_plan.md", EXAMPLE)


@PROPERTY
@given(ledgers(), st.data())
def test_with_status_changes_exactly_one_line(case: tuple[str, list[dict]], data: st.DataObject) -> None:
    text, model = case
    if not model:
        return
    index = data.draw(st.integers(0, len(model) - 1))
    target = parse_ledger(text).items[index]
    status = data.draw(st.sampled_from(STATUSES))
    reason = "2 failed attempts: FAILED at red, ABORTED at agent" if status == "blocked" else None
    new = with_status(text, target.id, status, reason)
    old_lines, new_lines = lines_of(text), lines_of(new)
    expected_line = f"- Status: {status}" + (f" ({reason})" if reason else "")
    if target.status_line is not None:
        k = target.status_line - 1
        assert new_lines == old_lines[:k] + [expected_line] + old_lines[k + 1:]
    else:
        k = (target.fields_line - 1) if target.fields_line else target.line
        assert new_lines == old_lines[:k] + [expected_line] + old_lines[k:]
    same_newlines(text, new)
    model[index] = {**model[index], "status": status}
    assert_matches_model(parse_ledger(new), model)


@PROPERTY
@given(ledgers(), st.data())
def test_with_attempt_inserts_exactly_the_attempt_lines(case: tuple[str, list[dict]],
                                                        data: st.DataObject) -> None:
    text, model = case
    if not model:
        return
    index = data.draw(st.integers(0, len(model) - 1))
    target = parse_ledger(text).items[index]
    outcome = data.draw(st.sampled_from(["GREEN", "FAILED at regression", "ABORTED at commit"]))
    number = target.next_attempt_number
    new = with_attempt(text, target.id, timestamp="2025-12-01T00:00:00Z", number=number, outcome=outcome,
                       base_commit="0123abc", evidence="plans/e/summary.md")
    line = format_attempt(timestamp="2025-12-01T00:00:00Z", number=number, outcome=outcome,
                          base_commit="0123abc", evidence="plans/e/summary.md")
    old_lines, new_lines = lines_of(text), lines_of(new)
    inserted = [line] if target.attempts_line else ["", "### Attempts History", line]
    k = target.attempt_append_line if target.attempts_line else target.content_end_line
    assert target.line <= k <= target.end_line
    assert all(a.line <= k for a in target.attempts)
    assert new_lines == old_lines[:k] + inserted + old_lines[k:]
    same_newlines(text, new)
    model[index] = {**model[index], "attempts": [*model[index]["attempts"], (number, outcome)]}
    assert_matches_model(parse_ledger(new), model)


@pytest.mark.parametrize("status, reason", [(None, None), ("done", None), ("in_progress", None),
                                            ("blocked", "3 failed attempts: FAILED at red")])
@pytest.mark.parametrize("text", [
    EXAMPLE,
    EXAMPLE.replace("\n", "\r\n"),
    "# Fix Plan\n\n## [A] no status, no history\n- RED: t.py\n\nprose",
    "# Fix Plan\n\n## [A] first\n- Status: pending\n\n## [B] second\n- Status: pending\n",
])
def test_record_attempt_equals_the_two_single_edits(text: str, status: str | None, reason: str | None) -> None:
    ledger = parse_ledger(text)
    item = ledger.items[0]
    attempt = {"timestamp": "2025-12-01T00:00:00Z", "number": item.next_attempt_number,
               "outcome": "FAILED at red", "base_commit": "abcdef0", "evidence": "plans/x/summary.md"}
    expected = with_attempt(text, item.id, **attempt)
    if status is not None:
        expected = with_status(expected, item.id, status, reason)
    assert record_attempt(ledger, item.id, status=status, reason=reason, **attempt) == expected
