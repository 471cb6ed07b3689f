"""The page model: index rows, counts and links; each attempt's reason, stages, counts, evidence links."""
from __future__ import annotations

from pathlib import Path

import pytest
from markupsafe import Markup, escape

from harness.ledger import parse_ledger
from harness.webreport.evidence_files import Evidence, State
from harness.webreport.model import (
    AttemptFacts,
    Link,
    PatchText,
    StageRow,
    attempt_view,
    escaped,
    index_model,
    item_model,
)
from harness.webreport.paths import Linker

FOLDER = "plans/active/A/reports/2026-01-02T000000Z/a"
LEDGER = f"""# Fix Plan

## [A-1] First <thing>
- Status: done
- Priority: 2
- Initiative: A
- Spec: docs/spec.md#part
- RED: tests/test_a.py::test_one
- Custom: kept as written

Prose *here*.

### Attempts History
- 2026-01-01T10:00:00Z · #1 · FAILED at red · 0123456789 · {FOLDER}/analysis/summary.md
- 2026-01-02T10:00:00Z · #2 · GREEN · 0123456789 · {FOLDER}/analysis/summary.md

## [B-2] Second
- Status: waiting
- Depends-On: A-1, NOPE-9

### Attempts History
- 2026-01-03T10:00:00Z · #1 · ABORTED at agent · abcdef1234 · {FOLDER}/analysis/summary.md

## [C-3] Third
"""
RECORD = {
    "outcome": "FAILED", "failed_stage": "red", "duration_s": 12.5,
    "reason": "RED not proven: tests/test_a.py::test_one only skipped",
    "stages": [
        {"name": "collect", "ok": True, "skipped": False, "reason": "collect: 1 test", "duration_s": 1.0,
         "counts": {"collected": 1}, "selectors": [{"log": "collect/collect.log", "junit": "collect/collect.junit.xml"}]},
        {"name": "red", "ok": False, "skipped": False, "reason": "RED not proven", "duration_s": 2.25,
         "counts": {"skipped": 1}, "selectors": [{"log": "red/red.log", "junit": "../../escape.xml"}]},
        "not a stage", {"name": 5, "counts": "many", "selectors": "none"},
    ],
    "not_run": ["green", "full_suite", 7],
    "agent": [{"stage": "agent", "log": "agent/agent.log", "prompt": "agent/agent.prompt.md", "duration_s": 3}],
}
FILES = frozenset({"analysis/summary.md", "attempt.json", "SHA256SUMS", "collect/collect.log",
                   "collect/collect.junit.xml", "red/red.log.gz", "agent/agent.log"})


def linker(tmp_path: Path) -> Linker:
    (tmp_path / "docs").mkdir(exist_ok=True)
    (tmp_path / "docs/spec.md").write_text("spec")
    return Linker(tmp_path, tmp_path / "plans" / "report")


def evidence(record: dict | None, state: State = State.VERIFIED, problems: tuple[str, ...] = ()) -> Evidence:
    return Evidence(f"{FOLDER}/analysis/summary.md", FOLDER, f"{FOLDER}/analysis/summary.md", state, problems,
                    FILES, record, None if record is not None else "attempt.json is missing")


def test_index_rows_counts_and_dependencies(tmp_path: Path) -> None:
    index = index_model(parse_ledger(LEDGER), linker(tmp_path))
    a, b, c = index.rows
    assert (a.id, a.title, a.href, a.status, a.priority, a.attempts) == ("A-1", "First <thing>", "items/A-1.html",
                                                                          "done", 2, 2)
    assert (a.last_outcome, a.last_kind, a.last_when) == ("GREEN", "green", "2026-01-02T10:00:00Z")
    assert (b.status, b.status_known, b.last_kind) == ("waiting", False, "aborted")
    assert b.depends == (Link("A-1", "items/A-1.html"), Link("NOPE-9", None, "NOPE-9 is not an item of the ledger"))
    assert (c.attempts, c.last_outcome, c.last_kind, c.initiative) == (0, None, "none", "C-3")
    assert index.counts == (("pending", 1), ("in_progress", 0), ("done", 1), ("blocked", 0), ("waiting", 1))
    assert index.initiatives == ("A", "B-2", "C-3") and index.attempts == 3
    assert [bar.kind for bar in index.chart.bars] == ["failed", "green", "aborted"]


def test_a_failed_attempt_shows_its_reason_stages_and_files(tmp_path: Path) -> None:
    ledger = parse_ledger(LEDGER)
    attempt = ledger.get("A-1").attempts[0]
    facts = AttemptFacts(evidence(RECORD), True, ("f" * 40,), PatchText("Change saved on x", "+a\n", 1, False), "")
    view = attempt_view(attempt, facts, linker(tmp_path), "items/A-1.html")
    assert (view.kind, view.failed_stage, view.duration) == ("failed", "red", "12.5 s")
    assert view.reason == "RED not proven: tests/test_a.py::test_one only skipped"
    assert (view.red_counts, view.green_counts) == ("1 skipped", "not run")
    up = f"../../../{FOLDER}"
    assert view.files == (Link("analysis/summary.md", f"{up}/analysis/summary.md"),
                          Link("attempt.json", f"{up}/attempt.json"), Link("SHA256SUMS", f"{up}/SHA256SUMS"))
    collect, red, bad, agent, green, full = view.stages
    assert (collect.name, collect.result, collect.duration, collect.counts) == ("collect", "passed", "1.0 s",
                                                                                 "1 collected")
    assert red.links == (Link("red/red.log.gz", f"{up}/red/red.log.gz"),  # the gzipped form, as stored
                         Link("../../escape.xml", None, "not linked: the path leaves the evidence folder"))
    assert (bad.name, bad.result, bad.counts, bad.links) == ("?", "failed", "", ())  # wrong types: ignored
    assert agent.links == (Link("agent/agent.log", f"{up}/agent/agent.log"),
                           Link("agent/agent.prompt.md", None, "not in the evidence folder"))
    assert [(s.name, s.result) for s in (green, full)] == [("GREEN", "not run"), ("full-suite gate", "not run")]
    assert view.change_caption == "Change saved on x" and "+a" in view.change_html


def test_an_attempt_without_a_record_says_why(tmp_path: Path) -> None:
    attempt = parse_ledger(LEDGER).get("B-2").attempts[0]
    facts = AttemptFacts(evidence(None, State.MISSING, (f"evidence folder {FOLDER} is missing",)), False, (),
                         None, "no diff: the attempt's work was not saved on a ref")
    view = attempt_view(attempt, facts, linker(tmp_path), "items/B-2.html")
    assert view.reason == "unknown: attempt.json is missing"
    assert (view.kind, view.failed_stage, view.base_known, view.recorded_in) == ("aborted", "agent", False, ())
    assert view.stages == () and view.change_html is None
    assert view.change_note == "no diff: the attempt's work was not saved on a ref"


def test_an_item_page_lists_fields_prose_and_attempts_newest_first(tmp_path: Path) -> None:
    ledger = parse_ledger(LEDGER)
    item = ledger.get("A-1")
    facts = {a.line: AttemptFacts(evidence({"reason": "all stages passed"}), True, (), None, "none")
             for a in item.attempts}
    model = item_model(item, frozenset(ledger.ids()), facts, linker(tmp_path), "docs")
    assert model.page == "items/A-1.html"
    fields = dict(model.fields)
    assert "Status" not in fields
    assert fields["Spec"] == (Link("docs/spec.md#part", "../../../docs/spec.md#part"),)
    assert fields["RED"] == (Link("tests/test_a.py::test_one", None),)
    assert fields["Custom"] == (Link("kept as written", None),)
    assert str(model.prose) == "<p>Prose <em>here</em>.</p>\n"
    assert [a.number for a in model.attempts] == [2, 1]


def test_links_render_escaped() -> None:
    assert Link('a"<b>', 'x" onclick="y', 'n"<').__html__() == (
        '<a href="x&#34; onclick=&#34;y" title="n&#34;&lt;">a&#34;&lt;b&gt;</a>')
    assert Link("<t>", None, "why").__html__() == '<span class="unlinked" title="why">&lt;t&gt;</span>'
    assert Link("<t>", None).__html__() == "&lt;t&gt;"


def test_stage_rows_render_escaped() -> None:
    row = StageRow("RED", "not run", "1.0 s", "1 <failed>", "<script>x</script>", (Link("a<b", "a%3Cb"),))
    assert row.__html__() == ('<tr class="r-not-run"><td>RED</td><td>not run</td><td class="num">1.0 s</td>'
                              '<td>1 &lt;failed&gt;</td><td class="reason">&lt;script&gt;x&lt;/script&gt;</td>'
                              '<td><a href="a%3Cb">a&lt;b</a></td></tr>')


def test_an_attempt_s_stage_rows_are_its_rows_one_a_line(tmp_path: Path) -> None:
    attempt = parse_ledger(LEDGER).get("A-1").attempts[0]
    view = attempt_view(attempt, AttemptFacts(evidence(RECORD), True, (), None, ""), linker(tmp_path),
                        "items/A-1.html")
    assert view.stage_rows == "\n".join(row.__html__() for row in view.stages)
    assert view.stage_rows.count("<tr ") == len(view.stages) == 6
    assert isinstance(view.stage_rows, Markup)  # already escaped, row by row: the template adds nothing


@pytest.mark.parametrize("text", ["<script>", 'a"b', "it's & more", "plain", ""])
def test_remembered_escapes_are_markupsafe_s(text: str) -> None:
    assert escaped(text) == str(escape(text))
    assert escaped(text) == str(escape(text))  # the second answer comes from the cache
