"""The mutation stage in real iterations: the weak `mul` test fails it, strong tests pass it, and the score
goes to attempt.json."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config.gates import MutationSettings
from harness.iteration.gate_plans import mutation_wanted
from harness.ledger import parse_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import (
    HARNESS_YAML,
    LEDGER,
    MUL_IMPL,
    apply_change,
    head_subject,
    make_project,
    with_gates,
)

REQUIRED = LEDGER.replace("- Exit-Criteria: mul multiplies", "- Exit-Criteria: mul multiplies\n- Mutation: required")
WEAK = "from pkg.calc import mul\n\n\ndef test_mul():\n    assert mul(2, 2) == 4\n"
STRONG = ("from pkg.calc import mul\n\n\ndef test_mul():\n    assert mul(3, 4) == 12\n    assert mul(-2, 5) == -10\n"
          "    assert mul(7, 0) == 0\n")


def run(repo: Path) -> tuple[int, dict, str]:
    code = main(["run", "-C", str(repo), "--no-agent", "CALC-001"])
    folder = repo / git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    return code, json.loads((folder / "attempt.json").read_text()), (folder / "analysis" / "summary.md").read_text()


def mutation_stage(record: dict) -> dict:
    return next(s for s in record["stages"] if s["name"] == "mutation")


def test_the_weak_mul_test_leaves_survivors_and_fails(make_repo) -> None:
    repo = make_project(make_repo, ledger=REQUIRED)
    apply_change(repo, {"tests/test_mul.py": WEAK, "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 1
    assert head_subject(repo) == "[CALC-001] calc gains mul: FAILED at mutation"
    stage = mutation_stage(record)
    assert stage["survivors"] == ["pkg/calc.py:6: return a * b -> return a + b",
                                  "pkg/calc.py:6: return a * b -> return a ** b"]
    assert record["mutation"] == {"score": 0.6, "killed": 3, "survived": 2, "total": 5}
    assert "mutation: score 0.60 is below 0.80" in record["reason"]
    assert "- `pkg/calc.py:6: return a * b -> return a + b`" in summary
    evidence = repo / record["evidence_dir"] / "gates"
    mutants = json.loads((evidence / "mutation.json").read_text())["mutants"]
    assert {m["status"] for m in mutants} == {"killed", "survived"} and len(mutants) == 5
    assert sorted(p.name for p in evidence.glob("mutation-survivor-*.log"))  # the survivors' test output is kept


def test_strong_tests_kill_every_mutant_and_the_score_is_recorded(make_repo) -> None:
    repo = make_project(make_repo, ledger=REQUIRED)
    apply_change(repo, {"tests/test_mul.py": STRONG, "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 0, record["reason"]
    assert record["mutation"] == {"score": 1.0, "killed": 5, "survived": 0, "total": 5}
    assert mutation_stage(record)["ok"] and "mutation: score 1.00 >= 0.80" in mutation_stage(record)["reason"]
    assert "Score **1.00** (minimum 0.80)" in summary


def test_without_mutation_required_no_mutant_runs(make_repo) -> None:
    repo = make_project(make_repo)
    apply_change(repo, {"tests/test_mul.py": WEAK, "pkg/calc.py": MUL_IMPL})

    code, record, _ = run(repo)

    assert code == 0
    assert record["mutation"] is None
    assert "mutation" not in {s["name"] for s in record["stages"]} | set(record["not_run"])


def test_a_mutant_that_hangs_counts_as_killed_and_one_that_cannot_import_as_neither(make_repo) -> None:
    # count() waits between steps, so a mutant that never ends sleeps rather than spins a core until its timeout
    impl = ("import time\n\n\ndef add(a, b):\n    return a + b\n\n\nLIMIT = 100\n"
            "assert LIMIT == 100, 'checked at import'\n\n\n"
            "def count(n):\n    i = 0\n    while i != n:\n        time.sleep(0.01)\n        i += 1\n    return i\n")
    test = "from pkg.calc import count\n\n\ndef test_mul():\n    assert count(3) == 3\n"
    # 8 s: long enough that an ordinary mutant run (a pytest start) is not mistaken for a hang on a loaded
    # 2-core machine (5 s was, now and then), short enough that the hanging ones end soon.
    yaml = with_gates(HARNESS_YAML, "  mutation:\n    timeout_s: 8\n")
    repo = make_project(make_repo, ledger=REQUIRED, extra={"harness.yaml": yaml})
    apply_change(repo, {"tests/test_mul.py": test, "pkg/calc.py": impl})

    _, record, _ = run(repo)

    mutants = json.loads((repo / record["evidence_dir"] / "gates" / "mutation.json").read_text())["mutants"]
    by_change = {(m["original"], m["mutant"]): m["status"] for m in mutants}
    assert by_change[("i += 1", "i += 2")] == "timeout"  # 0, 2, 4, ... never equals 3
    assert by_change[("LIMIT = 100", "LIMIT = 101")] == "not_importable"
    summary = record["mutation"]
    timeouts = sum(1 for m in mutants if m["status"] == "timeout")
    killed = sum(1 for m in mutants if m["status"] == "killed")
    assert summary["killed"] == killed + timeouts and summary["total"] == len(mutants)
    assert summary["score"] == round(summary["killed"] / (summary["killed"] + summary["survived"]), 4)


def test_tests_that_fail_in_an_unmutated_copy_judge_no_mutant(make_repo) -> None:
    """An ignored file the test needs exists only in the working tree: every mutant would be "killed"."""
    test = ("from pathlib import Path\n\nfrom pkg.calc import mul\n\n\ndef test_mul():\n"
            "    assert Path(__file__).with_name('local.cfg').exists()\n    assert mul(3, 4) == 12\n")
    repo = make_project(make_repo, ledger=REQUIRED, extra={".gitignore": "local.cfg\n"})
    apply_change(repo, {"tests/test_mul.py": test, "pkg/calc.py": MUL_IMPL, "tests/local.cfg": "x\n"})

    code, record, _ = run(repo)

    assert code == 1 and record["failed_stage"] == "mutation"
    assert "do not pass in an unmutated copy of the tree" in record["reason"]
    assert mutation_stage(record)["mutants"] == []


@pytest.mark.parametrize(("field", "enabled", "wanted"), [
    ("- Mutation: required", False, True), ("", False, False), ("", True, True), ("- Mutation: off", True, False),
])
def test_mutation_is_on_for_required_items_or_every_item_when_enabled(field: str, enabled: bool, wanted: bool) -> None:
    item = parse_ledger(f"## [A-1] a\n{field}\n").get("A-1")
    assert mutation_wanted(item, MutationSettings(enabled=enabled).enabled) is wanted
