"""The embedded demo runs the real loop offline: DEMO-001 goes GREEN, the scripted planner adds DEMO-002 through
the lint, DEMO-002's skip-only RED is rejected."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main


@pytest.mark.slow
def test_demo_runs_the_real_loop_and_says_where_everything_is(tmp_path: Path) -> None:
    target = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "harness", "demo", "--dir", str(target)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "DEMO-001 went RED at base and GREEN with the fix" in out
    assert "# [DEMO-001] Bridge accepts the canonical diffraction key: GREEN" in out  # the summary itself
    assert "refs/harness/failed/DEMO-002/1" in out
    assert "the planner added DEMO-002 through the lint" in out and "+## [DEMO-002]" in out  # the plan's diff

    ledger = load_ledger(target / "docs/fix_plan.md")
    assert ledger.get("DEMO-001").status == "done"
    assert ledger.get("DEMO-002").attempts[-1].outcome == "FAILED at red"
    saved = subprocess.run(["git", "show", "refs/harness/failed/DEMO-002/1:tests/test_count.py"], cwd=target,
                           capture_output=True, text=True, check=True).stdout
    assert "pytest.mark.skip" in saved
    subjects = subprocess.run(["git", "log", "--format=%s"], cwd=target, capture_output=True, text=True,
                              check=True).stdout.splitlines()
    assert subjects[1:3] == ["plan: add DEMO-002", "[DEMO-001] Bridge accepts the canonical diffraction key: GREEN"]
    assert main(["ledger", "-C", str(target), "verify"]) == 0


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path: Path, capsys) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    assert main(["demo", "--dir", str(tmp_path)]) == ExitCode.ERROR
    assert "not empty" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text() == "mine"
