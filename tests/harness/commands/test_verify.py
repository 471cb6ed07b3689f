"""`harness verify`: the same proof for committed work."""
from __future__ import annotations

import json

from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import (
    HARNESS_YAML,
    LEDGER,
    MUL_IMPL,
    MUL_TEST,
    apply_change,
    head_subject,
    make_project,
    status_porcelain,
    with_stages_at_once,
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


def test_verify_proves_a_commit_that_edits_harness_yaml_under_the_base_commits_harness_yaml(make_repo) -> None:
    """The verified commit deselects its own new test and turns concurrent stages off in harness.yaml; B's
    harness.yaml judges it, so test_mul runs in RED and GREEN and the stages run at once, as B says."""
    ledger = LEDGER.replace("- Exit-Criteria: mul multiplies", "- Exit-Criteria: mul multiplies\n"
                            "- Allow: selection-narrowed")
    at_once = with_stages_at_once(HARNESS_YAML)  # B says so itself: the default (auto) depends on the cores
    repo = make_project(make_repo, ledger=ledger, extra={"harness.yaml": at_once})
    base = git(repo, "rev-parse", "HEAD").strip()
    own = at_once.replace("  timeout_s: 120\n", "  timeout_s: 120\n  args: [--deselect, tests/test_mul.py::test_mul]\n")
    apply_change(repo, {"harness.yaml": own.replace("concurrent_stages: true", "concurrent_stages: false"),
                        "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add mul, and judge it more kindly")

    assert main(["verify", "-C", str(repo), "--base", base, "--item", "CALC-001"]) == 0

    folder = repo / git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    record = json.loads((folder / "attempt.json").read_text())
    stages = {s["name"]: s for s in record["stages"]}
    assert stages["green"]["counts"] == {"passed": 1} and stages["red"]["ok"]
    assert record["timing"]["concurrent_stages"] is True
    assert record["settings"]["harness_yaml_from"] == base
    assert record["settings"]["working_tree_not_applied"] == ["pytest.args", "concurrent_stages"]
    integrity = stages["integrity"]["findings"]
    assert [(f["kind"], f["allowed"]) for f in integrity] == [("selection-narrowed", True)]
