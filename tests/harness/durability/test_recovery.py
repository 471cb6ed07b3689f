"""Recovery after kill -9 at any stage: nothing a person wrote is lost (uncommitted ledger edits, the selector
history, files the commit leaves out), the attempt is recorded as ABORTED once, the work is on a ref."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.ledger import load_ledger, with_attempt
from harness.main import main
from tests.conftest import git
from tests.harness.commands.test_loop import agent_project
from tests.harness.project import LEDGER, MUL_IMPL, MUL_TEST, apply_change, make_project, status_porcelain

# Every stage the journal of `harness run --no-agent` enters for CALC-001 (checked against a real run below).
NO_AGENT_STAGES = ["collect", "integrity", "red", "green", "regression", "full_suite", "evidence", "record",
                   "commit"]
AFTER_PROOF = ["evidence", "record", "commit"]

PERSON_ITEM = "\n## [CALC-009] calc gains pow\n- Status: pending\n- Priority: 9\n- RED: tests/test_pow.py\n"
PERSON_LEDGER = LEDGER.replace("Prose about the item.", "Prose about the item, edited by a person.") + PERSON_ITEM
HISTORY_LINE = '{"selector": "tests/test_calc.py", "status": "passed"}\n'


def _person_edits(repo: Path) -> None:
    """Uncommitted edits a person makes beside the harness: a new ledger item and an edited prose line,
    a line of selector history, a note under the evidence root."""
    (repo / "docs/fix_plan.md").write_text(PERSON_LEDGER)
    (repo / "plans/selectors").mkdir(parents=True)
    (repo / "plans/selectors/history.jsonl").write_text(HISTORY_LINE)
    (repo / "plans/active/notes.md").parent.mkdir(parents=True, exist_ok=True)
    (repo / "plans/active/notes.md").write_text("a person's notes\n")


def _crash(repo: Path, args: list[str], stage: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "harness", *args, "-C", str(repo)], capture_output=True,
                          text=True, env={**os.environ, "HARNESS_CRASH_AT": stage, "PYTHONUNBUFFERED": "1"},
                          timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    return proc.stdout


def _assert_recovered_with_person_edits(repo: Path, stage: str, *, work: bool = True) -> None:
    """The ledger is the person's text plus one ABORTED line, committed; the person's other files are there;
    the `work` is saved on the aborted ref."""
    ledger = load_ledger(repo / "docs/fix_plan.md")
    attempts = ledger.get("CALC-001").attempts
    assert [a.outcome for a in attempts] == [f"ABORTED at {stage}"]  # once; no line of the dead run
    a = attempts[0]
    expected = with_attempt(PERSON_LEDGER, "CALC-001", timestamp=a.timestamp, number=1, outcome=a.outcome,
                            base_commit=a.base_commit, evidence=a.evidence)
    assert (repo / "docs/fix_plan.md").read_text() == expected
    assert git(repo, "show", "HEAD:docs/fix_plan.md") == expected  # recorded as an attempt records its line
    assert "ABORTED" in git(repo, "log", "-1", "--format=%s")
    if work:
        assert git(repo, "show", "refs/harness/aborted/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert (repo / "plans/selectors/history.jsonl").read_text() == HISTORY_LINE
    assert (repo / "plans/active/notes.md").read_text() == "a person's notes\n"
    assert status_porcelain(repo) == "?? plans/active/notes.md\n?? plans/selectors/history.jsonl\n"
    assert main(["ledger", "-C", str(repo), "verify"]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("stage", NO_AGENT_STAGES)
def test_kill_9_at_each_stage_keeps_the_persons_uncommitted_ledger_edits(make_repo, stage: str) -> None:
    repo = make_project(make_repo)
    _person_edits(repo)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    _crash(repo, ["run", "--no-agent", "CALC-001"], stage)
    if stage == "commit":  # the harness had written its own line: uncommitted, beside the person's edits
        assert "GREEN" in (repo / "docs/fix_plan.md").read_text()

    # the next start recovers first; then the tree holds no change to prove
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == ExitCode.ERROR
    _assert_recovered_with_person_edits(repo, stage)
    assert not (repo / ".git/harness/journal.json").exists()
    assert not (repo / ".git/harness/journal.kept").exists()


def test_the_stage_list_above_is_every_stage_a_run_goes_through(make_repo) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 0
    evidence = load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts[-1].evidence
    record = json.loads((repo / evidence).parent.parent.joinpath("attempt.json").read_text())
    assert [s["name"] for s in record["stages"]] + AFTER_PROOF == NO_AGENT_STAGES


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["agent", "green", "commit"])
def test_kill_9_of_an_agent_run_keeps_the_persons_uncommitted_ledger_edits(make_repo, tmp_path,
                                                                           stage: str) -> None:
    plan = {"*": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL,
                            "docs/fix_plan.md": "the agent's forged ledger\n"}}}
    repo = agent_project(make_repo, tmp_path, plan)
    _person_edits(repo)  # harness-owned files only: the tree counts as clean for the agent
    _crash(repo, ["run", "CALC-001"], stage)
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == ExitCode.ERROR
    _assert_recovered_with_person_edits(repo, stage, work=stage != "agent")  # killed as the agent was to start


LEFT_OUT_YAML = "caps:\n  changed_file_bytes: 2000\nignore:\n  - 'notes/**'\n"
BIG = b"\x00big data\n" * 400  # 4000 bytes: over the cap


@pytest.mark.slow
def test_kill_9_while_left_out_files_are_set_aside_puts_them_back_at_the_next_start(make_repo) -> None:
    repo = make_project(make_repo, extra={"notes/kept.txt": "committed note\n", "notes/gone.txt": "old\n"})
    (repo / "harness.yaml").write_text((repo / "harness.yaml").read_text() + LEFT_OUT_YAML)
    git(repo, "commit", "-qam", "caps and ignore")
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL,
                        "notes/kept.txt": "a person's edit of a note\n"})
    (repo / "data").mkdir()
    (repo / "data/big.bin").write_bytes(BIG)
    (repo / "data/big.bin").chmod(0o755)
    (repo / "notes/gone.txt").unlink()
    out = _crash(repo, ["run", "--no-agent", "CALC-001"], "green")
    assert "left out of the commit, set aside while the stages run: data/big.bin" in out

    # killed while the stages ran: the tree was the one the commit would hold
    assert not (repo / "data").exists()
    assert (repo / "notes/kept.txt").read_text() == "committed note\n"
    assert (repo / "notes/gone.txt").read_text() == "old\n"

    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == ExitCode.ERROR  # recovers, then no work
    assert (repo / "data/big.bin").read_bytes() == BIG
    assert (repo / "data/big.bin").stat().st_mode & 0o777 == 0o755
    assert (repo / "notes/kept.txt").read_text() == "a person's edit of a note\n"
    assert not (repo / "notes/gone.txt").exists()
    assert status_porcelain(repo) == " D notes/gone.txt\n M notes/kept.txt\n?? data/big.bin\n"
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert [a.outcome for a in item.attempts] == ["ABORTED at green"]
    assert git(repo, "show", "refs/harness/aborted/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert not (repo / ".git/harness/journal.kept").exists()
