"""Held-out acceptance tests: a gamed fix passes its own RED test and is refused by a test the agent never
sees; the real fix passes; no held-out byte reaches the tree, a commit, the evidence or the prompt."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.agent.prompt import build_prompt_context
from harness.errors import ExitCode
from harness.ledger import parse_ledger
from harness.main import main
from tests.conftest import git, write_files
from tests.harness.project import HARNESS_YAML, apply_change, head_subject, make_project, status_porcelain

LEDGER = """\
# Fix Plan

## [CALC-003] calc gains plus
- Status: pending
- RED: tests/test_plus.py::test_plus
- Acceptance: tests/acceptance/test_plus_holdout.py
"""
PLUS_TEST = "from pkg.calc import plus\n\n\ndef test_plus():\n    assert plus(2, 3) == 5\n"
GAMED = "def add(a, b):\n    return a + b\n\n\ndef plus(a, b):\n    return 5 if (a, b) == (2, 3) else a - b\n"
REAL = "def add(a, b):\n    return a + b\n\n\ndef plus(a, b):\n    return a + b\n"
SECRET = "plus(10, 4) == 14"
HOLDOUT = {"tests/acceptance/test_plus_holdout.py":
           f"from pkg.calc import plus\n\n\ndef test_plus_in_general():\n    assert {SECRET}\n\n\n"
           "def test_plus_of_zero():\n    assert plus(7, 0) == 7\n"}


@pytest.fixture
def repo(make_repo, tmp_path: Path) -> Path:
    write_files(tmp_path / "holdout", HOLDOUT)
    return make_project(make_repo, ledger=LEDGER, extra={"harness.yaml": HARNESS_YAML + "holdout:\n  dir: ../holdout\n"})


def run(repo: Path) -> tuple[int, dict, Path]:
    code = main(["run", "-C", str(repo), "--no-agent", "CALC-003"])
    folder = repo / git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    return code, json.loads((folder / "attempt.json").read_text()), folder


def assert_nothing_held_out_leaked(repo: Path, evidence: Path) -> None:
    assert not (repo / "tests" / "acceptance").exists()
    assert "test_plus_holdout" not in git(repo, "log", "--all", "--name-only", "--format=")
    assert SECRET not in git(repo, "log", "--all", "-p")
    for file in evidence.rglob("*"):
        if file.is_file():
            assert SECRET not in file.read_text(errors="replace"), file


def test_a_gamed_fix_passes_its_own_test_and_is_refused_by_the_held_out_one(repo: Path) -> None:
    apply_change(repo, {"tests/test_plus.py": PLUS_TEST, "pkg/calc.py": GAMED})

    code, record, evidence = run(repo)

    assert code == 1
    assert head_subject(repo) == "[CALC-003] calc gains plus: FAILED at acceptance"
    green = next(s for s in record["stages"] if s["name"] == "green")
    assert green["ok"]  # its own test passes
    assert record["reason"] == ("acceptance: 1 held-out test(s) did not pass: "
                                "tests/acceptance/test_plus_holdout.py::test_plus_in_general failed")
    stage = next(s for s in record["stages"] if s["name"] == "acceptance")
    assert stage["acceptance"] == [
        {"nodeid": "tests/acceptance/test_plus_holdout.py::test_plus_in_general", "outcome": "failed"},
        {"nodeid": "tests/acceptance/test_plus_holdout.py::test_plus_of_zero", "outcome": "passed"}]
    assert stage["holdout_files"] == 1 and stage["selectors"] == []
    assert json.loads((evidence / "acceptance" / "acceptance.json").read_text())["holdout_files"] == 1
    assert status_porcelain(repo) == ""
    assert_nothing_held_out_leaked(repo, evidence)


def test_the_real_fix_passes_and_no_held_out_file_is_committed(repo: Path) -> None:
    apply_change(repo, {"tests/test_plus.py": PLUS_TEST, "pkg/calc.py": REAL})

    code, record, evidence = run(repo)

    assert code == 0, record["reason"]
    assert record["reason"] == "all stages passed"
    stage = next(s for s in record["stages"] if s["name"] == "acceptance")
    assert stage["ok"] and stage["reason"] == "acceptance: all 2 held-out test(s) pass"
    assert set(git(repo, "show", "--name-only", "--format=", "HEAD").split()) >= {"pkg/calc.py", "tests/test_plus.py"}
    summary = (evidence / "analysis" / "summary.md").read_text()
    assert "`tests/acceptance/test_plus_holdout.py::test_plus_in_general` passed" in summary
    assert status_porcelain(repo) == ""
    assert_nothing_held_out_leaked(repo, evidence)


def test_a_missing_holdout_dir_is_a_clear_error_before_anything_is_recorded(repo: Path, tmp_path: Path, capsys) -> None:
    (tmp_path / "holdout" / "tests" / "acceptance" / "test_plus_holdout.py").unlink()
    for folder in ("tests/acceptance", "tests", ""):
        (tmp_path / "holdout" / folder).rmdir()
    apply_change(repo, {"tests/test_plus.py": PLUS_TEST, "pkg/calc.py": REAL})
    head = git(repo, "rev-parse", "HEAD")

    assert main(["run", "-C", str(repo), "--no-agent", "CALC-003"]) == ExitCode.ERROR

    err = capsys.readouterr().err
    assert "holdout.dir '../holdout'" in err and "is not a folder" in err
    assert git(repo, "rev-parse", "HEAD") == head  # no attempt was recorded


def test_a_holdout_dir_inside_the_repository_is_refused(make_repo, capsys) -> None:
    repo = make_project(make_repo, ledger=LEDGER, extra={
        "harness.yaml": HARNESS_YAML + "holdout:\n  dir: secret\n", **{f"secret/{k}": v for k, v in HOLDOUT.items()}})
    apply_change(repo, {"tests/test_plus.py": PLUS_TEST, "pkg/calc.py": REAL})
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-003"]) == ExitCode.ERROR
    assert "lies inside the repository" in capsys.readouterr().err


def test_a_selector_that_collects_nothing_held_out_fails_the_stage(repo: Path) -> None:
    ledger = LEDGER.replace("tests/acceptance/test_plus_holdout.py", "tests/acceptance/test_plus_holdout.py::test_nope")
    (repo / "docs/fix_plan.md").write_text(ledger)
    git(repo, "commit", "-qam", "ledger: a selector that names no held-out test")
    apply_change(repo, {"tests/test_plus.py": PLUS_TEST, "pkg/calc.py": REAL})

    code, record, _ = run(repo)

    assert code == 1 and record["failed_stage"] == "acceptance"
    assert record["reason"] == ("acceptance: tests/acceptance/test_plus_holdout.py::test_nope collects no test in "
                                "the held-out tree; check the Acceptance selector and the files in holdout.dir")


def test_the_prompt_never_names_the_held_out_tests(tmp_path: Path) -> None:
    ledger = parse_ledger(LEDGER)
    context = build_prompt_context(repo_root=tmp_path, item=ledger.get("CALC-003"), ledger_text=LEDGER,
                                   previous_summary=None)
    assert "Acceptance" not in context["item_text"] and "holdout" not in context["item_text"]
    assert "RED: tests/test_plus.py::test_plus" in context["item_text"]
    assert [key for key, _ in context["item"]["fields"]] == ["Status", "RED"]
