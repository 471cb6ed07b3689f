"""The full suite's worker count: xdist when it can load, the user's own choice left alone."""
from __future__ import annotations

import sys
from pathlib import Path

from harness.pytest_run import xdist_jobs
from harness.pytest_run.xdist_jobs import full_suite_args, xdist_available


def test_auto_adds_xdist_when_this_interpreter_has_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(xdist_jobs, "xdist_available", lambda command, cwd: True)
    assert full_suite_args(["-q"], "auto", [sys.executable, "-m", "pytest"], tmp_path) == (
        ("-p", "xdist", "-n", "auto", "-q"), "pytest-xdist, -n auto")
    assert full_suite_args([], 3, [sys.executable], tmp_path)[0] == ("-p", "xdist", "-n", "3")


def test_one_job_or_an_explicit_choice_is_left_alone(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(xdist_jobs, "xdist_available", lambda command, cwd: True)
    for args in (["-n", "2"], ["-n2"], ["--numprocesses=4"], ["-p", "no:xdist"]):
        assert full_suite_args(args, "auto", [sys.executable], tmp_path) == (tuple(args), "")
    assert full_suite_args(["-q"], 1, [sys.executable], tmp_path) == (("-q",), "")


def test_without_xdist_the_suite_runs_in_one_process_and_says_so(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(xdist_jobs, "xdist_available", lambda command, cwd: False)
    assert full_suite_args(["-q"], "auto", [sys.executable], tmp_path) == (
        ("-q",), "pytest-xdist is not installed, so the suite ran in one process")


def test_xdist_is_probed_through_another_pytest_command(tmp_path: Path) -> None:
    xdist_available.cache_clear()
    assert xdist_available((sys.executable,), str(tmp_path)) is True  # the test extra installs it here
    missing = tmp_path / "pytest-without-xdist"
    missing.write_text("#!/bin/sh\nexit 4\n")
    missing.chmod(0o755)
    assert xdist_available((str(missing),), str(tmp_path)) is False
    assert xdist_available((str(tmp_path / "no-such-program"),), str(tmp_path)) is False
