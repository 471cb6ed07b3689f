"""The integrity stage in real iterations (`harness run --no-agent`): each finding kind fails the iteration
with its kind and test; `Allow:` lifts exactly the kinds it names, and every finding is still recorded."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    with_gates,
)

CALC_TESTS = """\
import pytest

from pkg.calc import add

SLOW = False


def test_add():
    assert add(1, 2) == 3
    assert add(2, 2) == 4


def test_add_zero():
    assert add(0, 5) == 5


@pytest.mark.skipif("SLOW", reason="slow machine")
def test_add_negative():
    assert add(-1, 1) == 0
"""


def project(make_repo, allow: str | None = None) -> Path:
    ledger = LEDGER.replace("- Exit-Criteria: mul multiplies", "- Exit-Criteria: mul multiplies"
                            + (f"\n- Allow: {allow}" if allow else ""))
    return make_project(make_repo, extra={"tests/test_calc.py": CALC_TESTS}, ledger=ledger)


def run(repo: Path) -> tuple[int, dict, str]:
    code = main(["run", "-C", str(repo), "--no-agent", "CALC-001"])
    rel = git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    folder = repo / rel
    return code, json.loads((folder / "attempt.json").read_text()), (folder / "analysis" / "summary.md").read_text()


def integrity_of(record: dict) -> dict:
    return next(s for s in record["stages"] if s["name"] == "integrity")


def weakening_change() -> dict[str, str]:
    weaker = (CALC_TESTS
              .replace("    assert add(2, 2) == 4\n", "")                      # assertions-removed
              .replace("def test_add_zero", "@pytest.mark.skip('later')\ndef test_add_zero")  # test-skipped
              .replace("@pytest.mark.skipif", "def test_gone():\n    pass\n\n\n@pytest.mark.skipif"))
    weaker = weaker.replace("def test_add_negative():\n    assert add(-1, 1) == 0\n", "")  # test-removed
    weaker = weaker.replace('@pytest.mark.skipif("SLOW", reason="slow machine")\n', "")
    return {"tests/test_calc.py": weaker, "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL,
            "ci/known_failures.txt": "tests/test_calc.py::test_add\n",  # known-failures-added
            "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-k \'not zero\'"\n'}  # selection-narrowed


def test_every_kind_of_weakening_fails_the_iteration_naming_kind_and_test(make_repo) -> None:
    repo = project(make_repo)
    apply_change(repo, weakening_change())

    code, record, summary = run(repo)

    assert code == 1
    assert head_subject(repo) == "[CALC-001] calc gains mul: FAILED at integrity"
    assert record["failed_stage"] == "integrity"
    assert status_porcelain(repo) == ""  # the change is saved on the failed ref, the tree is clean
    assert git(repo, "show", "refs/harness/failed/CALC-001/1:ci/known_failures.txt") == "tests/test_calc.py::test_add\n"
    found = {(f["kind"], f["test"]) for f in integrity_of(record)["findings"]}
    assert ("assertions-removed", "tests/test_calc.py::test_add") in found
    assert ("test-skipped", "tests/test_calc.py::test_add_zero") in found
    assert ("test-removed", "tests/test_calc.py::test_add_negative") in found
    assert ("known-failures-added", "tests/test_calc.py::test_add") in found
    assert ("selection-narrowed", "pyproject.toml") in found
    assert not any(f["allowed"] for f in integrity_of(record)["findings"])
    details = {f["kind"]: f["detail"] for f in integrity_of(record)["findings"]}
    assert details["assertions-removed"] == "checks 2 -> 1"
    assert "integrity: " in record["reason"] and "the item does not allow" in record["reason"]
    assert "**refused** assertions-removed: `tests/test_calc.py::test_add`: checks 2 -> 1" in summary
    evidence = repo / record["evidence_dir"] / "gates" / "integrity.json"
    assert {f["kind"] for f in json.loads(evidence.read_text())["findings"]} == {
        "assertions-removed", "test-skipped", "test-removed", "known-failures-added", "selection-narrowed"}


def test_allow_lifts_exactly_the_named_kinds(make_repo) -> None:
    repo = project(make_repo, allow="test-removed, assertions-removed")
    change = weakening_change()
    apply_change(repo, {k: v for k, v in change.items() if k != "pyproject.toml"})

    code, record, summary = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity"
    findings = integrity_of(record)["findings"]
    allowed = {f["kind"] for f in findings if f["allowed"]}
    refused = {f["kind"] for f in findings if not f["allowed"]}
    assert allowed == {"test-removed", "assertions-removed"}
    assert refused == {"test-skipped", "known-failures-added"}
    assert integrity_of(record)["allowed_kinds"] == ["test-removed", "assertions-removed"]
    assert "allowed test-removed: `tests/test_calc.py::test_add_negative`" in summary


def test_allowed_findings_alone_pass_and_are_recorded(make_repo) -> None:
    repo = project(make_repo, allow="test-removed")
    gone = CALC_TESTS.replace("def test_add_zero():\n    assert add(0, 5) == 5\n\n\n", "")
    apply_change(repo, {"tests/test_calc.py": gone, "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 0, record["reason"]
    stage = integrity_of(record)
    assert stage["ok"] and [(f["kind"], f["test"], f["allowed"]) for f in stage["findings"]] == [
        ("test-removed", "tests/test_calc.py::test_add_zero", True)]
    assert "1 finding(s), all of kinds the item allows (test-removed)" in stage["reason"]
    assert "allowed test-removed" in summary


def test_a_test_that_passed_at_base_and_is_skipped_now_is_found_by_running_it(make_repo) -> None:
    """The mark is the same text at base and with the change; only running the test shows the skip."""
    repo = project(make_repo)
    apply_change(repo, {"tests/test_calc.py": CALC_TESTS.replace("SLOW = False", "SLOW = True"),
                        "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})

    code, record, _ = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity"
    [finding] = integrity_of(record)["findings"]
    assert finding["kind"] == "test-skipped" and finding["test"] == "tests/test_calc.py::test_add_negative"
    assert finding["detail"].startswith("passed at the base commit, skipped with the change")
    gates = repo / record["evidence_dir"] / "gates"
    assert (gates / "integrity-base.log").is_file() and (gates / "integrity-change.log").is_file()


def test_an_honest_change_has_no_findings(make_repo) -> None:
    repo = project(make_repo)
    stronger = CALC_TESTS.replace("    assert add(0, 5) == 5\n", "    assert add(0, 5) == 5\n    assert add(5, 0) == 5\n")
    apply_change(repo, {"tests/test_calc.py": stronger, "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 0, record["reason"]
    assert integrity_of(record)["findings"] == []
    assert "No test removed, skipped or weakened" in summary


def test_a_change_cannot_switch_the_integrity_gate_off_for_its_own_proof(make_repo) -> None:
    """harness.yaml with the change says `integrity: false`; the base had the gate on, so it runs and
    refuses the change as gates-weakened (and still sees the test it removes)."""
    repo = project(make_repo)
    weaker_config = with_gates(HARNESS_YAML, "  integrity: false\n  regression: false\n")
    gone = CALC_TESTS.replace("def test_add_zero():\n    assert add(0, 5) == 5\n\n\n", "")
    apply_change(repo, {"harness.yaml": weaker_config, "tests/test_calc.py": gone, "tests/test_mul.py": MUL_TEST,
                        "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    found = {(f["kind"], f["test"]) for f in integrity_of(record)["findings"]}
    assert found == {("gates-weakened", "gates.integrity"), ("gates-weakened", "gates.regression"),
                     ("test-removed", "tests/test_calc.py::test_add_zero")}
    assert "gates.integrity: switched off" in summary


def test_an_integrity_gate_that_the_change_switched_off_is_reported_not_run_when_the_proof_stops_early(
        make_repo) -> None:
    """The base had the gate on, so the proof owes it; a change that switches it off and breaks collection
    stops before the gate, and the record says the gate did not run (it is not silently absent)."""
    repo = project(make_repo)
    apply_change(repo, {"harness.yaml": with_gates(HARNESS_YAML, "  integrity: false\n"),
                        "tests/test_mul.py": MUL_TEST + "\ndef broken(:\n", "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 1 and record["failed_stage"] == "collect", record["reason"]
    assert "integrity" in record["not_run"]
    not_run = [c["text"] for c in record["checks"] if c["text"].endswith("(not run)")]
    assert any(text.startswith("integrity") for text in not_run) and not any(c["held"] for c in record["checks"]
                                                                               if c["text"] in not_run)
    assert next(t for t in not_run if t.startswith("integrity")) in summary


PAIR_TESTS = """\
import pytest

from pkg.calc import add


@pytest.mark.parametrize(("pair", "total"), [{cases}])
def test_add_pairs(pair, total):
    assert add(*pair) == total
"""


def pairs(*cases: str) -> str:
    return PAIR_TESTS.format(cases=", ".join(cases))


def test_cases_inserted_before_others_shift_their_ids_and_remove_nothing(make_repo) -> None:
    """pytest numbers the cases it cannot name (`pair1-3`): inserting a case renumbers those after it. The
    same cases under new indexes are not removed tests; a case really dropped beside them still is."""
    repo = make_project(make_repo, extra={"tests/test_pairs.py": pairs("([1, 2], 3)", "([2, 2], 4)", "([0, 5], 5)")})
    apply_change(repo, {"tests/test_pairs.py": pairs("([3, 3], 6)", "([1, 2], 3)", "([2, 2], 4)", "([0, 5], 5)"),
                        "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    code, record, _summary = run(repo)
    assert code == 0, record["reason"]
    assert integrity_of(record)["findings"] == []  # pair0-3 is now pair1-3, and so on: nothing removed

    repo = make_project(make_repo, extra={"tests/test_pairs.py": pairs("([1, 2], 3)", "([2, 2], 4)", "([0, 5], 5)")})
    apply_change(repo, {"tests/test_pairs.py": pairs("([3, 3], 6)", "([1, 2], 3)", "([0, 5], 5)"),
                        "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    code, record, _summary = run(repo)
    assert code == 1 and record["failed_stage"] == "integrity"
    found = {(f["kind"], f["test"]) for f in integrity_of(record)["findings"]}
    assert found == {("test-removed", "tests/test_pairs.py::test_add_pairs[pair1-4]")}


NARROWING = {
    "command": HARNESS_YAML.replace("  timeout_s: 120\n", "  timeout_s: 120\n  command: ['{python}', '-m', "
                                    "'pytest', '-k', 'not test_add_zero']\n"),
    "env": HARNESS_YAML.replace('PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"\n',
                                'PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"\n    PYTEST_ADDOPTS: "-k=\'not test_add_zero\'"\n'),
}


@pytest.mark.parametrize(("where", "test"), [("command", "pytest.command"), ("env", "pytest.env.PYTEST_ADDOPTS")])
def test_a_filter_added_to_the_pytest_command_or_env_is_refused_as_selection_narrowed(make_repo, where: str,
                                                                                       test: str) -> None:
    """`-k` in `pytest.command`, or in PYTEST_ADDOPTS of `pytest.env`, would run fewer tests in every later
    proof (here it keeps every test of this change running, so only the integrity gate can see it)."""
    repo = project(make_repo)
    apply_change(repo, {"harness.yaml": NARROWING[where], "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    found = [(f["kind"], f["test"], f["detail"]) for f in integrity_of(record)["findings"]]
    where_text = "`pytest.command`" if where == "command" else "`pytest.env` PYTEST_ADDOPTS"
    assert found == [("selection-narrowed", test, f"{where_text} gains `-k not test_add_zero`, so fewer tests run")]
    assert f"**refused** selection-narrowed: `{test}`" in summary


def test_a_narrowing_the_item_allows_is_still_judged_under_the_base_commits_settings(make_repo) -> None:
    """The item allows selection-narrowed, and its harness.yaml deselects the very test it adds: the proof
    runs under the base commit's harness.yaml, so RED and GREEN still run test_mul (under the change's own
    settings nothing would be selected and the proof would stop at collect)."""
    repo = project(make_repo, allow="selection-narrowed")
    base = git(repo, "rev-parse", "HEAD").strip()
    narrowed = HARNESS_YAML.replace("  timeout_s: 120\n", "  timeout_s: 120\n  command: ['{python}', '-m', "
                                    "'pytest', '--deselect', 'tests/test_mul.py::test_mul']\n")
    apply_change(repo, {"harness.yaml": narrowed, "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})

    code, record, summary = run(repo)

    assert code == 0, record["reason"]
    assert [(f["kind"], f["allowed"]) for f in integrity_of(record)["findings"]] == [("selection-narrowed", True)]
    stages = {s["name"]: s for s in record["stages"]}
    assert stages["red"]["ok"] and stages["red"]["selectors"][0]["failing"][0]["nodeid"].startswith("tests/test_mul.py")
    assert stages["green"]["counts"] == {"passed": 1}
    assert not any("--deselect" in s["command"] for stage in stages.values() for s in stage["selectors"])
    assert record["settings"] == {"harness_yaml_from": base, "harness_yaml_found": True, "working_tree_differs": True,
                                  "working_tree_not_applied": ["pytest.command"],
                                  "from_working_tree": ["agent", "commit", "push", "leases", "workers", "planner"]}
    assert f"Judged by the harness.yaml of `{base[:10]}` (the base commit)" in summary
    assert "The working tree's harness.yaml sets otherwise: `pytest.command` (not applied" in summary
    assert "--deselect" in (repo / "harness.yaml").read_text()  # committed with the change: it applies from now on


def test_a_harness_yaml_that_no_longer_parses_is_refused(make_repo) -> None:
    """Only a worker's or an older commit's change gets this far (the harness reads the working tree's file
    first); committed, it would stop every later proof. Here: verify a commit that broke harness.yaml and
    was fixed by the next one."""
    repo = project(make_repo)
    base = git(repo, "rev-parse", "HEAD").strip()
    apply_change(repo, {"harness.yaml": with_gates(HARNESS_YAML, "  ful_suite: false\n"), "tests/test_mul.py": MUL_TEST,
                        "pkg/calc.py": MUL_IMPL})
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "add mul, and a typo")
    broken = git(repo, "rev-parse", "HEAD").strip()
    apply_change(repo, {"harness.yaml": HARNESS_YAML})
    git(repo, "commit", "-qam", "fix the typo")

    code = main(["verify", "-C", str(repo), "--base", base, "--head", broken, "--item", "CALC-001"])

    assert code == 1
    folder = repo / git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    record = json.loads((folder / "attempt.json").read_text())
    assert record["failed_stage"] == "integrity"
    [finding] = integrity_of(record)["findings"]
    assert (finding["kind"], finding["test"]) == ("gates-weakened", "harness.yaml")
    assert "does not parse with the change" in finding["detail"] and "gates.ful_suite" in finding["detail"]


def test_a_plain_test_that_becomes_parametrized_is_not_a_removed_test(make_repo) -> None:
    """The shape of a real fix (BugsInPy thefuck bug 1): `test_x` becomes `test_x[case-a]` and `test_x[case-b]`,
    the old check one of the cases. The test is still there, run more often; a case dropped is still found."""
    cases = ('@pytest.mark.parametrize(("a", "total"), [{}])\ndef test_add_zero(a, total):\n'
             '    assert add(0, a) == total\n')
    plain = "def test_add_zero():\n    assert add(0, 5) == 5\n"
    repo = project(make_repo)
    apply_change(repo, {"tests/test_calc.py": CALC_TESTS.replace(plain, cases.format("(5, 5), (7, 7)")),
                        "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    code, record, _summary = run(repo)
    assert code == 0, record["reason"]
    assert integrity_of(record)["findings"] == []

    repo = make_project(make_repo, extra={"tests/test_calc.py": CALC_TESTS.replace(plain, cases.format("(5, 5), (7, 7)"))})
    apply_change(repo, {"tests/test_calc.py": CALC_TESTS.replace(plain, cases.format("(5, 5)")),
                        "tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    code, record, _summary = run(repo)
    assert code == 1 and record["failed_stage"] == "integrity"
    found = {(f["kind"], f["test"]) for f in integrity_of(record)["findings"]}
    assert ("test-removed", "tests/test_calc.py::test_add_zero[7-7]") in found
