"""The `harness` command line as a whole: the lock, errors outside a repository, ledger warnings."""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness.errors import ExitCode
from harness.main import build_parser, main
from tests.harness.project import (
    MUL_IMPL,
    MUL_TEST,
    apply_change,
    make_project,
)


def test_second_harness_is_refused_while_one_holds_the_lock(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\nfrom pathlib import Path\nfrom harness.durability.lock import RepoLock\n"
        "with RepoLock(Path(sys.argv[1]), command='harness loop'):\n"
        "    print('held', flush=True)\n    time.sleep(60)\n"), str(repo / ".git")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        apply_change(repo, {"tests/test_mul.py": MUL_TEST})
        assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == ExitCode.BUSY
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
    assert main(["next", "-C", str(tmp_path)]) == ExitCode.ERROR
    assert "git" in capsys.readouterr().err


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
    # `run` warns when it picks the item, before anything is proven: a clean tree ends it right after
    assert main(["run", "-C", str(repo), "--no-agent"]) == ExitCode.ERROR
    err = capsys.readouterr().err
    assert warning in err and "no change to prove" in err


def test_each_outcome_has_its_own_exit_code_listed_in_help_and_the_readme(make_repo, capsys, monkeypatch) -> None:
    codes = [int(code) for code in ExitCode]
    assert len(set(codes)) == len(codes)
    help_text = build_parser().format_help()
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for code in codes:
        assert re.search(rf"^  {code} +\S", help_text, re.MULTILINE), f"--help does not list exit code {code}"
        assert re.search(rf"^\| {code} \| \S", readme, re.MULTILINE), f"README does not list exit code {code}"

    done = ("# Fix Plan\n\n## [A] finished\n- Status: done\n- Priority: 1\n")
    repo = make_project(make_repo, ledger=done)
    assert main(["next", "-C", str(repo)]) == ExitCode.NOTHING_ACTIONABLE  # not the crash code
    assert main(["run", "-C", str(repo), "--no-agent", "NOPE"]) == ExitCode.ERROR
    capsys.readouterr()

    def bug(**_: object) -> int:
        raise ZeroDivisionError("a bug")
    monkeypatch.setattr("harness.commands.next.next_item", bug)
    monkeypatch.setattr(tempfile, "tempdir", str(repo.parent))  # the crash report stays in tmp_path
    assert main(["next", "-C", str(repo)]) == ExitCode.INTERNAL
    err = capsys.readouterr().err
    assert "internal error (a bug): ZeroDivisionError: a bug" in err and "crash report was written" in err
