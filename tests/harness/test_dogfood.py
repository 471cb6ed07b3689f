"""This repository uses its own harness: its ledger lints clean and every recorded attempt's evidence holds."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def repo_root() -> Path:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout (e.g. an unpacked sdist): evidence commits cannot be checked")
    return ROOT


def test_project_ledger_lints_clean(repo_root: Path, capsys) -> None:
    assert main(["ledger", "-C", str(repo_root), "lint"]) == 0, capsys.readouterr().out


def test_project_evidence_verifies(repo_root: Path, capsys) -> None:
    code = main(["ledger", "-C", str(repo_root), "verify"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "0 problem(s)" in out


def test_test_suite_index_is_up_to_date(repo_root: Path, capsys) -> None:
    code = main(["selectors", "index", "-C", str(repo_root), "--check"])
    assert code == 0, capsys.readouterr().out + "\nregenerate it with `harness selectors index`"


@pytest.mark.slow
def test_every_selector_of_the_ledger_still_collects_tests(repo_root: Path, capsys) -> None:
    """Moving a test file must come with the ledger's selectors that name it (they are regression selectors now)."""
    code = main(["selectors", "collect", "-C", str(repo_root)])
    assert code == 0, capsys.readouterr().out
