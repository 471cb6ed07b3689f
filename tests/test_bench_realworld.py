"""benchmarks/bench_realworld.py reads BugsInPy's bug.info and run_test.sh into commits and pytest node ids
(inline text: no network, no fetched data)."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports results_file beside it
    spec = importlib.util.spec_from_file_location("bench_realworld", BENCHMARKS / "bench_realworld.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_realworld", module)  # its dataclasses look themselves up
    spec.loader.exec_module(module)
    return module


def test_bug_info_fields_are_read_with_or_without_a_final_newline(bench: ModuleType) -> None:
    text = ('python_version="3.7.0"\nbuggy_commit_id="2ced7a7f"\nfixed_commit_id="444908ce"\n'
            'test_file="tests/shells/test_bash.py;tests/shells/test_zsh.py"')
    fields = bench.parse_bug_info(text)
    assert (fields["buggy_commit_id"], fields["fixed_commit_id"]) == ("2ced7a7f", "444908ce")
    assert fields["test_file"] == "tests/shells/test_bash.py;tests/shells/test_zsh.py"
    with pytest.raises(ValueError, match="fixed_commit_id"):
        bench.parse_bug_info('buggy_commit_id="abc"\ntest_file="t.py"\n')


def test_pytest_lines_give_their_node_ids_in_order_once(bench: ModuleType) -> None:
    text = ("pytest tests/test_types.py::TestCorrectedCommand::test_equality\n"
            "pytest -q -s tests/test_types.py::TestCorrectedCommand::test_hashable\n"
            "python3 -m pytest tests/test_types.py::TestCorrectedCommand::test_equality\n")
    assert bench.parse_run_test(text, ["tests/test_types.py"]) == (
        "tests/test_types.py::TestCorrectedCommand::test_equality",
        "tests/test_types.py::TestCorrectedCommand::test_hashable")


def test_unittest_ids_become_node_ids_of_the_bugs_test_file(bench: ModuleType) -> None:
    text = ("python -m unittest -q test.test_utils.TestUtil.test_js_to_json_edgecases "
            "test.test_utils.TestUtil.test_js_to_json_realworld;\n")
    assert bench.parse_run_test(text, ["test/test_utils.py"]) == (
        "test/test_utils.py::TestUtil::test_js_to_json_edgecases",
        "test/test_utils.py::TestUtil::test_js_to_json_realworld")
    assert bench.unittest_to_nodeid("test.sub.test_x.TestA.test_b", []) == "test/sub/test_x.py::TestA::test_b"
    with pytest.raises(ValueError, match="names no test"):
        bench.parse_run_test("#!/bin/bash\necho hi\n", [])
