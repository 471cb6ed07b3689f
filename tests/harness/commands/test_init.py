from __future__ import annotations

import subprocess
from pathlib import Path

from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git


def test_init_git_ignores_the_report_folder_once(make_repo, capsys) -> None:
    repo = make_repo({"README.md": "x\n", ".gitignore": "*.log"})  # no final newline
    assert main(["init", "-C", str(repo)]) == 0
    assert f"added /plans/report/ to {repo / '.gitignore'}" in capsys.readouterr().out
    assert (repo / ".gitignore").read_text() == "*.log\n/plans/report/\n"
    assert git(repo, "check-ignore", "plans/report/index.html").strip() == "plans/report/index.html"
    assert main(["init", "-C", str(repo), "--force"]) == 0
    assert "added" not in capsys.readouterr().out
    assert (repo / ".gitignore").read_text() == "*.log\n/plans/report/\n"


def test_init_creates_a_gitignore_and_respects_an_existing_line(make_repo) -> None:
    repo = make_repo({"README.md": "x\n"})
    assert main(["init", "-C", str(repo)]) == 0
    assert (repo / ".gitignore").read_text() == "/plans/report/\n"
    other = make_repo({"README.md": "x\n", ".gitignore": "plans/report/\n"})
    assert main(["init", "-C", str(other)]) == 0
    assert (other / ".gitignore").read_text() == "plans/report/\n"


def test_init_writes_config_and_ledger_and_refuses_to_overwrite(make_repo, capsys) -> None:
    repo = make_repo({"README.md": "x\n"})
    assert main(["init", "-C", str(repo)]) == 0
    assert (repo / "harness.yaml").is_file() and (repo / "docs/fix_plan.md").is_file()
    assert load_ledger(repo / "docs/fix_plan.md").items == ()
    assert main(["init", "-C", str(repo)]) == ExitCode.ERROR
    assert "--force" in capsys.readouterr().err


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
    assert main(["next", "-C", str(repo)]) == ExitCode.ERROR  # the other commands still need a first commit
    assert "no commits yet" in capsys.readouterr().err


