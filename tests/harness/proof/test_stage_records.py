"""The stage records: pytest settings from the config, isolation for worktree runs, counts, skipped stages."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.config import Config, PytestConfig
from harness.proof.stage_records import SelectorOutcome, StageResult, skipped_stage
from harness.proof.verdicts import Gate, Verdict
from harness.pytest_run.runner import ISOLATE_ENV, PytestRun, PytestSettings, Selector


def test_settings_come_from_the_config_and_isolation_leaves_the_original_alone(tmp_path: Path) -> None:
    config = Config(pytest=PytestConfig(env={"A": "1"}, timeout_s=7))
    settings = PytestSettings.from_config(config)
    assert settings.command[0] == sys.executable and settings.timeout_s == 7
    assert dict(settings.env) == {"A": "1"}
    isolated = settings.isolated_from(tmp_path)
    assert dict(isolated.env) == {"A": "1", ISOLATE_ENV: str(tmp_path)}
    assert dict(settings.env) == {"A": "1"} and isolated.command == settings.command
    with pytest.raises(TypeError):
        settings.env["B"] = "2"  # type: ignore[index]


def _run(tmp_path: Path, collected: tuple[str, ...]) -> PytestRun:
    return PytestRun(name="x", command=("pytest",), cwd=tmp_path, returncode=0, exit_meaning="ok",
                     duration_s=1.0, timed_out=False, results=(), collected=collected,
                     log_path=tmp_path / "x.log", junit_path=tmp_path / "x.xml", results_path=tmp_path / "x.json")


def test_collect_counts_what_was_collected_and_a_skipped_stage_holds(tmp_path: Path) -> None:
    verdict = Verdict(Gate.COLLECT, "tests/a.py", True, "collect: tests/a.py selects 2 tests")
    outcome = SelectorOutcome(Selector("tests/a.py", ("tests/a.py",)), _run(tmp_path, ("a::x", "a::y")), True,
                              verdict.reason, verdict)
    assert StageResult("collect", True, "ok", (outcome,)).counts == {"collected": 2}
    assert StageResult("collect", True, "no selectors").counts == {}
    skipped = skipped_stage("red", "not required: Mode chore items skip the RED proof")
    assert skipped.ok and skipped.skipped and skipped.detail is None
    assert skipped.reason == "red: not required: Mode chore items skip the RED proof"
