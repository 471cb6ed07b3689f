from __future__ import annotations

from pathlib import Path

from harness.pytest_run.results import Outcome, Phase, PytestRun, TestResult, count_text, read_tail


def test_count_text_keeps_the_order_and_names_an_empty_count() -> None:
    assert count_text({"passed": 3, "failed": 1}) == "3 passed, 1 failed"
    assert count_text({}) == "no results"
    assert count_text({}, none="no tests ran") == "no tests ran"


def test_summary_and_tail(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    result = TestResult("t.py::test_a", Outcome.FAILED, Phase.CALL, "AssertionError", "assertion", "boom", 0.5)
    run = PytestRun("r", ("pytest",), tmp_path, 1, "tests failed", 1.25, False, (result,), ("t.py::test_a",),
                    log, tmp_path / "r.xml", tmp_path / "r.json")
    assert run.summary() == "1 failed; exit 1 (tests failed) in 1.2s"
    assert run.log_tail(2) == "line 98\nline 99" == read_tail(log, 2)
    assert read_tail(tmp_path / "missing.log", 3).startswith("(log ")
