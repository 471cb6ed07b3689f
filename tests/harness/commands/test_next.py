"""`harness next`: which item runs next and why, as text and JSON."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from harness.durability.lock import RepoLock
from harness.errors import ExitCode
from harness.gitops import common_git_dir, open_repo
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import MUL_IMPL, MUL_TEST, apply_change, make_project, status_porcelain


def test_next_explains_choice_and_json(make_repo, capsys) -> None:
    from tests.harness.project import LEDGER

    repo = make_project(make_repo, ledger=LEDGER.replace("- Priority: 2", "- Priority: 0"))
    assert main(["next", "-C", str(repo)]) == 0
    out = capsys.readouterr().out
    assert "next: [CALC-001] calc gains mul" in out and "why:" in out
    assert main(["next", "-C", str(repo), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["id"] == "CALC-001" and data["title"] == "calc gains mul" and data["reason"]
    assert data["passed_over"][0]["id"] == "CALC-002"  # higher priority, but waits on CALC-001
    assert "CALC-001" in data["passed_over"][0]["why"]


def test_next_exits_3_when_nothing_is_actionable(make_repo, capsys) -> None:
    repo = make_project(make_repo, ledger="# Fix Plan\n\n## [A] done already\n- Status: done\n")
    assert main(["next", "-C", str(repo), "--json"]) == 3
    assert json.loads(capsys.readouterr().out)["id"] is None


def _killed_at_green(repo) -> None:
    """A `harness run` killed with kill -9 at GREEN (fault injection): its journal is left behind."""
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    done = subprocess.run([sys.executable, "-m", "harness", "run", "-C", str(repo), "--no-agent", "CALC-001"],
                          capture_output=True, text=True, env={**os.environ, "HARNESS_CRASH_AT": "green"}, check=False)
    assert done.returncode == -signal.SIGKILL, done.stdout + done.stderr
    assert (repo / ".git" / "harness" / "journal.json").exists()


def test_next_recovers_and_reports_an_interrupted_attempt_before_answering(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    _killed_at_green(repo)

    assert main(["next", "-C", str(repo)]) == 0

    captured = capsys.readouterr()
    assert "recovered an interrupted attempt: [CALC-001] #1, aborted at green" in captured.err
    assert "next: [CALC-001] calc gains mul" in captured.out and "last ABORTED at green" in captured.out
    assert [a.outcome for a in load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts] == ["ABORTED at green"]
    assert git(repo, "show", "refs/harness/aborted/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert status_porcelain(repo) == "" and not (repo / ".git" / "harness" / "journal.json").exists()


def test_next_answers_read_only_while_another_harness_holds_the_lock(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    _killed_at_green(repo)
    ledger_before = (repo / "docs/fix_plan.md").read_bytes()
    with RepoLock(common_git_dir(open_repo(repo)), command="harness loop"):
        assert main(["next", "-C", str(repo), "--json"]) == 0
        captured = capsys.readouterr()
    answer = json.loads(captured.out)
    assert answer["id"] == "CALC-001"
    assert "another harness" in answer["another_harness"] and "`harness loop`" in answer["another_harness"]
    assert "may change when it finishes" in captured.err and "recovered" not in captured.err
    assert (repo / "docs/fix_plan.md").read_bytes() == ledger_before  # the holder's attempt is not touched
    assert (repo / ".git" / "harness" / "journal.json").exists()


def test_next_leaves_a_pending_push_to_the_commands_that_run_attempts(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    pending = repo / ".git" / "harness" / "pending_push.json"
    pending.parent.mkdir(parents=True, exist_ok=True)
    pending.write_text('{"sha": "0000000000000000000000000000000000000000"}\n')
    assert main(["next", "-C", str(repo)]) == 0
    assert "pending push" not in capsys.readouterr().err  # not retried: a push may re-prove commits
    assert pending.exists()
    assert main(["run", "-C", str(repo), "--no-agent"]) == ExitCode.ERROR  # nothing to prove, but it tried
    assert "harness: pending push from an earlier run: a push is pending" in capsys.readouterr().err
