"""`harness bisect` warns about an item whose Status is unknown, as every command that reads the ledger does."""
from __future__ import annotations

from pathlib import Path

from harness.main import main
from tests.conftest import git, write_files

FILES = {
    "harness.yaml": "pytest:\n  env: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: \"1\"}\n",
    "calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
}
LEDGER = "# Plan\n\n## [A] first\n- Status: done\n\n## [B] misspelt\n- Status: pendng\n"


def history(make_repo, files: dict[str, str]) -> tuple[Path, str, str]:
    repo = make_repo(files)
    good = git(repo, "rev-parse", "HEAD").strip()
    write_files(repo, {"calc.py": "def add(a, b):\n    return a - b\n"})
    git(repo, "commit", "-qam", "calc: break add")
    return repo, good, git(repo, "rev-parse", "HEAD").strip()


def test_bisect_warns_about_an_unknown_status_with_file_and_line(make_repo, capsys) -> None:
    repo, good, bad = history(make_repo, {**FILES, "docs/fix_plan.md": LEDGER})

    code = main(["bisect", "tests/test_calc.py::test_add", "--good", good, "--bad", bad, "-C", str(repo)])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"first bad commit: {bad}" in out
    assert ("harness: warning: docs/fix_plan.md:7: [B] Status 'pendng' is not one of pending, in_progress, "
            "done, blocked") in err


def test_bisect_without_a_ledger_still_works_and_warns_about_nothing(make_repo, capsys) -> None:
    repo, good, bad = history(make_repo, FILES)

    code = main(["bisect", "tests/test_calc.py::test_add", "--good", good, "--bad", bad, "-C", str(repo)])

    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"first bad commit: {bad}" in out and "warning" not in err
