"""Verdicts over real pytest runs of a generated suite (one subprocess per selector, run once per module)."""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from harness.errors import SelectorError
from harness.proof.verdicts import (
    Gate,
    collect_verdict,
    full_suite_verdict,
    green_verdict,
    load_known_failures,
    red_verdict,
    regression_verdict,
)
from harness.pytest_run.results import PytestRun
from harness.pytest_run.runner import Selector, parse_selector, run_pytest

FAST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # ~0.3 s per subprocess instead of ~1 s

Runs = dict[str, tuple[Selector, PytestRun]]

SUITE = {
    "pytest.ini": "[pytest]\n",
    "tests/test_pass.py": "def test_one():\n    pass\n\n\ndef test_two():\n    pass\n",
    "tests/test_skip.py": textwrap.dedent(
        '''
        import pytest

        @pytest.mark.skip(reason="needs a GPU")
        def test_later():
            pass
        '''
    ),
    "tests/test_xfail.py": textwrap.dedent(
        '''
        import pytest

        @pytest.mark.xfail(reason="not implemented yet")
        def test_feature():
            assert False
        '''
    ),
    # Cases 1 and 2 pass already; case 3 is the new one the change must make pass.
    "tests/test_param.py": textwrap.dedent(
        '''
        import pytest

        @pytest.mark.parametrize("n", [1, 2, 3])
        def test_supported(n):
            assert n in (1, 2), f"size {n} not supported"
        '''
    ),
    "broken/test_broken.py": "import no_such_module_for_red\n\n\ndef test_new():\n    pass\n",
}

# name -> (selector, collect_only)
RUNS = {
    "pass": ("tests/test_pass.py", False),
    "skip": ("tests/test_skip.py", False),
    "xfail": ("tests/test_xfail.py", False),
    "skip_and_xfail": ("tests/test_skip.py tests/test_xfail.py", False),
    "param": ("tests/test_param.py", False),
    "broken": ("broken", False),
    "suite": ("tests", False),
    "nomatch": ("tests -k no_such_test", True),
    "notfound": ("tests/test_pass.py::test_three", True),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("suite")
    for rel, text in SUITE.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    out = tmp_path_factory.mktemp("evidence")
    found: Runs = {}
    for name, (raw, collect_only) in RUNS.items():
        selector = parse_selector(raw)
        found[name] = selector, run_pytest(selector.args, cwd=root, out_dir=out, name=name, env=FAST_ENV,
                                           collect_only=collect_only)
    return found


def test_red_proven_by_the_new_failing_case_of_a_parametrised_test(runs: Runs) -> None:
    selector, run = runs["param"]
    verdict = red_verdict(selector, run)
    assert verdict.ok and verdict.gate == Gate.RED
    assert verdict.reason.startswith("RED proven: 1 of 3 selected fail without the change")
    [failed] = verdict.tests
    assert failed.nodeid == "tests/test_param.py::test_supported[3]"
    assert (failed.failure_kind, failed.exc_type) == ("assertion", "AssertionError")
    assert "size 3 not supported" in failed.message
    assert verdict.details() == (failed.describe(),)
    assert "size 3 not supported" in verdict.details()[0]


def test_red_proven_by_a_collection_error_of_the_selected_module(runs: Runs) -> None:
    selector, run = runs["broken"]
    verdict = red_verdict(selector, run)
    assert verdict.ok
    [error] = verdict.tests
    assert (error.nodeid, error.phase, error.exc_type) == ("broken/test_broken.py", "collect", "ModuleNotFoundError")
    assert "no_such_module_for_red" in verdict.reason


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("pass", "RED not proven: tests/test_pass.py passes without the change"),
        ("skip", "RED not proven: tests/test_skip.py is skipped without the change"),
        ("xfail", "RED not proven: tests/test_xfail.py xfails without the change"),
        ("skip_and_xfail", ("RED not proven: tests/test_skip.py tests/test_xfail.py is skipped / xfails "
                           "without the change")),
        ("nomatch", "RED not proven: tests -k no_such_test selects nothing without the change"),
    ],
)
def test_red_not_proven_says_why(runs: Runs, name: str, reason: str) -> None:
    selector, run = runs[name]
    verdict = red_verdict(selector, run)
    assert not verdict.ok
    assert verdict.reason == reason


def test_red_not_proven_when_the_selector_cannot_run(runs: Runs) -> None:
    selector, run = runs["notfound"]
    verdict = red_verdict(selector, run)
    assert not verdict.ok
    assert "could not run, exit 4 (usage error)" in verdict.reason and "test_three" in verdict.reason


def test_red_not_proven_by_a_timeout(runs: Runs) -> None:
    selector, run = runs["param"]
    timed_out = dataclasses.replace(run, timed_out=True, returncode=-9,
                                    exit_meaning="timed out after 5s (process group killed)")
    verdict = red_verdict(selector, timed_out)
    assert not verdict.ok
    assert verdict.reason == "RED not proven: tests/test_param.py timed out after 5s (process group killed)"


def test_green(runs: Runs) -> None:
    selector, run = runs["pass"]
    verdict = green_verdict(selector, run)
    assert verdict.ok and verdict.reason == "GREEN: tests/test_pass.py: all 2 selected pass"
    assert dict(verdict.counts) == {"passed": 2}


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("param", ("GREEN not proven: tests/test_param.py: tests/test_param.py::test_supported[3] failed "
                  "(assertion): AssertionError: size 3 not supported")),
        ("skip", ("GREEN not proven: tests/test_skip.py: tests/test_skip.py::test_later skipped: "
                 "Skipped: needs a GPU")),
        ("xfail", ("GREEN not proven: tests/test_xfail.py: tests/test_xfail.py::test_feature xfailed "
                  "(AssertionError): not implemented yet")),
        ("nomatch", "GREEN not proven: tests -k no_such_test selects nothing"),
    ],
)
def test_green_not_proven_names_the_test_and_why(runs: Runs, name: str, reason: str) -> None:
    selector, run = runs[name]
    verdict = green_verdict(selector, run)
    assert not verdict.ok
    assert verdict.reason.startswith(reason)


def test_green_needs_every_test_to_pass_when_some_do(runs: Runs) -> None:
    selector, run = runs["skip_and_xfail"]
    verdict = green_verdict(selector, run)
    assert not verdict.ok and verdict.reason.endswith("(+1 more)")
    assert [t.outcome for t in verdict.tests] == ["skipped", "xfailed"]


def test_collect_verdicts(runs: Runs) -> None:
    ok = collect_verdict(*runs["param"])
    assert ok.ok and ok.reason == "collect: tests/test_param.py selects 3 tests"
    none = collect_verdict(*runs["nomatch"])
    assert not none.ok and none.reason == "selector matches no tests: tests -k no_such_test"
    missing = collect_verdict(*runs["notfound"])
    assert not missing.ok
    assert "exit 4 (usage error): ERROR: not found:" in missing.reason
    assert "tests/test_pass.py::test_three" in missing.reason
    broken = collect_verdict(*runs["broken"])
    assert not broken.ok and "collection error" in broken.reason and "no_such_module_for_red" in broken.reason


def test_regression_verdicts(runs: Runs) -> None:
    suite_run = runs["suite"][1]
    mixed = regression_verdict(parse_selector("tests"), suite_run)
    assert not mixed.ok
    assert mixed.reason.startswith("regression: tests: 1 failing; tests/test_param.py::test_supported[3]")
    passing = regression_verdict(*runs["pass"])
    assert passing.ok and passing.reason == "regression: tests/test_pass.py: 2 passed"
    only_skips = regression_verdict(*runs["skip"])
    assert not only_skips.ok and "has no passing test (1 skipped" in only_skips.reason
    # Skips are tolerated (and counted) next to passes.
    skip_tolerated = dataclasses.replace(runs["pass"][1], results=runs["pass"][1].results + runs["skip"][1].results)
    tolerated = regression_verdict(runs["pass"][0], skip_tolerated)
    assert tolerated.ok and tolerated.reason == "regression: tests/test_pass.py: 2 passed, 1 skipped"


def test_full_suite_tolerates_known_failures_and_reports_now_passing(runs: Runs, tmp_path: Path) -> None:
    known_file = tmp_path / "known_failures.txt"
    known_file.write_text(
        "# failing since the tolerance change\n"
        "tests/test_param.py::test_supported[3]\n"
        "\n"
        "   tests/test_pass.py::test_one   \n"
        "tests/test_gone.py::test_removed\n"
    )
    known = load_known_failures(known_file)
    assert known == {
        "tests/test_param.py::test_supported[3]", "tests/test_pass.py::test_one", "tests/test_gone.py::test_removed",
    }
    verdict = full_suite_verdict(runs["suite"][1], known)
    assert verdict.ok and verdict.completed
    assert verdict.new_failures == ()
    assert verdict.tolerated == ("tests/test_param.py::test_supported[3]",)
    assert verdict.now_passing == ("tests/test_pass.py::test_one",)
    assert verdict.not_seen == ("tests/test_gone.py::test_removed",)
    assert "1 known failure(s) tolerated" in verdict.reason and "1 known failure(s) now pass" in verdict.reason


def test_full_suite_catches_new_failures_and_collection_errors(runs: Runs) -> None:
    verdict = full_suite_verdict(runs["suite"][1], frozenset())
    assert not verdict.ok and verdict.completed
    assert verdict.new_failures == ("tests/test_param.py::test_supported[3]",)
    assert verdict.reason.startswith("full suite: 1 new failure; tests/test_param.py::test_supported[3] failed")

    broken = full_suite_verdict(runs["broken"][1], frozenset())
    assert not broken.ok and broken.completed  # exit 2 with collection errors: its errors are failures
    assert broken.new_failures == ("broken/test_broken.py",)
    assert full_suite_verdict(runs["broken"][1], {"broken/test_broken.py"}).ok


def test_full_suite_must_complete(runs: Runs) -> None:
    suite_run = runs["suite"][1]
    timed_out = dataclasses.replace(suite_run, timed_out=True, returncode=-9,
                                    exit_meaning="timed out after 60s (process group killed)")
    verdict = full_suite_verdict(timed_out, {"tests/test_param.py::test_supported[3]"})
    assert not verdict.ok and not verdict.completed
    assert verdict.reason == "full suite did not complete: timed out after 60s (process group killed)"
    usage = full_suite_verdict(runs["notfound"][1], frozenset())
    assert not usage.ok and "exit 4 (usage error)" in usage.reason


def test_no_verdict_rests_on_a_run_whose_record_cannot_be_trusted(runs: Runs) -> None:
    """The same runs, with what harness.pytest_run.events.record_problems says of a process that ended early."""
    problem = "the pytest process exited 0 before its session finished (os._exit, sys.exit in a hook, a crash)"
    why = f"the run's record cannot be trusted: {problem}"
    passing, param, suite = runs["pass"], runs["param"], runs["suite"][1]
    assert green_verdict(passing[0], passing[1]).ok and red_verdict(*param).ok
    assert not green_verdict(passing[0], dataclasses.replace(passing[1], record_problems=(problem,))).ok
    assert regression_verdict(passing[0], dataclasses.replace(passing[1], record_problems=(problem,))).reason == (
        f"regression: tests/test_pass.py: {why}")
    red = red_verdict(param[0], dataclasses.replace(param[1], record_problems=(problem,)))
    assert not red.ok and red.reason == f"RED not proven: tests/test_param.py: {why}"
    assert not collect_verdict(passing[0], dataclasses.replace(passing[1], record_problems=(problem,))).ok
    full = full_suite_verdict(dataclasses.replace(suite, record_problems=(problem,)),
                              {"tests/test_param.py::test_supported[3]"})
    assert not full.ok and not full.completed and full.reason == f"full suite: {why}"


def test_load_known_failures_edge_cases(tmp_path: Path) -> None:
    assert load_known_failures(tmp_path / "absent.txt") == frozenset()
    with pytest.raises(SelectorError, match="cannot read the known-failures file"):
        load_known_failures(tmp_path)  # a directory
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"tests/test_\xe9.py::t\n")
    with pytest.raises(SelectorError, match="UTF-8"):
        load_known_failures(bad)


def test_red_is_proven_by_an_import_error_of_the_selected_node_id(tmp_path: Path) -> None:
    """At base the test imports a name the change adds: pytest exits 4 for the node id, RED is proven."""
    (tmp_path / "pkg.py").write_text("def add(a, b):\n    return a + b\n")
    (tmp_path / "test_mul.py").write_text("from pkg import mul\n\ndef test_mul():\n    assert mul(2, 3) == 6\n")
    selector = parse_selector("test_mul.py::test_mul")
    run = run_pytest(selector.args, cwd=tmp_path, out_dir=tmp_path / "out", name="red",
                     env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"})
    assert run.returncode == 4
    verdict = red_verdict(selector, run)
    assert verdict.ok, verdict.reason
    assert verdict.tests[0].exc_type == "ImportError"
    assert "fails to collect without the change" in verdict.reason
