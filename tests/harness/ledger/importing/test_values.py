"""`harness.ledger.importing.values`: the spellings found in PtychoPINN ledgers, mapped one value at a time."""
from __future__ import annotations

import pytest

from harness.ledger.importing.values import IdIndex, find_dependencies, map_priority, map_status


@pytest.mark.parametrize(("raw", "status", "reason"), [
    ("done — All 23/23 torch runner tests PASSED. Fixture fix landed.", "done", None),
    ("Phase 6 in progress — Tasks 6.1/6.2 complete, Task 6.3 pending", "in_progress", None),
    ("in_progress — Task 1 complete; Task 2-3 in progress.", "in_progress", None),
    ("`in_progress`", "in_progress", None),
    ("active", "in_progress", None),
    ("pending (investigation)", "pending", None),
    ("planning", "pending", None),
    ("not started", "pending", None),
    ("ready_for_implementation", "pending", None),
    ("**G-scaled ✅ COMPLETE** — G-full remains blocked on BASELINE-001/002.", "done", None),
    ("superseded by REFACTOR-001", "done", None),
    ("archived 2025-10-20 — see `docs/archive.md`.", "done", None),
    ("Phase F COMPLETE (dense evidence captured). Phase G harness implemented", "done", None),
    ("blocked — awaiting FIX-TF-001.", "blocked", "awaiting FIX-TF-001."),
    ("blocked", "blocked", None),
    ("blocked (waiting on data)", "blocked", "waiting on data"),
    ("paused", "blocked", "paused"),
    ("on hold — waiting for detector time", "blocked", "waiting for detector time"),
])
def test_statuses(raw: str, status: str, reason: str | None) -> None:
    mapped = map_status(raw)
    assert (mapped.status, mapped.reason, mapped.recognised) == (status, reason, True)


@pytest.mark.parametrize("raw", ["", "cancelled — dropped", "🤔 unclear — ask", "needs triage"])
def test_an_unrecognised_status_blocks_the_item_and_says_so(raw: str) -> None:
    mapped = map_status(raw)
    assert mapped.status == "blocked" and not mapped.recognised
    assert "is not recognised; set Status by hand" in mapped.reason and "\n" not in mapped.reason


def test_the_status_words_are_what_decided() -> None:
    assert map_status("Phase 6 in progress — Tasks 6.1/6.2 complete").words == "Phase 6 in progress"
    assert map_status("**G-scaled ✅ COMPLETE** — G-full blocked").words == "G-scaled ✅ COMPLETE"


@pytest.mark.parametrize(("raw", "priority", "word"), [
    ("**Critical** (Main strategy execution — `docs/strategy.md`)", 10, "Critical"),
    ("Critical", 10, "Critical"),
    ("**High** (restores the grid workflow)", 20, "High"),
    ("High", 20, "High"),
    ("**Medium** (cross-backend comparability)", 30, "Medium"),
    ("**Low** (feature enhancement)", 40, "Low"),
    ("2", 2, "2"),
    ("-5", -5, "-5"),
    ("P1", 1, "P1"),
    ("TBD (after triage)", None, "TBD"),
    ("", None, ""),
])
def test_priorities(raw: str, priority: int | None, word: str) -> None:
    mapped = map_priority(raw)
    assert (mapped.priority, mapped.word) == (priority, word)


INDEX = IdIndex.of({"GRID-001": "GRID-001", "FIX-002": "FIX-002", "LAZY-003": "LAZY-003", "seed": "SEED",
                    "SEED": "SEED", "calib sweep/v2": "CALIB-SWEEP-V2", "STUDY-004": "STUDY-004"})


@pytest.mark.parametrize(("raw", "ids", "unknown"), [
    ("GRID-001 ✅ (test harness complete)", ("GRID-001",), ()),
    ("FIX-002 ✅ (complete), GRID-001 ✅ (complete)", ("FIX-002", "GRID-001"), ()),
    ("FIX-002 (Phase C guard + regression tests merged)", ("FIX-002",), ()),
    ("`spec-workflow.md` Resource Constraints; finding `PINN-CHUNKED-001`.", (), ("PINN-CHUNKED-001",)),
    ("artifacts under `plans/active/STUDY-004/reports/data/`; ~~LAZY-003~~ ✅ RESOLVED.", (), ()),
    ("seed, calib sweep/v2 and GRID-001.", ("SEED", "CALIB-SWEEP-V2", "GRID-001"), ()),
    ("GRID-001, GRID-001 again, NOPE-9", ("GRID-001",), ("NOPE-9",)),
])
def test_dependencies(raw: str, ids: tuple[str, ...], unknown: tuple[str, ...]) -> None:
    found = find_dependencies(raw, INDEX, own_id="OWN-000")
    assert (found.ids, found.unknown) == (ids, unknown)


def test_none_struck_and_self_references() -> None:
    for none in ("None", "—", "none (standalone)", "", "N/A"):
        assert find_dependencies(none, INDEX, "OWN-000").says_none
    struck = find_dependencies("~~LAZY-003~~ ✅ RESOLVED", INDEX, "OWN-000")
    assert struck.struck == ("LAZY-003",) and struck.ids == () and not struck.says_none
    itself = find_dependencies("STUDY-004 and GRID-001", INDEX, "STUDY-004")
    assert itself.names_itself and itself.ids == ("GRID-001",)
