"""`harness next`: which item runs next and why, as text and JSON."""
from __future__ import annotations

import json

from harness.main import main
from tests.harness.project import (
    make_project,
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
