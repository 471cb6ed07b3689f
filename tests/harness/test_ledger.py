"""The ledger: grammar, defaults, errors, byte-preserving edits, atomic writes, lint, and a size benchmark."""
from __future__ import annotations

import os
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.errors import LedgerError
from harness.ledger import (
    STATUSES,
    Attempt,
    Ledger,
    ensure_plain_names,
    format_attempt,
    load_ledger,
    parse_ledger,
    record_attempt,
    slugify,
    with_attempt,
    with_status,
    write_ledger_atomic,
)
from harness.ledger_lint import lint_ledger, lint_text

EXAMPLE = """\
# Fix Plan

## [DATA-001-MEMMAP] MemmapDatasetBridge accepts the canonical diffraction key
- Status: pending
- Priority: 1
- Depends-On: FOUNDATION-001
- Initiative: STUDY-SYNTH-FLY64-DOSE-OVERLAP-001
- Slug: phase_e_memmap_diffraction_fallback
- Spec: docs/specs/data_contracts.md#keys
- Mode: tdd
- RED: tests/torch/test_data_pipeline.py::TestMemmapBridgeParity::test_memmap_bridge_accepts_diffraction_legacy
- Regression: tests/torch/test_data_pipeline.py -k memmap
- Exit-Criteria: the bridge loads NPZs with either key; dtype and shape preserved

Free prose: context, notes, anything.

### Attempts History
- 2025-11-06T08:45:00Z · #1 · GREEN · 3f2a1bc · plans/active/STUDY-SYNTH-FLY64-DOSE-OVERLAP-001/reports/2025-11-06T084500Z/phase_e_memmap_diffraction_fallback/analysis/summary.md
"""

ATTEMPT = "- 2025-11-06T08:45:00Z · #{n} · {outcome} · 3f2a1bc · plans/x/{n}/summary.md"


def attempt_line(n: int, outcome: str = "FAILED at red") -> str:
    return ATTEMPT.format(n=n, outcome=outcome)


def error_of(text: str) -> str:
    with pytest.raises(LedgerError) as info:
        parse_ledger(text, "docs/fix_plan.md")
    return str(info.value)


def lines_of(text: str) -> list[str]:
    """Line bodies without endings, split on LF only (never on unicode line separators)."""
    pieces = text.split("\n")
    if pieces[-1] == "":
        pieces.pop()
    return [p.removesuffix("\r") for p in pieces]


# ---------------------------------------------------------------------------------------------- parsing

def test_parses_every_field_of_the_documented_example() -> None:
    ledger = parse_ledger(EXAMPLE)
    assert ledger.ids() == ("DATA-001-MEMMAP",)
    item = ledger.get("DATA-001-MEMMAP")
    assert item.title == "MemmapDatasetBridge accepts the canonical diffraction key"
    assert (item.line, item.status_line, item.fields_line, item.attempts_line) == (3, 4, 4, 17)
    assert (item.status, item.status_reason, item.status_known, item.priority) == ("pending", None, True, 1)
    assert item.depends_on == ("FOUNDATION-001",)
    assert item.initiative == "STUDY-SYNTH-FLY64-DOSE-OVERLAP-001"
    assert item.slug == "phase_e_memmap_diffraction_fallback"
    assert item.spec == "docs/specs/data_contracts.md#keys"
    assert item.mode == "tdd"
    assert item.red == (("tests/torch/test_data_pipeline.py::TestMemmapBridgeParity::"
                         "test_memmap_bridge_accepts_diffraction_legacy"),)
    assert item.regression == ("tests/torch/test_data_pipeline.py -k memmap",)
    assert item.exit_criteria == ("the bridge loads NPZs with either key; dtype and shape preserved",)
    assert item.prose == "Free prose: context, notes, anything."
    assert item.attempts == (Attempt(
        "2025-11-06T08:45:00Z", 1, "GREEN", None, "3f2a1bc",
        "plans/active/STUDY-SYNTH-FLY64-DOSE-OVERLAP-001/reports/2025-11-06T084500Z/"
        "phase_e_memmap_diffraction_fallback/analysis/summary.md", 18),)
    assert item.attempts[0].succeeded and not item.attempts[0].failed
    assert item.next_attempt_number == 2
    assert ledger.text == EXAMPLE


def test_defaults_apply_when_fields_are_missing() -> None:
    item = parse_ledger("## [FOO-1] Fix the Thing: v2.0 (urgent!)\n\nSome prose.\n").get("FOO-1")
    assert (item.status, item.status_known, item.status_line) == ("pending", True, None)
    assert (item.priority, item.mode, item.initiative) == (100, "tdd", "FOO-1")
    assert item.slug == "fix_the_thing_v2_0_urgent"
    assert item.depends_on == item.red == item.regression == item.attempts == ()
    assert item.spec is None and item.fields_line is None and item.attempts_line is None
    assert item.next_attempt_number == 1


@pytest.mark.parametrize(("title", "slug"), [
    ("Ünïcode → only", "n_code_only"),
    ("!!!", "x-7.b"),
    (("a" * 59) + " b" + ("c" * 10), "a" * 59),
    ("x" * 80, "x" * 60),
])
def test_slug_default_is_a_plain_name_of_at_most_60_chars(title: str, slug: str) -> None:
    assert slugify(title, "X-7.B") == slug


def test_status_reason_negative_priority_multiple_selectors_and_unknown_fields() -> None:
    text = ("## [A] t\n"
            "- Status: blocked (3 failed attempts: RED not proven (twice))\n"
            "- Priority: -5\n"
            "- Depends-On: B, C ,, D\n"
            "- RED: tests/a.py::test_one\n"
            "- RED: tests/a.py -k two\n"
            "- Owner: someone\n"
            "- Owner: someone else\n"
            "- status: lowercase keys are different keys\n")
    item = parse_ledger(text).get("A")
    assert (item.status, item.status_reason, item.priority) == (
        "blocked", "3 failed attempts: RED not proven (twice)", -5)
    assert item.depends_on == ("B", "C", "D")
    assert item.red == ("tests/a.py::test_one", "tests/a.py -k two")
    assert item.fields["Owner"] == ("someone", "someone else")
    assert item.field_lines["Owner"] == (7, 8)
    assert item.fields["status"] == ("lowercase keys are different keys",)


def test_empty_values_count_as_absent_except_status() -> None:
    item = parse_ledger("## [A] Title\n- Status:\n- Slug:\n- Initiative:\n- Mode:\n- RED:\n").get("A")
    assert (item.status, item.status_known) == ("", False)
    assert (item.slug, item.initiative, item.mode, item.red) == ("title", "A", "tdd", ())
    assert item.fields["RED"] == ("",)


def test_unknown_status_is_kept_not_rejected() -> None:
    item = parse_ledger("## [A] t\n- Status: wip\n").get("A")
    assert (item.status, item.status_known) == ("wip", False)


def test_blank_lines_may_precede_the_field_block_and_a_blank_line_ends_it() -> None:
    item = parse_ledger("## [A] t\n\n\n- Status: done\n- Priority: 3\n\n- Priority: 4\n").get("A")
    assert (item.status, item.priority, item.fields_line) == ("done", 3, 4)
    assert item.stray_field_lines == (7,)
    assert item.prose == "- Priority: 4"


def test_fenced_code_never_counts_as_headings_fields_or_attempts() -> None:
    text = ("# Fix Plan\n```\n## not an item heading in the preamble\n```\n"
            "## [A] t\n```text\n- Status: done\n## [FAKE] inside a fence\n### Attempts History\n"
            "- not an attempt\n```\n"
            "~~~~\n```\n## still fenced\n~~~~\n"
            "### Attempts History\n```\n- inside a fence in the history\n```\n" + attempt_line(1) + "\n")
    ledger = parse_ledger(text)
    assert ledger.ids() == ("A",)
    item = ledger.get("A")
    assert item.status == "pending" and item.status_line is None
    assert [a.number for a in item.attempts] == [1]
    assert "## [FAKE] inside a fence" in item.prose


def test_attempt_history_keeps_other_lines_and_ends_at_the_next_heading() -> None:
    text = ("## [A] t\n### Attempts History\n\nA note in the history.\n" + attempt_line(1) +
            "\n  continued detail\n" + attempt_line(2, "ABORTED at agent") +
            "\n\n### Notes\n- a prose bullet\n#### deeper\n")
    item = parse_ledger(text).get("A")
    assert [(a.number, a.outcome, a.stage, a.failed) for a in item.attempts] == [
        (1, "FAILED at red", "red", True), (2, "ABORTED at agent", "agent", True)]
    assert item.attempt_append_line == 7
    assert "- a prose bullet" in item.prose and "A note in the history." not in item.prose


def test_crlf_bom_and_missing_final_newline_parse_and_round_trip() -> None:
    text = ("\ufeff## [A] t\r\n- Status: done\r\n- Priority: 2  \r\n\r\nprose  \r\n"
            "### Attempts History\r\n" + attempt_line(1, "GREEN"))
    ledger = parse_ledger(text)
    item = ledger.get("A")
    assert (item.status, item.priority, item.prose) == ("done", 2, "prose  ")
    assert item.attempts[0].evidence == "plans/x/1/summary.md"
    assert ledger.text == text


# ---------------------------------------------------------------------------------------------- errors

def test_duplicate_id_is_a_parse_error_naming_both_lines() -> None:
    message = error_of("## [A] one\n\n## [B] two\n## [A] three\n")
    assert message.startswith("docs/fix_plan.md:4: duplicate id [A] at lines 1 and 4")
    assert "(expected unique ids" in message


@pytest.mark.parametrize(("text", "line", "fragment"), [
    ("# Plan\n## Notes\n", 2, "level-2 heading '## Notes' is not an item heading"),
    ("## [A] t\n## [lower-case] t\n", 2, "item id [lower-case] is not valid"),
    ("## [A]\n", 1, "item [A] has no title"),
    ("## [A] t\n- Priority: high\n", 2, "Priority 'high' of item A is not an integer"),
    ("## [A] t\n- Status: done\n- Status: pending\n", 3, "Status given twice in item A (first at line 2)"),
    ("## [A] t\n```python\ncode\n", 2, "code fence is never closed"),
])
def test_parse_errors_name_path_line_problem_and_expectation(text: str, line: int, fragment: str) -> None:
    message = error_of(text)
    assert message.startswith(f"docs/fix_plan.md:{line}: ")
    assert fragment in message
    assert "(expected " in message


@pytest.mark.parametrize(("line", "fragment"), [
    ("- 2025-11-06T08:45:00Z · #1 · GREEN · 3f2a1bc", "found 4 part(s)"),
    ("- 2025-11-06 08:45:00 · #1 · GREEN · 3f2a1bc · x", "time (UTC, ending in Z) '2025-11-06 08:45:00'"),
    ("- 2025-02-30T08:45:00Z · #1 · GREEN · 3f2a1bc · x", "time (UTC, ending in Z) '2025-02-30T08:45:00Z'"),
    ("- 2025-11-06T08:45:00Z · 1 · GREEN · 3f2a1bc · x", "attempt number '1'"),
    ("- 2025-11-06T08:45:00Z · #1 · FAILED · 3f2a1bc · x", "outcome 'FAILED'"),
    ("- 2025-11-06T08:45:00Z · #1 · PASSED · 3f2a1bc · x", "outcome 'PASSED'"),
    ("- 2025-11-06T08:45:00Z · #1 · GREEN · main · x", "base commit 'main'"),
    ("- 2025-11-06T08:45:00Z - #1 - GREEN - 3f2a1bc - x", "found 1 part(s)"),
])
def test_bad_attempt_lines_are_parse_errors_with_the_format(line: str, fragment: str) -> None:
    message = error_of(f"## [A] t\n\n### Attempts History\n{line}\n")
    assert message.startswith("docs/fix_plan.md:4: attempt line of item A does not parse")
    assert fragment in message
    assert "<GREEN | FAILED at <stage> | ABORTED at <stage>>" in message


def test_load_ledger_reads_bytes_exactly_and_explains_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LedgerError, match="run `harness init`"):
        load_ledger(tmp_path / "docs" / "fix_plan.md")
    path = tmp_path / "fix_plan.md"
    path.write_bytes(b"## [A] t\r\n- Status: done\r\n")
    ledger = load_ledger(path)
    assert ledger.text == "## [A] t\r\n- Status: done\r\n" and ledger.path == str(path)
    path.write_bytes(b"## [A] t\n\xff\n")
    with pytest.raises(LedgerError, match=r"fix_plan.md:2: the ledger is not UTF-8"):
        load_ledger(path)


def test_get_unknown_id_lists_close_matches() -> None:
    ledger = parse_ledger("## [DATA-001] a\n## [DATA-002] b\n## [OTHER] c\n")
    with pytest.raises(LedgerError, match=r"no item \[DATA-01\]; did you mean DATA-001, DATA-002"):
        ledger.get("DATA-01")
    with pytest.raises(LedgerError, match=r"did you mean OTHER\?"):
        ledger.get("other")
    with pytest.raises(LedgerError, match="the ledger holds no items"):
        parse_ledger("# Fix Plan\n").get("A")


def test_path_problems_and_ensure_plain_names() -> None:
    text = "## [A] t\n- Initiative: ../escape\n- Slug: .hidden\n## [B] fine\n- Slug: ok.name-1_x\n"
    ledger = parse_ledger(text)
    problems = ledger.get("A").path_problems()
    assert [(p.field, p.value, p.line) for p in problems] == [("Initiative", "../escape", 2),
                                                             ("Slug", ".hidden", 3)]
    with pytest.raises(LedgerError) as info:
        ensure_plain_names(ledger.get("A"), "docs/fix_plan.md")
    message = str(info.value)
    assert "docs/fix_plan.md:2: Initiative '../escape'" in message
    assert "docs/fix_plan.md:3: Slug '.hidden'" in message
    assert "[A-Za-z0-9._-]+" in message
    ensure_plain_names(ledger.get("B"))


# ---------------------------------------------------------------------------------------------- editing

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


# ---------------------------------------------------------------------------------------------- writing

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


# ---------------------------------------------------------------------------------------------- lint

def test_lint_reports_each_code_with_line_and_item(tmp_path: Path) -> None:
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "ok.md").write_text("ok")
    text = ("# Plan\n\n"
            "## [A] a\n- Status: wip\n- Owner: me\n- Mode: quick\n- Depends-On: GHOST, B\n- Slug: ../up\n\n"
            "- Priority: 3\n\n### Attempts History\n"
            "- 2025-11-06T08:45:00Z · #2 · GREEN · 3f2a1bc · plans/ok.md\n"
            "- 2025-11-06T08:45:00Z · #2 · GREEN · 3f2a1bc · plans/missing.md\n"
            "- 2025-11-06T08:45:00Z · #3 · GREEN · 3f2a1bc · /etc/passwd\n"
            "## [B] b\n- Depends-On: C\n"
            "## [C] c\n- Depends-On: A\n"
            "## [D] d\n- Depends-On: D\n")
    findings = lint_ledger(parse_ledger(text), repo_root=tmp_path)
    got = {(f.code, f.line, f.item_id) for f in findings}
    assert got == {
        ("unknown-status", 4, "A"), ("unknown-field", 5, "A"), ("unknown-mode", 6, "A"),
        ("missing-dependency", 7, "A"), ("bad-path-name", 8, "A"), ("stray-field", 10, "A"),
        ("attempt-number", 14, "A"), ("missing-evidence", 14, "A"), ("bad-evidence-path", 15, "A"),
        ("dependency-cycle", 7, "A"), ("dependency-cycle", 21, "D"),
    }
    messages = {f.code + f.item_id: f.message for f in findings}
    assert "dependency cycle: A -> B -> C -> A" in messages["dependency-cycleA"]
    assert "dependency cycle: D -> D" in messages["dependency-cycleD"]
    assert "[GHOST]" in messages["missing-dependencyA"]
    assert findings[0].render("docs/fix_plan.md").startswith("docs/fix_plan.md:")
    assert set(vars(findings[0])) == {"line", "item_id", "code", "message"}  # `harness ledger lint --json`
    assert {f.code for f in lint_ledger(parse_ledger(text), repo_root=None)}.isdisjoint(
        {"missing-evidence", "bad-evidence-path"})


def test_lint_of_a_clean_ledger_is_empty(tmp_path: Path) -> None:
    evidence = tmp_path / "plans/active/STUDY-SYNTH-FLY64-DOSE-OVERLAP-001/reports/2025-11-06T084500Z/" \
        "phase_e_memmap_diffraction_fallback/analysis/summary.md"
    evidence.parent.mkdir(parents=True)
    evidence.write_text("summary")
    text = EXAMPLE + "\n## [FOUNDATION-001] base\n- Status: done\n"
    assert lint_ledger(parse_ledger(text), repo_root=tmp_path) == []
    assert lint_text(text, "docs/fix_plan.md", tmp_path) == []


def test_lint_text_turns_parse_errors_into_findings_and_reports_all_duplicates() -> None:
    text = ("## [A] one\n- Priority: soon\n## [A] two\n## Notes\n- Status: whatever\n"
            "## [A] three\n### Attempts History\n- bad attempt\n## [B] b\n- Depends-On: MISSING\n")
    findings = lint_text(text, "docs/fix_plan.md", None)
    got = [(f.line, f.code, f.item_id) for f in findings]
    assert got == [(2, "parse-error", "A"), (3, "duplicate-id", "A"), (4, "parse-error", None),
                   (6, "duplicate-id", "A"), (8, "parse-error", "A"), (10, "missing-dependency", "B")]
    assert "duplicate id [A] at lines 1 and 6" in findings[3].message


def test_lint_text_names_an_unclosed_fence() -> None:
    findings = lint_text("## [A] t\n~~~\n## [B] hidden\n", "docs/fix_plan.md")
    assert [(f.line, f.code) for f in findings] == [(2, "parse-error")]
    assert "never closed" in findings[0].message and "~~~" in findings[0].message


# ---------------------------------------------------------------------------------------------- properties

ID = st.from_regex(r"[A-Z0-9][A-Z0-9._-]{0,8}", fullmatch=True)
SAFE_TEXT = st.text(st.sampled_from("abcXYZ019 ._-:,()[]é€→\u2028\u00b7\t"), max_size=20)
TRICKY_PROSE = [
    ["```", "## [FAKE-1] in a fence", "- Status: done", "### Attempts History", "- not an attempt", "```"],
    ["~~~~python", "```", "## nope", "~~~~"],
    ["### Notes", "text under notes"],
    ["#### a deep heading"],
    ["- a prose bullet", "* another bullet"],
    ["  indented text  "],
    ["- Status: done"],
    [""],
]


@st.composite
def prose_lines(draw: st.DrawFn) -> list[str]:
    lines: list[str] = []
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            lines += draw(st.sampled_from(TRICKY_PROSE))
        else:
            lines.append("p" + draw(SAFE_TEXT) + draw(st.sampled_from(["", " ", "  \t"])))
    return lines


@st.composite
def ledgers(draw: st.DrawFn) -> tuple[str, list[dict]]:
    """A random ledger text and the model it was rendered from."""
    ids = draw(st.lists(ID, unique=True, max_size=5))
    lines = draw(st.sampled_from([[], ["# Fix Plan"], ["# Fix Plan", "", "Intro - with: colons", ""]]))
    model = []
    for item_id in ids:
        title = "T" + draw(SAFE_TEXT).replace("\t", " ").strip()
        lines.append(f"## [{item_id}] {title}" + draw(st.sampled_from(["", " "])))
        lines += [""] * draw(st.integers(0, 1))
        spec: dict = {"id": item_id, "title": title, "status": "pending", "priority": 100, "red": [],
                      "attempts": []}
        if draw(st.booleans()):
            status = draw(st.sampled_from([*STATUSES, "wip"]))
            reason = draw(st.sampled_from(["", " (needs (nested) parens)"])) if status == "blocked" else ""
            lines.append(f"- Status: {status}{reason}")
            spec["status"] = status
        if draw(st.booleans()):
            spec["priority"] = draw(st.integers(-50, 200))
            lines.append(f"- Priority: {spec['priority']}")
        for _ in range(draw(st.integers(0, 2))):
            selector = "tests/test_" + draw(st.from_regex(r"[a-z]{1,6}", fullmatch=True)) + ".py"
            spec["red"].append(selector)
            lines.append(f"- RED: {selector}")
        if draw(st.booleans()):
            lines.append("- Owner: " + draw(SAFE_TEXT).strip())
        prose = draw(prose_lines())
        if prose:  # a plain line first: after blank lines alone, a field line would open the field block
            lines += ["", "Prose."] + prose
        if draw(st.booleans()):
            lines += [""] * draw(st.integers(0, 1)) + ["### Attempts History"]
            for number in range(1, draw(st.integers(0, 3)) + 1):
                outcome = draw(st.sampled_from(["GREEN", "FAILED at red", "ABORTED at agent"]))
                lines.append(attempt_line(number, outcome) + draw(st.sampled_from(["", "  "])))
                spec["attempts"].append((number, outcome))
                if draw(st.integers(0, 4)) == 0:
                    lines.append("  continued")
            lines += draw(st.sampled_from([[], ["", "after the attempts"], ["", "### Later", "later prose"]]))
        lines += [""] * draw(st.integers(0, 2))
        model.append(spec)
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    text = newline.join(lines) + (newline if lines and draw(st.booleans()) else "")
    return text, model


def assert_matches_model(ledger: Ledger, model: list[dict]) -> None:
    assert ledger.ids() == tuple(spec["id"] for spec in model)
    for item, spec in zip(ledger.items, model, strict=True):
        assert (item.title, item.status, item.priority) == (spec["title"], spec["status"], spec["priority"])
        assert item.red == tuple(spec["red"])
        assert [(a.number, a.outcome) for a in item.attempts] == spec["attempts"]


def same_newlines(old: str, new: str) -> None:
    if "\r\n" in old:
        assert new.count("\r\n") == new.count("\n")
    else:
        assert "\r" not in new
    assert new.endswith("\n") == old.endswith("\n")


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(ledgers())
def test_random_ledgers_parse_and_round_trip(case: tuple[str, list[dict]]) -> None:
    text, model = case
    ledger = parse_ledger(text)
    assert ledger.text == text
    assert_matches_model(ledger, model)
    assert [f.code for f in lint_text(text) if f.code in ("parse-error", "duplicate-id")] == []


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


# ---------------------------------------------------------------------------------------------- size

def big_ledger(items: int, attempts: int) -> str:
    """The size the harness is measured on: `items` items, each with fields, prose and `attempts` attempts."""
    out = ["# Fix Plan", ""]
    for i in range(items):
        out += [f"## [ITEM-{i:05d}] Make part {i} of the pipeline behave", "- Status: pending",
                f"- Priority: {i % 7}", f"- Depends-On: ITEM-{i - 1:05d}" if i else "- Mode: tdd",
                f"- RED: tests/test_part_{i}.py::test_behaves", f"- Regression: tests/test_part_{i}.py",
                "", "Context for this item.", "", "### Attempts History"]
        out += [f"- 2025-11-06T08:{j % 60:02d}:00Z · #{j + 1} · FAILED at red · 3f2a1bc · "
                f"plans/active/ITEM-{i:05d}/reports/2025-11-06T08{j % 60:02d}00Z/part/analysis/summary.md"
                for j in range(attempts)]
        out.append("")
    return "\n".join(out)


def test_parses_5000_items_with_20_attempts_each() -> None:
    """Correctness at the measured size; the timing lives in benchmarks/bench_harness.py."""
    ledger = parse_ledger(big_ledger(5000, 20))
    assert len(ledger.items) == 5000 and sum(len(i.attempts) for i in ledger.items) == 100_000
    assert ledger.get("ITEM-04999").attempts[-1].number == 20
    assert ledger.get("ITEM-04999").depends_on == ("ITEM-04998",)


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
