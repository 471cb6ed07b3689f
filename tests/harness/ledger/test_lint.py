"""`harness ledger lint`: every finding code with its line and item, and parse errors as findings."""
from __future__ import annotations

from pathlib import Path

from harness.ledger import (
    lint_ledger,
    lint_text,
    parse_ledger,
    unknown_status_warnings,
)
from tests.harness.ledger.helpers import (
    EXAMPLE,
)


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


def test_lint_names_an_unknown_allow_kind_and_mutation_value() -> None:
    text = "## [A] a\n- Allow: test-removed, tests-skipped\n- Mutation: maybe\n"
    findings = lint_ledger(parse_ledger(text))
    assert [(f.line, f.code) for f in findings] == [(2, "unknown-allow"), (3, "unknown-mutation")]
    assert "'tests-skipped'" in findings[0].message and "did you mean test-skipped?" in findings[0].message
    assert "is not one of required, off" in findings[1].message
    assert lint_ledger(parse_ledger("## [A] a\n- Allow: selection-narrowed\n- Mutation: off\n")) == []


def test_unknown_status_warnings_name_file_and_line() -> None:
    ledger = parse_ledger("## [A] a\n- Status: pendng\n\n## [B] b\n- Status: done\n", "plan.md")
    assert unknown_status_warnings(ledger) == (
        ("plan.md:2: [A] Status 'pendng' is not one of pending, in_progress, done, blocked, so the item never runs; "
        "fix the Status line (`harness ledger lint` lists it)"),)
    assert unknown_status_warnings(ledger, "docs/x.md")[0].startswith("docs/x.md:2: [A]")
