"""`harness.ledger.importing.ptychopinn`: a PtychoPINN-style ledger -> this harness's grammar, nothing lost.

The fixtures in fixtures/ are written for these tests from the structure of hoidn/PtychoPINN's
docs/fix_plan.md (its current form, and the older `## [ID]` form of its archives); their text is ours.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.errors import LedgerError
from harness.ledger import lint_text, parse_ledger
from harness.ledger.importing import LedgerFormat, NoteKind, import_ledger
from harness.ledger.selection import select_next

FIXTURES = Path(__file__).parent / "fixtures"
CURRENT = FIXTURES / "ptychopinn_fix_plan.md"
ARCHIVE = FIXTURES / "ptychopinn_archive.md"

_DIFF_MARKER = re.compile(r"[-+](?=#{1,6}[ \t]|[ \t]{2,}[-*+][ \t])")
_PREFIX = re.compile(r"(?:#{1,6}[ \t]+|[-*+>][ \t]+)+")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _core(line: str) -> str:
    """A source line's text without what the import may rewrite: a diff marker, heading hashes, a bullet,
    indentation."""
    body = line.rstrip("\r")
    if _DIFF_MARKER.match(body):
        body = body[1:]
    body = body.strip()
    return _PREFIX.sub("", body, count=1).strip() if _PREFIX.match(body) else body


def _by_id(result, item_id: str):
    return next(i for i in result.items if i.id == item_id)


@pytest.mark.parametrize("fixture", [CURRENT, ARCHIVE], ids=["current", "archive"])
def test_no_line_is_lost(fixture: Path) -> None:
    """Every non-blank source line's text is in the new ledger or in the import's report."""
    source = _read(fixture)
    result = import_ledger(source, source=fixture.name)
    report = json.dumps(result.to_dict(), ensure_ascii=False)
    lost = [(n, line) for n, line in enumerate(source.splitlines(), 1)
            if line.strip() and _core(line) not in result.text and _core(line) not in report]
    assert lost == []


@pytest.mark.parametrize("fixture", [CURRENT, ARCHIVE], ids=["current", "archive"])
def test_the_result_parses_and_lints_clean(fixture: Path) -> None:
    result = import_ledger(_read(fixture), source=fixture.name)
    assert result.format is LedgerFormat.PTYCHOPINN
    ledger = parse_ledger(result.text, "docs/fix_plan.md")
    assert [i.id for i in ledger.items] == [i.id for i in result.items]
    assert lint_text(result.text, "docs/fix_plan.md") == []
    assert all(not item.attempts for item in ledger.items)


def test_every_item_is_kept_with_its_id_and_title_in_file_order() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    ledger = parse_ledger(result.text)
    assert [(i.id, i.title) for i in ledger.items] == [
        ("BOOTSTRAP-000", "Repository bootstrap checklist"),
        ("SIM-CORE-001", "Forward simulator rewrite (module)"),
        ("PROBE-SWEEP-002", "Probe sweep rerun with the fixed normaliser (stable + clipped)"),
        ("LOSS-PARITY-003", "Cross-backend loss parity investigation"),
        ("STUDY-DOSE-004", "Dose response study"),
        ("NORMALISER-FIX-005", "Normaliser batch dimension fix for grouped patterns"),
        ("OVERLAP-STUDY-006", "Overlap study at full scale"),
        ("FORWARD-PARITY-008", "Forward patch parity between backends"),
        ("TF-RERUN-009", "Scaled rerun of the reference backend"),
        ("IMPORT-SIDE-EFFECTS-012", "Remove import-time state from the model module"),
        ("API-PARITY", "Programmatic API parity between backends"),
        ("SEED", "Inbox monitoring"),
        ("CALIB-SWEEP-V2", "Calibration sweep, second pass"),
        ("PROBE-SWEEP-002-2", "Probe sweep rerun (a stale copy left behind by a merge)"),
        ("REPORT-TABLES-014", "Report tables for the paper"),
        ("HISTORY-015", "An entry written in the newer harness style"),
        ("NO-TITLE-016", "NO-TITLE-016"),
        ("BACKEND-PARITY-010", "Backend API parity reactivation"),
        ("COMPARE-FIX-011", "Dense comparison translation guard"),
        ("LAZY-LOAD-007", "Lazy tensor allocation in the loader"),
    ]


def test_statuses_are_mapped_and_their_prose_kept() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    ledger = parse_ledger(result.text)
    status = {i.id: (i.status, i.status_reason) for i in ledger.items}
    assert status["SIM-CORE-001"] == ("done", None)
    assert status["PROBE-SWEEP-002"] == ("in_progress", None)  # "Phase 3 in progress — ..."
    assert status["LOSS-PARITY-003"] == ("pending", None)  # "pending (investigation)"
    assert status["OVERLAP-STUDY-006"] == ("done", None)  # "**Scaled ✅ COMPLETE** — ..."
    assert status["FORWARD-PARITY-008"] == ("blocked", "Phase A/B complete (scale=9.88); awaiting TF-RERUN-009.")
    assert status["IMPORT-SIDE-EFFECTS-012"] == ("done", None)  # "- **Status:** superseded by ..."
    assert status["API-PARITY"] == ("in_progress", None)
    assert status["SEED"] == ("pending", None)  # "planning"
    assert status["CALIB-SWEEP-V2"] == ("blocked", "waiting for detector time")  # "on hold — ..."
    assert status["REPORT-TABLES-014"] == ("pending", None)  # "not started"
    assert status["LAZY-LOAD-007"] == ("done", None)  # "archived 2025-12-20 — see ..."
    # an unrecognised status never runs by accident: blocked, with the reason saying why, and reported
    assert status["HISTORY-015"][0] == "blocked" and "'🤔 unclear' is not recognised" in status["HISTORY-015"][1]
    assert any(n.kind is NoteKind.UNMAPPED and "🤔 unclear" in n.text for n in result.notes)
    # the prose after the dash stays in the item
    probe = ledger.get("PROBE-SWEEP-002")
    assert "Tasks 3.1/3.2 (config + helper) complete, Task 3.3 rerun pending" in probe.prose
    assert _by_id(result, "PROBE-SWEEP-002").status_from.startswith("Phase 3 in progress")


def test_priorities_map_in_order_and_unknown_ones_are_reported() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    ledger = parse_ledger(result.text)
    priority = {i.id: i.priority for i in ledger.items}
    assert priority["PROBE-SWEEP-002"] == 10 and priority["TF-RERUN-009"] == 10  # **Critical** (...), Critical
    assert priority["SIM-CORE-001"] == 20 and priority["OVERLAP-STUDY-006"] == 20  # **High** (...), High
    assert priority["LOSS-PARITY-003"] == 30 and priority["API-PARITY"] == 30
    assert priority["REPORT-TABLES-014"] == 40
    assert priority["HISTORY-015"] == 2  # a number is kept
    assert priority["CALIB-SWEEP-V2"] == 100 and priority["BACKEND-PARITY-010"] == 100  # TBD / none: the default
    assert any(n.kind is NoteKind.UNMAPPED and n.text == "- Priority: TBD (after triage)" for n in result.notes)
    assert "(the paper figure waits on it — `docs/strategy/roadmap.md`)" in ledger.get("PROBE-SWEEP-002").prose


def test_dependencies_become_the_ids_they_name_and_unknown_ids_are_reported() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    ledger = parse_ledger(result.text)
    deps = {i.id: i.depends_on for i in ledger.items}
    assert deps["PROBE-SWEEP-002"] == ("SIM-CORE-001",)  # "SIM-CORE-001 ✅ (simulator complete)"
    assert deps["STUDY-DOSE-004"] == ("SIM-CORE-001", "NORMALISER-FIX-005")
    assert deps["FORWARD-PARITY-008"] == ("BACKEND-PARITY-010", "COMPARE-FIX-011")  # items further down
    assert deps["CALIB-SWEEP-V2"] == ("SEED", "SIM-CORE-001")  # a lower-case id follows its new spelling
    assert deps["LOSS-PARITY-003"] == () and deps["NORMALISER-FIX-005"] == ()  # "None", "—"
    # an id inside a path (the item's own reports folder) and a struck-through one are no dependencies
    assert deps["OVERLAP-STUDY-006"] == ()
    assert result.unknown_ids == ("FINDING-PINN-013",)
    unmapped = [n.text for n in result.notes if n.kind is NoteKind.UNMAPPED]
    assert "- Depends on: seed, SIM-CORE-001, FINDING-PINN-013 (a finding, not an item)" in unmapped
    assert "- Depends on: legacy simulator scripts (`sim/old_forward.py`, `sim/noise.py`)" in unmapped
    # the source line stays, as prose, with its ✅ and its words
    assert "- Depends on: SIM-CORE-001 ✅ (simulator complete)" in ledger.get("PROBE-SWEEP-002").prose


def test_every_other_line_is_prose_and_collisions_with_harness_fields_are_renamed() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    ledger = parse_ledger(result.text)
    loss = ledger.get("LOSS-PARITY-003")
    assert loss.spec is None and dict(loss.fields).keys() == {"Status", "Priority"}
    assert "- Imported Spec: `docs/specs/losses.md` (Poisson)" in loss.prose
    assert "- Imported Status: pending (investigation)" in loss.prose
    assert "- Owner/Date: Codex/2026-01-25" in loss.prose
    assert "  - Decide whether to align the definitions or to document the difference." in loss.prose
    assert loss.prose.startswith("- Section: Active / Pending Initiatives\n")


def test_earlier_attempt_histories_stay_prose_and_never_become_attempt_lines() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    ledger = parse_ledger(result.text)
    history = ledger.get("HISTORY-015")
    assert history.attempts == () and history.attempts_line is None
    assert "### Attempts History (imported; not verified by the harness)" in history.prose
    assert "- 2025-12-01 first try: the sweep script crashed." in history.prose
    assert "  - *2026-01-12T10:30:00Z (COMPLETE):* **Result: ALL 41/41 TESTS PASSED (3.2s).** Initiative complete." \
        in ledger.get("SIM-CORE-001").prose


def test_diff_markers_are_removed_and_reported() -> None:
    source = _read(CURRENT)
    result = import_ledger(source, source=CURRENT.name)
    marked = [n for n, line in enumerate(source.splitlines(), 1) if _DIFF_MARKER.match(line)]
    assert len(marked) == 3
    notes = {n.line: n for n in result.notes if "diff marker" in n.message}
    assert sorted(notes) == marked and all(n.kind is NoteKind.CHANGED for n in notes.values())
    assert "-### " not in result.text and "\n-  - *" not in result.text
    assert "  - *2026-01-21T05:00:00Z (supervisor review):* Phase 1 COMPLETE" in \
        parse_ledger(result.text).get("PROBE-SWEEP-002").prose


def test_sections_and_text_between_items_move_to_the_preamble() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    preamble = result.text.split("\n## [", 1)[0]
    for heading in ("### Active / Pending Initiatives", "### Blocked Initiatives", "### Done / Archived Initiatives"):
        assert heading in preamble
    assert "_None right now._" in preamble and "*Full details in `docs/fix_plan_archive.md`" in preamble
    assert "Supervisor state: `focus=PROBE-SWEEP-002`" in preamble
    ledger = parse_ledger(result.text)
    assert "Supervisor state" not in ledger.items[-1].prose and "---" not in ledger.items[-1].prose
    assert _by_id(result, "BOOTSTRAP-000").section is None
    assert _by_id(result, "LAZY-LOAD-007").section == "Done / Archived Initiatives"
    assert ledger.get("LAZY-LOAD-007").prose.startswith("- Section: Done / Archived Initiatives\n")
    assert any(n.kind is NoteKind.MOVED and "Supervisor state" in n.text for n in result.notes)


def test_fenced_text_is_never_read_as_items_or_fields() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    ledger = parse_ledger(result.text)
    assert "NOT-AN-ITEM" not in [i.id for i in ledger.items]
    prose = ledger.get("NORMALISER-FIX-005").prose
    assert "```python\n## [NOT-AN-ITEM] a heading inside a fence\n### [ALSO-NOT-AN-ITEM] another one\n- Status: done\n```" \
        in prose


def test_odd_and_duplicate_ids_get_valid_unique_ids_and_are_reported() -> None:
    result = import_ledger(_read(CURRENT), source=CURRENT.name)
    renamed = [(i.source_id, i.id) for i in result.items if i.source_id != i.id]
    assert renamed == [("seed", "SEED"), ("calib sweep/v2", "CALIB-SWEEP-V2"), ("PROBE-SWEEP-002", "PROBE-SWEEP-002-2")]
    duplicate = next(i for i in result.items if i.id == "PROBE-SWEEP-002-2")
    assert duplicate.source_id == "PROBE-SWEEP-002"
    changed = {n.line: n.message for n in result.notes if n.kind is NoteKind.CHANGED}
    assert "PROBE-SWEEP-002-2" in changed[duplicate.line] and "line 41" in changed[duplicate.line]
    assert "untitled" in changed[_by_id(result, "NO-TITLE-016").line]


def test_the_archive_form_level_2_items_and_star_bullets() -> None:
    result = import_ledger(_read(ARCHIVE), source=ARCHIVE.name)
    ledger = parse_ledger(result.text)
    assert [(i.id, i.status, i.priority, i.depends_on) for i in ledger.items] == [
        ("EXPORT-TOOL-001", "pending", 30, ()),
        ("STUBS-002", "done", 100, ()),
        ("DOSE-OVERLAP-003", "done", 20, ()),  # "Phase F COMPLETE (...)": its first words decide; the table shows it
        ("EXPORT-FOLLOWUP-004", "pending", 3, ("EXPORT-TOOL-001", "STUBS-002")),
    ]
    assert "  * [2025-11-04T150500Z] Attempt #21 — path alignment plan (Mode: TDD Planning)." in \
        ledger.get("DOSE-OVERLAP-003").prose
    assert "    ## [INDENTED] four spaces in: not a fence in CommonMark, still prose" in ledger.get("DOSE-OVERLAP-003").prose


def test_the_next_item_is_actionable() -> None:
    ledger = parse_ledger(import_ledger(_read(CURRENT), source=CURRENT.name).text)
    selection = select_next(ledger, max_attempts=3)
    assert selection.item is not None and selection.item.id == "PROBE-SWEEP-002"
    pending_ready = [i.id for i in ledger.items if i.status == "pending"
                     and all(ledger.get(d).status == "done" for d in i.depends_on)]
    assert "REPORT-TABLES-014" in pending_ready


def test_crlf_and_a_bom_read_like_lf() -> None:
    source = _read(CURRENT)
    as_lf = import_ledger(source, source="x")
    as_crlf = import_ledger("\ufeff" + source.replace("\n", "\r\n"), source="x")
    assert as_crlf.text == as_lf.text and as_crlf.items == as_lf.items


def test_a_file_without_items_or_with_an_unclosed_fence_is_an_error() -> None:
    with pytest.raises(LedgerError, match=r"empty.md: no items"):
        import_ledger("# Fix Plan\n\n## Active\n", fmt=LedgerFormat.PTYCHOPINN, source="empty.md")
    broken = "### [A-1] a\n- Status: pending\n\n```\n### [B-2] b\n"
    with pytest.raises(LedgerError, match=r"broken.md:4: this code fence is never closed"):
        import_ledger(broken, fmt=LedgerFormat.PTYCHOPINN, source="broken.md")


def test_a_dependency_cycle_is_kept_and_lint_names_it() -> None:
    source = ("### [A-1] a\n- Depends on: B-2\n- Status: pending\n\n### [B-2] b\n- Depends on: A-1 ✅\n"
              "- Status: pending\n")
    result = import_ledger(source, fmt=LedgerFormat.PTYCHOPINN, source="cycle.md")
    assert [f.code for f in lint_text(result.text)] == ["dependency-cycle"]
