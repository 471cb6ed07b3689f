"""The gates on real pytest runs: the full suite against the known-failures file, or with none configured."""
from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType

from harness.proof.stage_records import FullSuiteDetail
from harness.proof.suite_gates import full_suite_gate
from harness.pytest_run.runner import PytestSettings

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
