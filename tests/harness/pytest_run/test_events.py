"""The recorder's events read back (a torn last line is dropped, a torn middle line is an error) and folded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import SelectorError
from harness.pytest_run.events import error_lines, fold_events, read_events
from harness.pytest_run.results import Outcome, Phase


def report(nodeid: str, when: str, outcome: str, **more: object) -> dict:
    return {"event": "report", "nodeid": nodeid, "when": when, "outcome": outcome, **more}


def test_a_torn_last_line_is_dropped_and_a_torn_middle_line_is_an_error(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("the log\n")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"event": "collected", "nodeids": ["t.py::a"]}) + '\n{"event": "rep')
    assert read_events(events, log, ["pytest"], -9, True) == [{"event": "collected", "nodeids": ["t.py::a"]}]
    events.write_text('{"event": "rep\n' + json.dumps({"event": "finished"}) + "\n")
    with pytest.raises(SelectorError, match=r"unreadable line 1 .*\n--- log tail ---\nthe log"):
        read_events(events, log, ["pytest"], 1, False)
    assert read_events(tmp_path / "none.jsonl", log, ["pytest"], 4, False) == []
    with pytest.raises(SelectorError, match="did not load the harness recorder"):
        read_events(tmp_path / "none.jsonl", log, ["pytest"], 1, False)


def test_phases_fold_the_way_pytest_counts_them() -> None:
    events = [
        {"event": "collected", "nodeids": ["t.py::ok", "t.py::torn_down", "t.py::stopped", "t.py::never"]},
        report("t.py::ok", "setup", "passed"), report("t.py::ok", "call", "passed", duration_s=0.5),
        report("t.py::ok", "teardown", "passed"),
        report("t.py::torn_down", "setup", "passed"), report("t.py::torn_down", "call", "passed"),
        report("t.py::torn_down", "teardown", "failed", exc_type="OSError", message="OSError: port busy"),
        report("t.py::stopped", "setup", "passed"),
        {"event": "collectreport", "nodeid": "broken.py", "outcome": "failed", "exc_type": "ImportError",
         "message": "ImportError: no module\nmore"},
    ]
    collected, results, finished = fold_events(events)
    assert collected == ("t.py::ok", "t.py::torn_down", "t.py::stopped", "t.py::never") and not finished
    by_id = {r.nodeid: r for r in results}
    assert [r.nodeid for r in results] == ["broken.py", "t.py::ok", "t.py::torn_down", "t.py::stopped"]
    assert (by_id["t.py::ok"].outcome, by_id["t.py::ok"].duration_s) == (Outcome.PASSED, 0.5)
    assert (by_id["t.py::torn_down"].outcome, by_id["t.py::torn_down"].phase) == (Outcome.ERROR, Phase.TEARDOWN)
    assert by_id["t.py::stopped"].message == "did not finish (the run stopped inside this test)"
    assert (by_id["broken.py"].phase, by_id["broken.py"].message) == (Phase.COLLECT, "ImportError: no module")
    assert fold_events([{"event": "finished"}])[2]


def test_error_lines_join_a_conftest_import_error_with_its_exception(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("ImportError while loading conftest '/r/tests/conftest.py'.\n"
                   "tests/conftest.py:1: in <module>\n"
                   "E   ModuleNotFoundError: No module named 'nope'\n\n"
                   "ERROR:root:a test's own log line\n"
                   "ERROR: file or directory not found: tests/x.py\n")
    assert error_lines(log) == (
        "ImportError while loading conftest '/r/tests/conftest.py' -> ModuleNotFoundError: No module named 'nope'",
        "ERROR: file or directory not found: tests/x.py",
    )
