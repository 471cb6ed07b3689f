"""`harness ledger`: the table, one item, lint, and verify of the evidence."""
from __future__ import annotations

import json

from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import (
    MUL_IMPL,
    MUL_TEST,
    apply_change,
    make_project,
)


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
