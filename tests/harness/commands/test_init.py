from __future__ import annotations

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
