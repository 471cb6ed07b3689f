"""The gates on real pytest runs: the full suite against the known-failures file, or with none configured;
the collect gate, in one pytest run where the selectors allow it."""
from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType

from harness.proof.stage_records import FullSuiteDetail
from harness.proof.suite_gates import collect_gate, full_suite_gate
from harness.pytest_run.runner import PytestSettings, parse_selector

PYTEST = PytestSettings((sys.executable, "-m", "pytest"),
                        MappingProxyType({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}), 120)


def _suite(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_suite.py").write_text(
        "def test_ok():\n    pass\n\n\ndef test_old():\n    assert False\n")
    (root / "ci").mkdir()
    (root / "ci" / "known_failures.txt").write_text("tests/test_suite.py::test_old\n")
    return root


def test_full_suite_tolerates_the_known_failures_of_the_file(tmp_path: Path) -> None:
    cwd = _suite(tmp_path / "project")
    stage = full_suite_gate(cwd=cwd, out_dir=tmp_path / "out", args=(),
                            known_failures="ci/known_failures.txt", pytest=PYTEST)
    assert stage.ok and stage.name == "full_suite"
    assert stage.detail == FullSuiteDetail(new_failures=(), tolerated=("tests/test_suite.py::test_old",),
                                           now_passing=(), known_failures_file="ci/known_failures.txt")


def test_full_suite_without_a_known_failures_file_configured_tolerates_nothing(tmp_path: Path) -> None:
    cwd = _suite(tmp_path / "project")
    stage = full_suite_gate(cwd=cwd, out_dir=tmp_path / "out", args=(), known_failures=None, pytest=PYTEST)
    assert not stage.ok and "1 new failure" in stage.reason
    assert stage.detail == FullSuiteDetail(new_failures=("tests/test_suite.py::test_old",), tolerated=(),
                                           now_passing=(), known_failures_file=None)


def _collect_project(root: Path) -> Path:
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "test_a.py").write_text("import pytest\n\n\n@pytest.mark.parametrize('n', [1, 2])\n"
                                             "def test_one(n):\n    pass\n\n\ndef test_two():\n    pass\n")
    (root / "tests" / "unit" / "test_b.py").write_text("class TestB:\n    def test_b(self):\n        pass\n")
    return root


def _logs(out: Path) -> list[str]:
    return sorted(p.name for p in out.glob("*.log"))


def test_selectors_that_are_paths_and_node_ids_collect_in_one_run_each_credited_with_its_own_tests(
        tmp_path: Path) -> None:
    cwd = _collect_project(tmp_path / "project")
    raw = ("tests/test_a.py::test_one", "tests/unit", "./tests/test_a.py::test_two tests/unit/test_b.py::TestB")
    stage = collect_gate([parse_selector(r) for r in raw], cwd=cwd, out_dir=tmp_path / "out", pytest=PYTEST)
    assert stage.ok, stage.reason
    assert _logs(tmp_path / "out") == ["collect.log"]  # one pytest start, not one per selector
    assert [o.run.collected for o in stage.outcomes] == [
        ("tests/test_a.py::test_one[1]", "tests/test_a.py::test_one[2]"),
        ("tests/unit/test_b.py::TestB::test_b",),
        ("tests/unit/test_b.py::TestB::test_b", "tests/test_a.py::test_two")]  # pytest's order
    assert stage.reason == ("collect: tests/test_a.py::test_one selects 2 tests; collect: tests/unit selects 1 test; "
                            f"collect: {raw[2]} selects 2 tests")


def test_a_selector_that_collects_nothing_is_named_by_its_own_run(tmp_path: Path) -> None:
    cwd = _collect_project(tmp_path / "project")
    selectors = [parse_selector("tests/test_a.py"), parse_selector("tests/test_a.py::test_gone")]
    stage = collect_gate(selectors, cwd=cwd, out_dir=tmp_path / "out", pytest=PYTEST)
    assert not stage.ok
    assert "tests/test_a.py::test_gone" in stage.reason and "tests/test_a.py selects 3 tests" not in stage.reason
    assert _logs(tmp_path / "out") == ["collect-1.log", "collect-2.log", "collect.log"]  # the doubt settled apart


def test_a_selector_with_options_collects_in_its_own_run(tmp_path: Path) -> None:
    cwd = _collect_project(tmp_path / "project")
    selectors = [parse_selector("tests/test_a.py -k two"), parse_selector("tests/unit")]
    stage = collect_gate(selectors, cwd=cwd, out_dir=tmp_path / "out", pytest=PYTEST)
    assert stage.ok and stage.outcomes[0].run.collected == ("tests/test_a.py::test_two",)
    assert _logs(tmp_path / "out") == ["collect-1.log", "collect-2.log"]
