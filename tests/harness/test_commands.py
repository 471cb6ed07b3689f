"""The review and set-up commands: next, ledger (table, item, lint, verify), init, verify, the lock."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import (
    MUL_IMPL,
    MUL_TEST,
    apply_change,
    head_subject,
    make_project,
    status_porcelain,
)


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


def test_ledger_table_item_and_verify_detects_edited_evidence(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 0
    recording_commit = git(repo, "rev-parse", "HEAD").strip()
    capsys.readouterr()

    assert main(["ledger", "-C", str(repo)]) == 0
    table = capsys.readouterr().out
    assert "CALC-001" in table and "done" in table and "GREEN" in table

    assert main(["ledger", "-C", str(repo), "CALC-001", "--json"]) == 0
    detail = json.loads(capsys.readouterr().out)
    assert detail["history"][0]["recorded_in"] == recording_commit
    assert detail["last_evidence"]["stages"]["green"]["counts"] == {"passed": 1}

    assert main(["ledger", "-C", str(repo), "verify"]) == 0
    assert "0 problem(s)" in capsys.readouterr().out

    evidence = repo / load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts[-1].evidence
    evidence.write_text(evidence.read_text() + "\nedited by hand\n")
    assert main(["ledger", "-C", str(repo), "verify"]) == 1
    out = capsys.readouterr().out
    assert "analysis/summary.md" in out and "1 problem(s)" in out


def test_ledger_lint_reports_problems(make_repo, capsys) -> None:
    ledger = ("# Fix Plan\n\n## [A] a\n- Status: pending\n- Depends-On: B\n\n## [B] b\n- Depends-On: A\n"
              "- Status: waiting\n\n## [C] c\n- Depends-On: NOPE\n")
    repo = make_project(make_repo, ledger=ledger)
    assert main(["ledger", "-C", str(repo), "lint"]) == 1
    out = capsys.readouterr().out
    assert "dependency-cycle" in out and "unknown-status" in out and "missing-dependency" in out


def test_init_writes_config_and_ledger_and_refuses_to_overwrite(make_repo, capsys) -> None:
    repo = make_repo({"README.md": "x\n"})
    assert main(["init", "-C", str(repo)]) == 0
    assert (repo / "harness.yaml").is_file() and (repo / "docs/fix_plan.md").is_file()
    assert load_ledger(repo / "docs/fix_plan.md").items == ()
    assert main(["init", "-C", str(repo)]) == 1
    assert "--force" in capsys.readouterr().err


def test_verify_records_committed_change(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    base = git(repo, "rev-parse", "HEAD").strip()
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add mul")
    head = git(repo, "rev-parse", "HEAD").strip()

    assert main(["verify", "-C", str(repo), "--base", base, "--item", "CALC-001", "--dry-run"]) == 0
    assert git(repo, "rev-parse", "HEAD").strip() == head and status_porcelain(repo) == ""

    assert main(["verify", "-C", str(repo), "--base", base, "--item", "CALC-001"]) == 0
    assert head_subject(repo) == "[CALC-001] calc gains mul: GREEN"
    assert git(repo, "rev-parse", "HEAD~1").strip() == head
    committed = git(repo, "show", "--name-only", "--format=", "HEAD").split()
    assert "pkg/calc.py" not in committed and "docs/fix_plan.md" in committed  # evidence + ledger only
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.status == "done" and item.attempts[-1].base_commit == base[:10]
    assert main(["ledger", "-C", str(repo), "verify"]) == 0


def test_verify_rejects_a_commit_whose_test_passes_at_base(make_repo) -> None:
    repo = make_project(make_repo)
    base = git(repo, "rev-parse", "HEAD").strip()
    apply_change(repo, {"tests/test_mul.py": "def test_mul():\n    assert True\n"})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a test that proves nothing")
    assert main(["verify", "-C", str(repo), "--base", base, "--item", "CALC-001"]) == 1
    assert head_subject(repo) == "[CALC-001] calc gains mul: FAILED at red"


def test_second_harness_is_refused_while_one_holds_the_lock(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom harness.locking import RepoLock\n"
        "with RepoLock(Path(sys.argv[1]), command='harness loop'):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n"), str(repo / ".git")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        apply_change(repo, {"tests/test_mul.py": MUL_TEST})
        assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 1
        err = capsys.readouterr().err
        assert f"pid {holder.pid}" in err and "harness loop" in err
    finally:
        holder.kill()
        holder.wait()
    time.sleep(0.1)
    apply_change(repo, {"pkg/calc.py": MUL_IMPL})
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 0  # the dead holder's lock is taken over
    assert "took over a stale lock" in capsys.readouterr().err


def test_not_a_git_repository_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["next", "-C", str(tmp_path)]) == 1
    assert "git" in capsys.readouterr().err


def test_init_works_in_a_fresh_git_init_and_commits_nothing(tmp_path: Path, capsys) -> None:
    """`git init && harness init` is the first thing a new user types."""
    repo = tmp_path / "fresh"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")

    assert main(["init", "-C", str(repo)]) == 0

    assert (repo / "harness.yaml").is_file() and load_ledger(repo / "docs/fix_plan.md").items == ()
    out = capsys.readouterr().out
    assert "git add harness.yaml docs/fix_plan.md && git commit" in out and "the harness needs one" in out
    assert subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=repo, check=False,
                          capture_output=True).returncode != 0  # no commit was made
    assert main(["next", "-C", str(repo)]) == 1  # the other commands still need a first commit
    assert "no commits yet" in capsys.readouterr().err


UNKNOWN_STATUS_LEDGER = ("# Fix Plan\n\n## [A] chosen first\n- Priority: 1\n\n"
                         "## [B] misspelt status\n- Status: pendng\n- Priority: 2\n")


def test_every_command_that_reads_the_ledger_warns_about_an_unknown_status(make_repo, capsys) -> None:
    repo = make_project(make_repo, ledger=UNKNOWN_STATUS_LEDGER)
    warning = "docs/fix_plan.md:7: [B] Status 'pendng' is not one of pending, in_progress, done, blocked"
    for argv in (["next"], ["next", "--json"], ["ledger"], ["ledger", "verify"], ["selectors", "list"],
                 ["selectors", "index", "--check"]):
        main([*argv, "-C", str(repo)])
        err = capsys.readouterr().err
        assert f"harness: warning: {warning}" in err, (argv, err)
    assert main(["ledger", "-C", str(repo), "lint"]) == 1  # lint keeps failing on it
    assert "unknown-status" in capsys.readouterr().out
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    main(["run", "-C", str(repo), "--no-agent"])
    assert warning in capsys.readouterr().err
