"""The selectors page model: a strip per selector, regressions judged as `harness selectors run` judges them."""
from __future__ import annotations

from pathlib import Path

from harness.gitops import CommitSummary
from harness.ledger import parse_ledger
from harness.selectors.history import History, RunRecord
from harness.selectors.registry import build_registry
from harness.webreport.paths import Linker
from harness.webreport.selector_model import MAX_RUNS, selectors_model

LEDGER = """# Fix Plan

## [A-1] a
- RED: tests/test_a.py
- Regression: tests/test_b.py

## [B-2] b
- Regression: tests/test_c.py
- Regression: tests/test_d.py
"""


def history(*runs: dict[str, str]) -> History:
    records = tuple(RunRecord(f"run{i}", f"2026-01-0{i + 1}T00:00:00Z", f"{i:040x}", False, f"plans/runs/run{i}",
                              {sel: {"status": status, "counts": {status: 1}} for sel, status in run.items()}, i)
                    for i, run in enumerate(runs))
    return History(Path("h.jsonl"), records, ())


def model(hist: History, tmp_path: Path):
    registry = build_registry(parse_ledger(LEDGER))
    commits = {r.commit: CommitSummary(r.commit, r.started, f"subject {r.run}") for r in hist.records}
    return selectors_model(registry, hist, commits, Linker(tmp_path, tmp_path / "site"),
                           lambda page, rel: f"../{rel}" if rel.endswith("run1/summary.md") else None,
                           "plans/selectors/history.jsonl", ("a problem",))


def test_regressions_come_first_and_mark_where_they_began(tmp_path: Path) -> None:
    hist = history(
        {"tests/test_a.py": "passed", "tests/test_b.py": "failed", "tests/test_c.py": "passed"},
        {"tests/test_a.py": "failed", "tests/test_b.py": "failed", "tests/test_c.py": "no_tests"},
        {"tests/test_a.py": "error", "tests/test_b.py": "failed", "tests/test_c.py": "failed"},
    )
    m = model(hist, tmp_path)
    assert [(r.raw, r.regression, r.since, r.last_status) for r in m.rows] == [
        ("tests/test_a.py", True, "run1", "error"),  # passed, then failing since run1
        ("tests/test_c.py", True, "run2", "failed"),  # a no-tests run continues the streak; it fails at run2
        ("tests/test_b.py", False, "", "failed"),  # never passed: still failing, not a regression
        ("tests/test_d.py", False, "", "never run"),
    ]
    a = m.rows[0]
    assert [c.status for c in a.cells] == ["passed", "failed", "error"]
    assert [c.breaks for c in a.cells] == [False, True, False]
    assert a.cells[1].href == "selectors.html#run-2" and a.cells[1].title == f"run1 at {1:040x}"[:18] + ": failed (1 failed)"
    assert [c.status for c in m.rows[3].cells] == ["absent"] * 3
    assert m.regressions == 2 and m.problems == ("a problem",)
    assert [(r.anchor, r.subject, r.results.href) for r in m.runs] == [
        ("run-1", "subject run0", None), ("run-2", "subject run1", "../plans/runs/run1/summary.md"),
        ("run-3", "subject run2", None)]
    assert [link.text for link in a.named_by] == ["RED A-1"] and a.named_by[0].href == "items/A-1.html"


def test_only_the_last_runs_are_shown_but_all_count(tmp_path: Path) -> None:
    runs = [{"tests/test_a.py": "passed"}] + [{"tests/test_a.py": "failed"}] * (MAX_RUNS + 5)
    m = model(history(*runs), tmp_path)
    a = next(r for r in m.rows if r.raw == "tests/test_a.py")
    assert m.runs_left_out == 6 and len(m.runs) == len(a.cells) == MAX_RUNS
    assert a.regression and a.since == "run1" and not any(c.breaks for c in a.cells)  # it began off-screen
