"""Parsing the ledger: grammar, defaults, errors with path and line, random ledgers, and a size check."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given

from harness.errors import LedgerError
from harness.ledger import (
    Attempt,
    lint_text,
    load_ledger,
    parse_ledger,
    slugify,
)
from tests.harness.ledger.helpers import (
    EXAMPLE,
    PROPERTY,
    assert_matches_model,
    attempt_line,
    ledgers,
)


def error_of(text: str) -> str:
    with pytest.raises(LedgerError) as info:
        parse_ledger(text, "docs/fix_plan.md")
    return str(info.value)


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


@PROPERTY
@given(ledgers())
def test_random_ledgers_parse_and_round_trip(case: tuple[str, list[dict]]) -> None:
    text, model = case
    ledger = parse_ledger(text)
    assert ledger.text == text
    assert_matches_model(ledger, model)
    assert [f.code for f in lint_text(text) if f.code in ("parse-error", "duplicate-id")] == []


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


def test_acceptance_repeats_allow_is_a_comma_list_and_mutation_one_word() -> None:
    text = ("## [A] a\n- RED: tests/test_a.py\n- Acceptance: tests/acceptance/test_a.py\n"
            "- Acceptance: tests/acceptance/test_b.py -k fast\n- Allow: test-removed,  known-failures-added\n"
            "- Mutation: required\n\n## [B] b\n")
    ledger = parse_ledger(text)
    item = ledger.get("A")
    assert item.acceptance == ("tests/acceptance/test_a.py", "tests/acceptance/test_b.py -k fast")
    assert item.allow == ("test-removed", "known-failures-added")
    assert item.mutation == "required"
    other = ledger.get("B")
    assert (other.acceptance, other.allow, other.mutation) == ((), (), None)


def test_parsing_leaves_the_garbage_collector_on_for_other_threads() -> None:
    """Parallel workers allocate while the scheduler parses the ledger: the collector stays on throughout."""
    import gc
    import threading

    attempt = "- 2026-01-01T00:00:00Z \u00b7 #{n} \u00b7 FAILED at red \u00b7 abcdef1234 \u00b7 plans/x/{n}/summary.md"
    text = "# Fix Plan\n\n" + "".join(
        f"## [BIG-{i}] item {i}\n- Status: pending\n- RED: tests/test_{i}.py\n\n### Attempts History\n"
        + "\n".join(attempt.format(n=n) for n in range(1, 5)) + "\n\n" for i in range(3000))
    parsed: list[int] = []
    thread = threading.Thread(target=lambda: parsed.append(len(parse_ledger(text, "big.md").items)))
    seen = set()
    assert gc.isenabled()
    thread.start()
    while thread.is_alive():
        seen.add(gc.isenabled())
    thread.join()
    assert parsed == [3000] and seen == {True}
