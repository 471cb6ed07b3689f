"""`harness ledger`: the table, one item, lint, and verify of the evidence."""
from __future__ import annotations

import json

from harness.errors import ExitCode
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


def test_ledger_lint_on_a_missing_ledger_says_so_and_what_to_do(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    git(repo, "rm", "-q", "docs/fix_plan.md")
    git(repo, "commit", "-q", "-m", "no ledger")
    assert main(["ledger", "-C", str(repo), "lint"]) == ExitCode.ERROR
    captured = capsys.readouterr()
    assert f"{repo}/docs/fix_plan.md: no ledger here; run `harness init`" in captured.err
    assert "set `ledger:` in harness.yaml" in captured.err and "no findings" not in captured.out


def test_a_corrupt_attempt_json_is_named_not_a_crash(make_repo, capsys) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 0
    folder = (repo / load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts[-1].evidence).parent.parent
    rel = (folder / "attempt.json").relative_to(repo).as_posix()
    capsys.readouterr()

    for corrupt in (b"{not json", b"\xff\xfe", b"[1, 2]", b'{"stages": "oops", "outcome": 3}'):
        (folder / "attempt.json").write_bytes(corrupt)
        an_object = corrupt.startswith(b'{"')
        assert main(["ledger", "-C", str(repo), "CALC-001"]) == 0, corrupt
        out = capsys.readouterr().out
        assert "[CALC-001] calc gains mul" in out and "#1" in out  # the item and its history are shown
        if an_object:
            assert "last evidence: 3: None" in out  # whatever its shape, shown as far as it goes
        else:
            assert f"last evidence: {rel} is unreadable: " in out, corrupt
        assert main(["ledger", "-C", str(repo), "CALC-001", "--json"]) == 0
        last = json.loads(capsys.readouterr().out)["last_evidence"]
        assert (last["problem"] is None) == an_object

        assert main(["ledger", "-C", str(repo), "verify"]) == ExitCode.REFUSED
        assert "checksum mismatch: attempt.json was changed after SHA256SUMS was written" in capsys.readouterr().out
        assert main(["report", "-C", str(repo), "--out", str(repo.parent / "site")]) == 0
