"""RED and GREEN proof on real pytest runs: one process per selector, each judged on its own."""
from __future__ import annotations

import sys
from pathlib import Path
from types import MappingProxyType

from harness.proof.red_green import prove_green, prove_red, run_each_selector
from harness.proof.verdicts import Verdict, red_verdict
from harness.pytest_run.runner import PytestSettings, parse_selector

PYTEST = PytestSettings((sys.executable, "-m", "pytest"),
                        MappingProxyType({"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}), 120)


def _project(root: Path) -> Path:
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_a.py").write_text(
        "def test_passes():\n    pass\n\n\ndef test_fails():\n    assert False\n")
    return root


def test_each_selector_runs_in_its_own_process_and_the_first_failure_is_the_reason(tmp_path: Path) -> None:
    cwd, out = _project(tmp_path / "p"), tmp_path / "out"
    selectors = (parse_selector("tests/test_a.py::test_fails"),
                 parse_selector("tests/test_a.py::test_passes"))
    stage = run_each_selector("red", selectors, cwd=cwd, out_dir=out, verdict=red_verdict, pytest=PYTEST)
    assert [o.run.name for o in stage.outcomes] == ["red-1", "red-2"]
    assert (out / "red-1.log").is_file() and (out / "red-2.log").is_file()
    assert [o.ok for o in stage.outcomes] == [True, False] and not stage.ok
    assert stage.reason == stage.outcomes[1].reason
    assert "tests/test_a.py::test_passes passes without the change" in stage.reason
    assert all(isinstance(o.verdict, Verdict) and o.verdict.ok == o.ok for o in stage.outcomes)
    assert stage.counts == {"passed": 1, "failed": 1}


def test_red_needs_test_changes_and_selectors_and_green_needs_selectors(tmp_path: Path) -> None:
    selectors = (parse_selector("tests/test_a.py::test_fails"),)
    no_tests = prove_red(selectors, worktree=tmp_path, out_dir=tmp_path / "out", pytest=PYTEST,
                         has_test_changes=False)
    assert not no_tests.ok and "no test-file changes" in no_tests.reason and not no_tests.outcomes
    nothing = prove_red((), worktree=tmp_path, out_dir=tmp_path / "out", pytest=PYTEST, has_test_changes=True)
    assert not nothing.ok and nothing.reason == "RED not proven: the item names no RED selector"
    green = prove_green((), cwd=tmp_path, out_dir=tmp_path / "out", pytest=PYTEST)
    assert not green.ok and green.reason == "GREEN not proven: the item names no RED selector"
