"""Batched selector runs: the node-id mapping rule, batching, and equality with one process per selector."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.errors import SelectorError
from harness.pytest_run.results import Outcome, Phase, PytestRun, TestResult
from harness.pytest_run.runner import parse_selector
from harness.selectors.runs import (
    PytestSettings,
    SelectorIndex,
    SelectorResult,
    Status,
    assign,
    classify,
    normalise_arg,
    plan_batches,
    run_batched,
)
from tests.conftest import write_files

FAST = PytestSettings(env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, timeout_s=120)


def sels(*raws: str) -> list:
    return [parse_selector(r) for r in raws]


def result(nodeid: str, outcome: Outcome = Outcome.PASSED, phase: Phase = Phase.CALL) -> TestResult:
    failing = outcome in (Outcome.FAILED, Outcome.ERROR)
    kind = "error" if failing else None
    return TestResult(nodeid, outcome, phase, "E" if failing else None, kind, "", 0.01)


def fake_run(results: list[TestResult], collected: list[str] | None = None, returncode: int = 0,
             error_lines: tuple[str, ...] = ()) -> PytestRun:
    """A finished run as run_pytest records it, for the pure mapping functions."""
    return PytestRun(
        name="001-batch", command=("pytest",), cwd=Path("/repo"), returncode=returncode, exit_meaning="x",
        duration_s=0.1, timed_out=False, results=tuple(results),
        collected=tuple(collected if collected is not None else [r.nodeid for r in results
                                                                  if r.phase != Phase.COLLECT]),
        log_path=Path("/repo/x.log"), junit_path=Path("/repo/x.xml"), results_path=Path("/repo/x.json"),
        error_lines=error_lines,
    )


# --- the mapping rule (pure) -------------------------------------------------------------------------


@pytest.mark.parametrize(("arg", "expected"), [
    ("./tests/test_a.py::test_x", "tests/test_a.py::test_x"),
    ("tests/sub/", "tests/sub"),
    ("tests//sub/./", "tests/sub"),
    (".", ""),
    ("./", ""),
    ("/repo/tests/test_a.py::T::t[a/b]", "tests/test_a.py::T::t[a/b]"),
    ("tests/test_a.py::test_p[x::y]", "tests/test_a.py::test_p[x::y]"),
])
def test_normalise_arg(arg: str, expected: str) -> None:
    assert normalise_arg(arg, Path("/repo")) == expected


def test_a_node_id_belongs_to_every_selector_that_contains_it_and_to_no_lookalike() -> None:
    selectors = sels("tests/test_a.py", "tests/test_a.py::test_p", "./tests/", "tests/test_a.py::TestK",
                     "tests/test_ab.py", "tests/test_a.py::test_p[1]", ".", "tests/test_a.py::test_pp -k x")
    index = SelectorIndex(selectors)

    assert index.owners("tests/test_a.py::test_p[1]") == {0, 1, 2, 5, 6}
    assert index.owners("tests/test_a.py::test_p[2]") == {0, 1, 2, 6}
    assert index.owners("tests/test_a.py::test_pp") == {0, 2, 6, 7}  # not test_p: `p` is no boundary
    assert index.owners("tests/test_a.py::TestK::test_m") == {0, 2, 3, 6}
    assert index.owners("tests/test_ab.py::test_x") == {2, 4, 6}
    assert index.owners("other/test_z.py::t") == {6}
    # A collection error in a file sinks the node ids inside it, and a folder's error everything below.
    assert index.related("tests/test_a.py") == {0, 1, 2, 3, 5, 6, 7}
    assert index.related("tests") == {0, 1, 2, 3, 4, 5, 6, 7}


def test_assign_maps_results_collect_errors_and_collected_ids() -> None:
    selectors = sels("tests/test_a.py::test_ok", "tests/test_b.py::test_one", "tests/sub")
    run = fake_run([
        result("tests/test_a.py::test_ok"),
        result("tests/test_a.py::test_okay", Outcome.FAILED),
        result("tests/test_b.py", Outcome.ERROR, Phase.COLLECT),
        result("tests/sub/test_c.py::test_c", Outcome.SKIPPED),
    ], collected=["tests/test_a.py::test_ok", "tests/test_a.py::test_okay", "tests/sub/test_c.py::test_c"])
    results, collected = assign(selectors, run)

    assert [[r.nodeid for r in rs] for rs in results] == [
        ["tests/test_a.py::test_ok"], ["tests/test_b.py"], ["tests/sub/test_c.py::test_c"]]
    assert collected == [["tests/test_a.py::test_ok"], [], ["tests/sub/test_c.py::test_c"]]
    verdicts = [classify(s.raw, rs, cs, run, collect_only=False)
                for s, rs, cs in zip(selectors, results, collected)]
    assert [v.status for v in verdicts] == [Status.PASSED, Status.ERROR, Status.SKIPPED]
    assert verdicts[1].failing == ("tests/test_b.py",)


def test_classify_no_tests_not_run_and_refusals() -> None:
    empty = classify("t.py", [], [], fake_run([], [], returncode=5), collect_only=False)
    assert empty.status == Status.NO_TESTS and "collected none" in empty.detail
    missing = fake_run([], [], returncode=4, error_lines=("ERROR: not found: /repo/t.py::nope",))
    assert classify("t.py::nope", [], [], missing, collect_only=False).status == Status.NO_TESTS
    conftest = fake_run([], [], returncode=4,
                        error_lines=("ImportError while loading conftest '/repo/c.py'.",))
    refused = classify("t.py", [], [], conftest, collect_only=False)
    assert refused.status == Status.ERROR and "conftest" in refused.detail
    stopped = fake_run([result("t.py::a")], ["t.py::a", "t.py::b"], returncode=2)
    verdict = classify("t.py", stopped.results, stopped.collected, stopped, collect_only=False)
    assert verdict.status == Status.ERROR and "1 test(s) collected but not run" in verdict.detail
    xfail_only = fake_run([result("t.py::a", Outcome.XFAILED)])
    assert classify("t.py", xfail_only.results, [], xfail_only, collect_only=False).status == Status.SKIPPED


def test_plan_batches_puts_plain_selectors_together_and_options_alone() -> None:
    selectors = sels("a.py::t", "b.py -k x", "c.py", "d.py e.py", "f.py -m slow", "g.py")
    assert plan_batches(selectors) == [[0, 2, 3, 5], [1], [4]]
    assert plan_batches(selectors, max_args=3) == [[0, 2], [1], [3, 5], [4]]


def test_duplicate_selectors_and_bad_jobs_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SelectorError, match="duplicate selectors"):
        run_batched(sels("a.py", "a.py"), cwd=tmp_path, out_dir=tmp_path / "out")
    with pytest.raises(SelectorError, match="--jobs must be at least 1"):
        run_batched(sels("a.py"), cwd=tmp_path, out_dir=tmp_path / "out", jobs=0)


# --- real runs ---------------------------------------------------------------------------------------

MATH = textwrap.dedent('''
    import pytest

    def test_ok():
        pass

    def test_fail():
        assert 1 + 1 == 3

    @pytest.mark.parametrize("n", [1, 2])
    def test_p(n):
        assert n < 2

    class TestK:
        def test_m(self):
            pass

    @pytest.mark.skip(reason="not here")
    def test_skip():
        pass

    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")

    def test_err(broken):
        pass
''')

SUITE = {
    "pytest.ini": "[pytest]\n",
    "tests/test_math.py": MATH,
    "tests/test_math2.py": "def test_two():\n    pass\n",
    "tests/sub/test_b.py": "def test_b1():\n    pass\n\n\ndef test_b2():\n    pass\n",
    "tests/sub/deeper/test_c.py": "def test_c():\n    pass\n",
    "tests/test_broken.py": "import no_such_module\n\n\ndef test_never():\n    pass\n",
    "tests/cbad/conftest.py": "import no_such_module_either\n",
    "tests/cbad/test_d.py": "def test_d():\n    pass\n",
    "tests/test_empty.py": "# no tests here\n",
}

SELECTORS = (
    "tests/test_math.py::test_ok", "tests/test_math.py::test_fail", "tests/test_math.py::test_p",
    "tests/test_math.py::test_p[1]", "tests/test_math.py::TestK", "tests/test_math.py::test_skip",
    "tests/test_math.py::test_err", "tests/test_math.py", "./tests/sub/",
    "tests/sub/deeper/test_c.py::test_c", "tests/test_math.py -k 'test_ok or TestK'", "tests/test_broken.py",
    "tests/cbad/test_d.py", "tests/test_empty.py", "tests/test_math.py::nope", "tests/missing.py",
    "tests/test_math2.py",
)

EXPECTED = {
    "tests/test_math.py::test_ok": Status.PASSED,
    "tests/test_math.py::test_fail": Status.FAILED,
    "tests/test_math.py::test_p": Status.FAILED,
    "tests/test_math.py::test_p[1]": Status.PASSED,
    "tests/test_math.py::TestK": Status.PASSED,
    "tests/test_math.py::test_skip": Status.SKIPPED,
    "tests/test_math.py::test_err": Status.ERROR,
    "tests/test_math.py": Status.FAILED,
    "./tests/sub/": Status.PASSED,
    "tests/sub/deeper/test_c.py::test_c": Status.PASSED,
    "tests/test_math.py -k 'test_ok or TestK'": Status.PASSED,
    "tests/test_broken.py": Status.ERROR,
    "tests/cbad/test_d.py": Status.ERROR,
    "tests/test_empty.py": Status.NO_TESTS,
    "tests/test_math.py::nope": Status.NO_TESTS,
    "tests/missing.py": Status.NO_TESTS,
    "tests/test_math2.py": Status.PASSED,
}


def comparable(r: SelectorResult) -> tuple:
    return r.selector, r.status, dict(r.counts), sorted(r.failing), sorted(r.nodeids)


@pytest.mark.slow
def test_batched_results_equal_one_process_per_selector(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    write_files(root, SUITE)
    selectors = sels(*SELECTORS)

    batched = run_batched(selectors, cwd=root, out_dir=tmp_path / "batched", options=FAST)
    solo = run_batched(selectors, cwd=root, out_dir=tmp_path / "solo", options=FAST, batched=False)

    assert {r.selector: r.status for r in batched.results} == EXPECTED
    assert [comparable(r) for r in batched.results] == [comparable(r) for r in solo.results]
    assert len(solo.batches) == len(SELECTORS)
    # One batch, plus: the missing file, the -k selector, the empty file, and one split per refusal
    # (the broken conftest, then the missing node id), each culprit alone.
    assert len(batched.batches) <= 8, [(b.name, b.why) for b in batched.batches]
    by_name = {r.selector: r for r in batched.results}
    assert dict(by_name["tests/test_math.py"].counts) == {"passed": 3, "failed": 2, "skipped": 1, "error": 1}
    assert by_name["tests/test_math.py::test_p"].failing == ("tests/test_math.py::test_p[2]",)
    assert sorted(by_name["./tests/sub/"].nodeids) == [
        "tests/sub/deeper/test_c.py::test_c", "tests/sub/test_b.py::test_b1", "tests/sub/test_b.py::test_b2"]
    assert "nope" in by_name["tests/test_math.py::nope"].detail
    assert "no_such_module_either" in by_name["tests/cbad/test_d.py"].detail
    for b in batched.batches:
        assert (tmp_path / "batched" / b.log).is_file()
        assert b.junit is not None or b.returncode not in (0, 1)
        assert b.junit is None or (tmp_path / "batched" / b.junit).is_file()


@pytest.mark.slow
def test_collect_only_batches_and_maps_collected_node_ids(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    write_files(root, SUITE)
    chosen = sels("tests/test_math.py::test_p", "./tests/sub/", "tests/test_empty.py", "tests/test_broken.py",
                  "tests/missing.py", "tests/test_math2.py")
    run = run_batched(chosen, cwd=root, out_dir=tmp_path / "out", options=FAST, collect_only=True)

    statuses = {r.selector: (r.status, dict(r.counts)) for r in run.results}
    assert statuses == {
        "tests/test_math.py::test_p": (Status.COLLECTED, {"collected": 2}),
        "./tests/sub/": (Status.COLLECTED, {"collected": 3}),
        "tests/test_empty.py": (Status.NO_TESTS, {}),
        "tests/test_broken.py": (Status.ERROR, {"error": 1}),
        "tests/missing.py": (Status.NO_TESTS, {}),
        "tests/test_math2.py": (Status.COLLECTED, {"collected": 1}),
    }
    assert len(run.batches) == 3  # the missing file alone, the batch, the empty file alone
    assert [r.selector for r in run.bad()] == [
        "tests/test_empty.py", "tests/test_broken.py", "tests/missing.py"]


@pytest.mark.slow
def test_jobs_runs_batches_under_xdist_with_the_same_results(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    write_files(root, {k: v for k, v in SUITE.items() if "cbad" not in k and "broken" not in k})
    chosen = sels("tests/test_math.py::test_ok", "tests/test_math.py::test_p", "./tests/sub/",
                  "tests/test_math2.py")
    run = run_batched(chosen, cwd=root, out_dir=tmp_path / "out", options=FAST, jobs=2)

    assert [(r.status, dict(r.counts)) for r in run.results] == [
        (Status.PASSED, {"passed": 1}), (Status.FAILED, {"passed": 1, "failed": 1}),
        (Status.PASSED, {"passed": 3}), (Status.PASSED, {"passed": 1})]
    assert len(run.batches) == 1
    command = (tmp_path / "out" / f"{run.batches[0].name}.command.txt").read_text()
    assert "-n 2" in command and "-p xdist" in command


@pytest.mark.slow
def test_a_timed_out_batch_is_not_rerun_and_reports_what_it_did_not_reach(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    write_files(root, {"pytest.ini": "[pytest]\n", "tests/test_a.py": "def test_a():\n    pass\n",
                       "tests/test_z.py": "import time\n\n\ndef test_sleeps():\n    time.sleep(60)\n"})
    options = PytestSettings(env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}, timeout_s=3)
    run = run_batched(sels("tests/test_a.py", "tests/test_z.py"), cwd=root, out_dir=tmp_path / "out",
                        options=options)

    assert len(run.batches) == 1
    a, z = run.results
    assert a.status == Status.PASSED
    assert z.status == Status.ERROR and "timed out" in z.detail
