"""`harness verify`: the same proof for committed work."""
from __future__ import annotations

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
