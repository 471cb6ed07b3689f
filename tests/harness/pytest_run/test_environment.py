"""The environment a proof's pytest runs in: the operator's PYTEST_* and outcome-changing variables removed,
what `pytest.env` sets kept; a single run, and a whole `harness run` whose shell narrows the selection."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.main import main
from harness.pytest_run.environment import changes_a_run, pytest_environ, removed_variables
from harness.pytest_run.runner import run_pytest
from tests.conftest import git
from tests.harness.project import MUL_IMPL, MUL_TEST, apply_change, make_project


def test_what_changes_a_run_is_removed_and_what_pytest_env_sets_is_kept() -> None:
    shell = {"PYTEST_ADDOPTS": "-k x", "PYTEST_PLUGINS": "p", "PYTEST_XDIST_WORKER": "gw0", "PYTHONOPTIMIZE": "1",
             "PYTHONWARNINGS": "error", "PY_IGNORE_IMPORTMISMATCH": "1", "HARNESS_ISOLATE_FROM": "/elsewhere",
             "PYTHONPATH": "/src", "PY_COLORS": "1", "HOME": "/home/me"}
    configured = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_PLUGINS": "ours"}

    assert pytest_environ(shell, configured) == {"PYTHONPATH": "/src", "PY_COLORS": "1", "HOME": "/home/me",
                                                 "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_PLUGINS": "ours"}
    assert removed_variables(shell, configured) == (
        "HARNESS_ISOLATE_FROM", "PYTEST_ADDOPTS", "PYTEST_XDIST_WORKER", "PYTHONOPTIMIZE", "PYTHONWARNINGS",
        "PY_IGNORE_IMPORTMISMATCH")
    assert not changes_a_run("PYTHONPATH") and changes_a_run("PYTEST_TIMEOUT")


def test_a_run_ignores_the_shells_pytest_addopts_and_names_it(tmp_path: Path, monkeypatch) -> None:
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_a.py").write_text("def test_one():\n    pass\n\n\ndef test_two():\n    pass\n")
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k test_one --deselect test_a.py::test_two")

    run = run_pytest(("test_a.py",), cwd=suite, out_dir=tmp_path / "out", name="all",
                     env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert run.counts() == {"passed": 2}
    command = (tmp_path / "out" / "all.command.txt").read_text()
    assert "# removed from the harness's environment" in command and "PYTEST_ADDOPTS" in command

    configured = run_pytest(("test_a.py",), cwd=suite, out_dir=tmp_path / "out", name="configured",
                            env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTEST_ADDOPTS": "-k test_two"})
    assert [r.nodeid for r in configured.results] == ["test_a.py::test_two"]  # pytest.env's own is kept


@pytest.mark.parametrize("addopts", ["-k nothing_matches", "--deselect tests/test_mul.py::test_mul"])
def test_the_operators_pytest_addopts_does_not_change_a_proof(make_repo, monkeypatch, addopts: str) -> None:
    """Under the shell's PYTEST_ADDOPTS nothing (or everything but the RED test) would be selected; the proof
    is the same as without it, and attempt.json names the variable as removed."""
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    monkeypatch.setenv("PYTEST_ADDOPTS", addopts)

    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 0

    folder = repo / git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    record = json.loads((folder / "attempt.json").read_text())
    stages = {s["name"]: s for s in record["stages"]}
    assert stages["red"]["ok"] and stages["red"]["selectors"][0]["failing"]
    assert stages["green"]["counts"] == {"passed": 1}
    assert stages["full_suite"]["counts"] == {"passed": 2}
    assert "PYTEST_ADDOPTS" in record["pytest_environment"]["removed"]
    assert record["pytest_environment"]["set_by_harness_yaml"] == ["PYTEST_DISABLE_PLUGIN_AUTOLOAD",
                                                                   "PYTEST_XDIST_AUTO_NUM_WORKERS"]
    assert "Removed from pytest's environment: " in (folder / "analysis" / "summary.md").read_text()
