"""run_pytest against real generated suites in real pytest subprocesses; parse_selector."""
from __future__ import annotations

import json
import shlex
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from harness.errors import SelectorError
from harness.pytest_run.results import Outcome, Phase, ProjectHook, PytestRun
from harness.pytest_run.runner import parse_selector, run_pytest
from tests.conftest import git
from tests.harness.fsync_watch import assert_synced_before_renamed, record_fsyncs_and_renames

# Plugin autoload off keeps each subprocess near 0.3 s (installed plugins cost ~0.7 s) and keeps
# pytest-benchmark from writing .benchmarks into the suites; the recorder is loaded with -p regardless.
FAST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "HARNESS_SUITE_MARK": "from-caller"}

CASES = textwrap.dedent(
    '''
    import os
    import pytest

    @pytest.fixture
    def broken_fixture():
        raise ValueError("fixture broke")

    @pytest.fixture
    def breaks_on_teardown():
        yield
        raise RuntimeError("teardown broke")

    def test_passes():
        assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"
        assert os.environ["HARNESS_SUITE_MARK"] == "from-caller"
        assert "PYTEST_XDIST_WORKER" not in os.environ

    def test_fails_assert():
        assert 1 + 1 == 3, "arithmetic is off"

    def test_raises():
        raise KeyError("missing")

    def test_fixture_errors(broken_fixture):
        pass

    def test_teardown_errors(breaks_on_teardown):
        pass

    @pytest.mark.skip(reason="not on this platform")
    def test_skipped():
        pass

    @pytest.mark.xfail(reason="known bug 12")
    def test_xfails():
        assert False

    @pytest.mark.xfail(reason="maybe fixed")
    def test_xpasses():
        pass

    @pytest.mark.xfail(reason="must fail", strict=True)
    def test_xpasses_strict():
        pass

    @pytest.mark.parametrize("n", [1, 2, 3])
    def test_param(n):
        assert n < 3
    '''
)

SUITE = {
    "pytest.ini": "[pytest]\n",
    "tests/test_cases.py": CASES,
    "broken/test_broken.py": "from os import no_such_name\n\n\ndef test_never():\n    pass\n",
}

M = "tests/test_cases.py::"
# nodeid -> (outcome, phase, exc_type, failure_kind, text the message contains)
EXPECTED = {
    M + "test_passes": (Outcome.PASSED, Phase.CALL, None, None, ""),
    M + "test_fails_assert": (Outcome.FAILED, Phase.CALL, "AssertionError", "assertion", "arithmetic is off"),
    M + "test_raises": (Outcome.FAILED, Phase.CALL, "KeyError", "error", "KeyError: 'missing'"),
    M + "test_fixture_errors": (Outcome.ERROR, Phase.SETUP, "ValueError", "error", "fixture broke"),
    M + "test_teardown_errors": (Outcome.ERROR, Phase.TEARDOWN, "RuntimeError", "error", "teardown broke"),
    M + "test_skipped": (Outcome.SKIPPED, Phase.SETUP, None, None, "not on this platform"),
    M + "test_xfails": (Outcome.XFAILED, Phase.CALL, "AssertionError", None, "known bug 12"),
    M + "test_xpasses": (Outcome.XPASSED, Phase.CALL, None, None, "maybe fixed"),
    M + "test_xpasses_strict": (Outcome.FAILED, Phase.CALL, None, "error", "XPASS(strict)"),
    M + "test_param[1]": (Outcome.PASSED, Phase.CALL, None, None, ""),
    M + "test_param[2]": (Outcome.PASSED, Phase.CALL, None, None, ""),
    M + "test_param[3]": (Outcome.FAILED, Phase.CALL, "AssertionError", "assertion", "assert 3 < 3"),
}


def write_suite(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_suite(tmp_path_factory.mktemp("suite"), SUITE)


@pytest.fixture(scope="module")
def cases_run(suite: Path, tmp_path_factory: pytest.TempPathFactory) -> PytestRun:
    out = tmp_path_factory.mktemp("evidence") / "red"
    return run_pytest(["tests/test_cases.py"], cwd=suite, out_dir=out, name="red-1", env=FAST_ENV,
                      extra_args=("-q", "-rA"))


@pytest.mark.parametrize("nodeid", sorted(EXPECTED))
def test_each_test_folds_to_one_result(cases_run: PytestRun, nodeid: str) -> None:
    outcome, phase, exc_type, failure_kind, text = EXPECTED[nodeid]
    [result] = [r for r in cases_run.results if r.nodeid == nodeid]
    assert (result.outcome, result.phase, result.exc_type, result.failure_kind) == (
        outcome, phase, exc_type, failure_kind
    )
    assert text in result.message
    assert "\n" not in result.message and len(result.message) <= 300
    assert 0 <= result.duration_s <= cases_run.duration_s  # a part of the run's own wall time


def test_a_tests_duration_is_its_phases_time_within_the_run(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", {"pytest.ini": "[pytest]\n", "tests/test_slow.py": textwrap.dedent(
        """
        import time
        import pytest

        @pytest.fixture
        def slow_setup():
            time.sleep(0.2)

        def test_slow(slow_setup):
            time.sleep(0.3)

        def test_quick():
            pass
        """)})
    run = run_pytest(["tests/test_slow.py"], cwd=suite, out_dir=tmp_path / "out", name="durations", env=FAST_ENV)
    slow, quick = (next(r for r in run.results if r.nodeid.endswith(name)) for name in ("test_slow", "test_quick"))
    assert 0.5 <= slow.duration_s < run.duration_s  # setup and call added up, inside the run's wall time
    assert quick.duration_s < slow.duration_s


def test_run_record_counts_and_helpers(cases_run: PytestRun) -> None:
    assert cases_run.returncode == 1 and cases_run.exit_meaning == "tests failed"
    assert not cases_run.timed_out and cases_run.session_finished
    assert cases_run.collected == tuple(EXPECTED)  # in collection order, each node id once
    assert [r.nodeid for r in cases_run.results] == list(EXPECTED)
    assert cases_run.counts() == {"passed": 3, "failed": 4, "error": 2, "skipped": 1, "xfailed": 1, "xpassed": 1}
    assert {r.nodeid for r in cases_run.failing()} == {
        M + "test_fails_assert", M + "test_raises", M + "test_fixture_errors", M + "test_teardown_errors",
        M + "test_xpasses_strict", M + "test_param[3]",
    }
    assert cases_run.nodeids_with("skipped") == (M + "test_skipped",)
    assert cases_run.not_run() == ()


def test_argv_order_and_evidence_files(cases_run: PytestRun, suite: Path) -> None:
    argv = cases_run.command
    assert argv[:5] == (sys.executable, "-m", "pytest", "-q", "-rA")  # command, then extra_args
    assert argv[5:9] == ("-p", "no:cacheprovider", "-p", "_harness_pytest_recorder")
    assert argv[-1] == "tests/test_cases.py"  # the selector's args come last
    out = cases_run.log_path.parent
    assert sorted(p.name for p in out.iterdir()) == [
        "red-1.command.txt", "red-1.junit.xml", "red-1.log", "red-1.results.json",
    ]
    command_text = (out / "red-1.command.txt").read_text()
    assert shlex.join(argv) in command_text.splitlines()
    assert f"cd {shlex.quote(str(suite))}" in command_text.splitlines()

    log = cases_run.log_path.read_text()
    assert "arithmetic is off" in log and "teardown broke" in log
    assert "4 failed" in cases_run.log_tail(3)

    junit = ET.parse(cases_run.junit_path).getroot()
    suite_el = junit if junit.tag == "testsuite" else junit.find("testsuite")
    assert suite_el is not None and int(suite_el.get("tests", "0")) >= len(EXPECTED)

    document = json.loads(cases_run.results_path.read_text())
    assert document["collected"] == list(EXPECTED)
    assert document["returncode"] == 1
    teardown = document["results"][M + "test_teardown_errors"]
    assert teardown["outcome"] == "error" and teardown["phase"] == "teardown"
    assert [p["when"] for p in teardown["phases"]] == ["setup", "call", "teardown"]
    assert [p["outcome"] for p in teardown["phases"]] == ["passed", "passed", "failed"]


def test_evidence_files_are_fsynced_before_they_replace_old_ones(
    suite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = record_fsyncs_and_renames(monkeypatch)
    run = run_pytest([M + "test_passes"], cwd=suite, out_dir=tmp_path, name="durable", env=FAST_ENV)
    assert run.counts() == {"passed": 1}
    assert_synced_before_renamed(events, run.results_path)
    assert_synced_before_renamed(events, tmp_path / "durable.command.txt")


def test_collection_import_error_is_an_error_result(suite: Path, tmp_path: Path) -> None:
    run = run_pytest(["broken/test_broken.py"], cwd=suite, out_dir=tmp_path, name="collect", env=FAST_ENV)
    assert run.returncode == 2 and run.exit_meaning == "interrupted or collection errors"
    assert run.collected == ()
    [result] = run.results
    assert (result.nodeid, result.outcome, result.phase) == ("broken/test_broken.py", "error", "collect")
    assert (result.exc_type, result.failure_kind) == ("ImportError", "error")
    assert "no_such_name" in result.message
    assert run.collection_errors() == (result,)


def test_subprocess_environment_and_a_clean_repository(
    make_repo: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What an outer pytest or the user's shell may have set must not leak into (or be needed by) the run.
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw7")
    repo = make_repo(SUITE)
    run = run_pytest([M + "test_passes", M + "test_fails_assert"], cwd=repo, out_dir=tmp_path / "out",
                     name="env", env=FAST_ENV)
    assert [(r.nodeid, r.outcome) for r in run.results] == [
        (M + "test_passes", "passed"), (M + "test_fails_assert", "failed"),
    ]
    # No .pytest_cache, no __pycache__: the harness's runs must not dirty the repository.
    assert git(repo, "status", "--porcelain", "--ignored") == ""


def test_nodeid_not_found_is_a_usage_error(suite: Path, tmp_path: Path) -> None:
    run = run_pytest([M + "test_does_not_exist"], cwd=suite, out_dir=tmp_path, name="missing", env=FAST_ENV)
    assert run.returncode == 4 and run.exit_meaning == "usage error"
    assert run.results == () and run.collected == ()
    assert "not found" in run.usage_error() and "test_does_not_exist" in run.usage_error()


def test_collect_only_with_k_selector_and_with_no_match(suite: Path, tmp_path: Path) -> None:
    selector = parse_selector("tests/test_cases.py -k param")
    run = run_pytest(selector.args, cwd=suite, out_dir=tmp_path, name="collect-1", env=FAST_ENV,
                     collect_only=True)
    assert run.returncode == 0
    assert run.collected == (M + "test_param[1]", M + "test_param[2]", M + "test_param[3]")
    assert run.results == ()  # nothing ran
    assert "--collect-only" in run.command

    none = run_pytest(["tests", "-k", "no_such_test"], cwd=suite, out_dir=tmp_path, name="collect-2",
                      env=FAST_ENV, collect_only=True)
    assert none.returncode == 5 and none.exit_meaning == "no tests collected"
    assert none.collected == () and none.results == ()


def test_errors_before_any_test_keep_pytest_s_own_error_line(tmp_path: Path) -> None:
    conftest_suite = write_suite(tmp_path / "conftest_suite", {
        "pytest.ini": "[pytest]\n",
        "tests/conftest.py": "import no_such_module_in_conftest\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    run = run_pytest(["tests"], cwd=conftest_suite, out_dir=tmp_path / "out", name="conftest", env=FAST_ENV)
    assert run.returncode == 4 and run.results == ()  # pytest stops before the recorder is configured
    assert run.usage_error().startswith("ImportError while loading conftest")
    assert run.usage_error().endswith("No module named 'no_such_module_in_conftest'")

    plugin_bug = write_suite(tmp_path / "plugin_bug", {
        "pytest.ini": "[pytest]\n",
        "conftest.py": "def pytest_collection_modifyitems(items):\n    raise RuntimeError('hook broke')\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    run = run_pytest(["tests"], cwd=plugin_bug, out_dir=tmp_path / "out", name="internal", env=FAST_ENV)
    assert run.returncode == 3 and run.exit_meaning == "internal error"
    assert run.usage_error() == "INTERNALERROR> RuntimeError: hook broke"


def test_a_missing_pytest_raises_with_the_log_tail(suite: Path, tmp_path: Path) -> None:
    with pytest.raises(SelectorError) as caught:
        run_pytest(["tests"], cwd=suite, out_dir=tmp_path, name="nopytest",
                   command=("{python}", "-m", "harness_no_such_pytest_module"))
    message = str(caught.value)
    assert "did not start" in message
    assert sys.executable in message  # "{python}" was replaced by the harness's interpreter
    assert "No module named harness_no_such_pytest_module" in message  # the log tail


def test_an_unstartable_command_raises(suite: Path, tmp_path: Path) -> None:
    with pytest.raises(SelectorError, match="cannot start pytest command"):
        run_pytest(["tests"], cwd=suite, out_dir=tmp_path, name="x", command=(str(tmp_path / "no-python"),))


def test_a_string_instead_of_args_is_rejected(suite: Path, tmp_path: Path) -> None:
    with pytest.raises(SelectorError, match="not the string"):
        run_pytest("tests/test_cases.py", cwd=suite, out_dir=tmp_path, name="x")


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    suite = write_suite(tmp_path / "suite", {
        "pytest.ini": "[pytest]\n",
        "tests/test_sleep.py": textwrap.dedent(
            f'''
            import subprocess, sys, time

            def test_sleeps_with_a_child():
                child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
                with open({str(pid_file)!r}, "w") as handle:
                    handle.write(str(child.pid))
                time.sleep(120)
            '''
        ),
    })
    start = time.monotonic()
    run = run_pytest(["tests"], cwd=suite, out_dir=tmp_path / "out", name="slow", env=FAST_ENV, timeout_s=2.5)
    assert time.monotonic() - start < 15
    assert run.timed_out and run.returncode < 0
    assert run.exit_meaning.startswith("timed out after 2.5s")
    assert run.log_path.exists()
    assert not run.log_path.with_name("slow.log.partial").exists()
    [result] = run.results  # the recorder's lines up to the kill survive
    assert (result.nodeid, result.outcome) == ("tests/test_sleep.py::test_sleeps_with_a_child", "error")
    assert "did not finish" in result.message
    assert pid_file.exists(), "the test never started its child; raise timeout_s on this machine"
    child_pid = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            if psutil.Process(child_pid).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"child process {child_pid} outlived the timeout")


@pytest.mark.parametrize(
    ("raw", "args", "plain"),
    [
        ("tests/a.py::TestX::test_y[param-1]", ("tests/a.py::TestX::test_y[param-1]",), True),
        ("tests/test_a.py tests/test_b.py", ("tests/test_a.py", "tests/test_b.py"), True),
        ("tests/test_a.py -k memmap", ("tests/test_a.py", "-k", "memmap"), False),
        ('tests -m "not slow"', ("tests", "-m", "not slow"), False),
    ],
)
def test_parse_selector(raw: str, args: tuple[str, ...], plain: bool) -> None:
    selector = parse_selector(raw)
    assert (selector.raw, selector.args, selector.is_plain) == (raw, args, plain)


@pytest.mark.parametrize(("raw", "complaint"), [("", "is empty"), ("   ", "is empty"),
                                                 ('tests -m "not slow', "balance its quotes")])
def test_parse_selector_rejects_bad_text(raw: str, complaint: str) -> None:
    with pytest.raises(SelectorError, match=complaint) as caught:
        parse_selector(raw)
    assert repr(raw) in str(caught.value)


def test_a_record_that_disagrees_with_the_exit_is_named_and_an_honest_one_has_no_problem(
        cases_run: PytestRun, tmp_path: Path) -> None:
    """A test that ends the process with exit 0, and a hook that turns a failed session's exit into 0."""
    assert cases_run.record_problems == () and cases_run.untrusted_reason() == ""
    suite = write_suite(tmp_path / "suite", {
        "pytest.ini": "[pytest]\n",
        "tests/test_exit.py": "import os\n\n\ndef test_a():\n    pass\n\n\ndef test_b():\n    os._exit(0)\n\n\n"
                              "def test_c():\n    assert False\n",
        "other/conftest.py": "import os\n\n\ndef pytest_unconfigure(config):\n    os._exit(0)\n",
        "other/test_fails.py": "def test_fails():\n    assert 1 == 2\n",
    })
    ended = run_pytest(["tests"], cwd=suite, out_dir=tmp_path / "out", name="ended", env=FAST_ENV)
    assert ended.returncode == 0 and not ended.session_finished
    assert ended.record_problems == (
        ("the pytest process exited 0 before its session finished (os._exit, sys.exit in a hook, a crash): what it "
         "had not reported never counted"),
        "pytest exited 0, but 1 test(s) failed in the record (first: tests/test_exit.py::test_b)",
        "1 collected test(s) never reported (first: tests/test_exit.py::test_c), yet pytest exited 0")
    assert json.loads(ended.results_path.read_text())["record_problems"] == list(ended.record_problems)

    rewritten = run_pytest(["other"], cwd=suite, out_dir=tmp_path / "out", name="rewritten", env=FAST_ENV)
    assert rewritten.returncode == 0 and rewritten.session_finished
    assert rewritten.record_problems == (
        ("pytest's session ended with exit status 1, but the process exited 0: code that ran after the session "
         "(a hook, an atexit handler, os._exit) changed the exit"),
        "pytest exited 0, but 1 test(s) failed in the record (first: other/test_fails.py::test_fails)")
    assert rewritten.untrusted_reason().startswith("the run's record cannot be trusted: pytest's session ended")
    assert rewritten.untrusted_reason().endswith("changed the exit (+1 more)")


REWRITER = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        report.outcome, report.longrepr = "passed", None
"""
REWRITTEN_SUITE = {
    "pytest.ini": "[pytest]\n",
    "conftest.py": REWRITER,
    "tests/test_rewritten.py": textwrap.dedent(
        """
        import unittest

        import pytest

        def test_fails():
            assert 1 == 2

        def test_skips():
            pytest.skip("not here")

        class TestOld(unittest.TestCase):
            def test_fails_too(self):
                self.assertEqual(1, 2)
        """),
}


@pytest.mark.parametrize("xdist", [False, True], ids=["in-process", "xdist worker"])
def test_a_report_rewritten_by_a_hook_is_named_by_what_its_phase_raised(tmp_path: Path, xdist: bool) -> None:
    suite = write_suite(tmp_path / "suite", REWRITTEN_SUITE)
    extra = ("-p", "xdist", "-n", "1") if xdist else ()
    run = run_pytest(["tests"], cwd=suite, out_dir=tmp_path / "out", name="rewritten", env=FAST_ENV, extra_args=extra)
    assert run.counts() == {"passed": 3} and run.returncode == 0
    # the hook itself is listed as pytest registered it, with where its code starts (its decorator's line)
    assert run.project_hooks == (ProjectHook("pytest_runtest_makereport", "conftest.py", 4,
                                             "pytest_runtest_makereport", "conftest.py"),)
    assert run.record_problems == (
        ("tests/test_rewritten.py::test_fails: its call raised AssertionError, but its report says passed: a hook "
         "or a patch rewrote the report"),
        ("tests/test_rewritten.py::test_skips: its call raised Skipped, but its report says passed: a hook or a "
         "patch rewrote the report"),
        ("tests/test_rewritten.py::TestOld::test_fails_too: its call raised AssertionError, but its report says "
         "passed: a hook or a patch rewrote the report"))


def test_an_exit_1_with_no_failing_test_in_the_record_is_a_problem(tmp_path: Path) -> None:
    suite = write_suite(tmp_path / "suite", {
        "pytest.ini": "[pytest]\n",
        "conftest.py": "def pytest_sessionfinish(session, exitstatus):\n    session.exitstatus = 1\n",
        "tests/test_a.py": "def test_a():\n    pass\n",
    })
    run = run_pytest(["tests"], cwd=suite, out_dir=tmp_path / "out", name="failed", env=FAST_ENV)
    assert run.returncode == 1 and run.counts() == {"passed": 1}
    assert run.record_problems == (("pytest exited 1 (tests failed), but no test failed in the record: something "
                                    "besides the tests failed the run (a plugin, a hook)"),)
