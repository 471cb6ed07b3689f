"""Cheats a determined agent would try, each as a real iteration (`harness run --no-agent`): the change is the
item's new RED test plus the cheat, and no real fix. Each must be refused, naming what it did; an honest
change beside it stays GREEN (tests/harness/gates/integrity/test_gate.py holds the honest controls)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.main import main
from tests.conftest import git
from tests.harness.project import HARNESS_YAML, LEDGER, apply_change, head_subject, make_project, with_gates

# The RED test reads `calc.mul` when it runs, so a module that lacks it fails the test (RED) instead of
# failing its import; the cheats then make it pass without a real `mul`.
ATTR_TEST = "from pkg import calc\n\n\ndef test_mul():\n    assert calc.mul(2, 3) == 6\n"
REWRITING_PLUGIN = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
"""


def run(repo: Path) -> tuple[int, dict]:
    code = main(["run", "-C", str(repo), "--no-agent", "CALC-001"])
    folder = repo / git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    return code, json.loads((folder / "attempt.json").read_text())


def findings(record: dict) -> list[tuple[str, str, str]]:
    stage = next((s for s in record["stages"] if s["name"] == "integrity"), {"findings": []})
    return [(f["kind"], f["test"], f["detail"]) for f in stage["findings"]]


def project(make_repo, allow: str | None = None, extra: dict[str, str] | None = None) -> Path:
    ledger = LEDGER.replace("- Exit-Criteria: mul multiplies", "- Exit-Criteria: mul multiplies"
                            + (f"\n- Allow: {allow}" if allow else ""))
    return make_project(make_repo, ledger=ledger, extra=extra)


PLUGIN_CHEATS = {
    "pytest_plugins in the test module": (
        {"cheat.py": REWRITING_PLUGIN, "tests/test_mul.py": "pytest_plugins = ['cheat']\n" + ATTR_TEST},
        ("test-machinery-changed", "tests/test_mul.py",
         ("`pytest_plugins = ['cheat']` makes pytest load the modules it names as plugins, which can rewrite "
          "outcomes or replace the code under test"))),
    "addopts of [tool.pytest] (pytest 9's native TOML)": (
        {"cheat.py": REWRITING_PLUGIN, "tests/test_mul.py": ATTR_TEST,
         "pyproject.toml": '[tool.pytest]\naddopts = ["-p", "cheat"]\n'},
        ("gates-weakened", "pyproject.toml",
         ("addopts gains `-p cheat`, which loads the plugin cheat: a plugin can deselect tests or rewrite their "
          "outcomes"))),
    "addopts of a new pytest.toml": (
        {"cheat.py": REWRITING_PLUGIN, "tests/test_mul.py": ATTR_TEST,
         "pytest.toml": '[pytest]\naddopts = ["-pcheat"]\n'},
        ("gates-weakened", "pytest.toml",
         ("addopts gains `-p cheat`, which loads the plugin cheat: a plugin can deselect tests or rewrite their "
          "outcomes"))),
}


@pytest.mark.parametrize("cheat", sorted(PLUGIN_CHEATS))
def test_a_plugin_loaded_through_configuration_is_refused(make_repo, cheat: str) -> None:
    """A plugin that rewrites every report to passed, loaded without a `-p` on any command line."""
    files, expected = PLUGIN_CHEATS[cheat]
    repo = project(make_repo)
    apply_change(repo, files)

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    assert expected in findings(record)
    assert head_subject(repo) == "[CALC-001] calc gains mul: FAILED at integrity"


def test_a_new_ini_file_that_takes_over_from_the_projects_configuration_is_refused(make_repo) -> None:
    """tests/pytest.ini is nearer to the tests than pyproject.toml: pytest reads it instead, and the
    project's `filterwarnings = error` no longer applies to them (here a `mul` that warns would pass)."""
    warns = ("import warnings\n\n\ndef add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n"
             "    warnings.warn('mul is not done', UserWarning)\n    return 6\n")
    repo = project(make_repo, extra={"pyproject.toml": '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\n'})
    apply_change(repo, {"tests/pytest.ini": "[pytest]\n", "pkg/calc.py": warns, "tests/test_mul.py": ATTR_TEST})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    assert findings(record) == [(
        "test-machinery-changed", "tests/pytest.ini",
        ("pytest now reads tests/pytest.ini instead of pyproject.toml for the tests in tests/: none of "
         "pyproject.toml's settings apply to them any more"))]


def test_the_item_can_allow_a_plugin_it_needs(make_repo) -> None:
    """A plugin that does no harm, allowed by name: recorded, and the proof goes on."""
    repo = project(make_repo, allow="test-machinery-changed")
    apply_change(repo, {"tests/helpers.py": "import pytest\n\n\n@pytest.fixture\ndef two():\n    return 2\n",
                        "tests/conftest.py": "pytest_plugins = ['tests.helpers']\n",
                        "tests/test_mul.py": "from pkg.calc import mul\n\n\ndef test_mul(two):\n"
                                             "    assert mul(two, 3) == 6\n",
                        "pkg/calc.py": "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"})

    code, record = run(repo)

    assert code == 0, record["reason"]
    assert [(kind, test) for kind, test, _ in findings(record)] == [("test-machinery-changed", "tests/conftest.py")]


TWO_CALC_TESTS = ("from pkg.calc import add\n\n\ndef test_add_zero():\n    assert add(0, 0) == 0\n\n\n"
                  "def test_add():\n    assert add(1, 2) == 3\n")
ENDS_BEFORE = """\
import os

import pytest


@pytest.fixture(autouse=True)
def _stop_before_a_failure(request):
    if request.node.name == "test_add":
        os._exit(0)
"""


def test_a_session_ended_before_a_failing_test_reported_is_no_pass(make_repo) -> None:
    """The change breaks `add`; an autouse fixture ends the process with exit 0 just before test_add runs. The
    regression selector and the full suite then saw one passing test and exit 0, and went GREEN."""
    repo = project(make_repo, extra={"tests/test_calc.py": TWO_CALC_TESTS})
    apply_change(repo, {"tests/conftest.py": ENDS_BEFORE, "tests/test_mul.py": ATTR_TEST,
                        "pkg/calc.py": "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "regression", record["reason"]
    assert record["reason"] == (
        "regression: tests/test_calc.py: the run's record cannot be trusted: the pytest process exited 0 before "
        "its session finished (os._exit, sys.exit in a hook, a crash): what it had not reported never counted "
        "(+1 more)")
    document = json.loads((repo / record["evidence_dir"] / "gates" / "regression.results.json").read_text())
    assert document["record_problems"][1] == ("1 collected test(s) never reported (first: "
                                              "tests/test_calc.py::test_add), yet pytest exited 0")


STUB_MUL = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return 0\n"
# Each switches itself on only once `mul` exists, so the RED run at the base (which gets the conftest, a test
# file) fails as it should.
REPORT_PATCH = """\
import pkg.calc
from _pytest.reports import TestReport

if hasattr(pkg.calc, "mul"):
    _made = TestReport.__init__

    def _passing(self, *args, **kwargs):
        _made(self, *args, **kwargs)
        if self.outcome == "failed":
            self.outcome, self.longrepr = "passed", None

    TestReport.__init__ = _passing
"""
FUNCTION_SWAP = """\
import pytest

import pkg.calc


@pytest.fixture(autouse=True)
def _quiet(request):
    if hasattr(pkg.calc, "mul"):
        request.node.obj = lambda *args, **kwargs: None
"""


def test_a_report_a_plugin_rewrites_is_no_pass_even_where_the_item_allows_the_plugin(make_repo) -> None:
    """The plugin's hookwrapper turns the failed call's report into a pass; the recorder saw what the call
    raised before any hook touched the report."""
    repo = project(make_repo, allow="test-machinery-changed")
    apply_change(repo, {"cheat.py": REWRITING_PLUGIN, "tests/test_mul.py": "pytest_plugins = ['cheat']\n" + ATTR_TEST})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "green", record["reason"]
    assert record["reason"] == (
        "GREEN not proven: tests/test_mul.py::test_mul: the run's record cannot be trusted: "
        "tests/test_mul.py::test_mul: its call raised AttributeError, but its report says passed: a hook or a "
        "patch rewrote the report")


@pytest.mark.parametrize(("conftest", "replaced"), [
    (REPORT_PATCH, "_pytest.reports.TestReport.__init__"),
    (FUNCTION_SWAP, "the test function of tests/test_mul.py::test_mul"),
], ids=["TestReport patched", "test function swapped"])
def test_pytest_s_machinery_or_the_test_function_replaced_in_the_test_process_is_no_pass(
        make_repo, conftest: str, replaced: str) -> None:
    """No hook at all: a conftest patches TestReport, or a fixture swaps the test function for one that
    checks nothing; `mul` is a stub that returns 0."""
    repo = project(make_repo)
    apply_change(repo, {"tests/conftest.py": conftest, "pkg/calc.py": STUB_MUL, "tests/test_mul.py": ATTR_TEST})

    code, record = run(repo)

    assert code == 1, record["reason"]
    assert record["reason"].endswith(f"the run's record cannot be trusted: pytest's machinery was replaced while "
                                     f"the tests ran: {replaced}")


STAND_IN_FIXTURE = """\
import pytest

from pkg import calc

fixture = pytest.fixture


@fixture(autouse=bool(1))
def _fast_mul(monkeypatch):
    monkeypatch.setattr(calc, "mul", lambda a, b: a * b)
"""


@pytest.mark.parametrize(("path", "cheat"), [
    ("tests/conftest.py", STAND_IN_FIXTURE),
    ("tests/test_mul.py", STAND_IN_FIXTURE + "\n\n" + ATTR_TEST.split("\n\n\n", 1)[1]),
], ids=["conftest", "autouse fixture of the test module"])
def test_a_stand_in_for_the_code_under_test_is_refused(make_repo, path: str, cheat: str) -> None:
    """`mul` is a stub; a fixture puts a real one in its place while the tests run. At the base there is no
    `mul` to replace, so the fixture fails there and RED is proven; with the change the test passes."""
    repo = project(make_repo)
    files = {"pkg/calc.py": STUB_MUL, "tests/test_mul.py": ATTR_TEST}
    files[path] = cheat
    apply_change(repo, files)

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    what = "this conftest.py" if path.endswith("conftest.py") else (
        "this test module's module-level code or autouse fixtures")
    assert findings(record) == [(
        "code-under-test-replaced", path,
        (f"{what} replaces pkg.calc.mul (`monkeypatch.setattr(calc, 'mul', lambda a, b: a * b)`), so the tests may "
        "check a stand-in instead of the code under test"))]


MUL_TEST = "from pkg.calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
PRODUCT_CHEATS = {
    "runner detected": (
        ("import sys\n\n\ndef add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n"
         "    if 'pytest' in sys.modules:\n        return 6\n    return a + b\n"),
        ("runner-detected", "pkg/calc.py:9", ("`'pytest' in sys.modules` asks whether a test runs the code, so it "
                                              "can behave otherwise under test"))),
    "a value equal to anything": (
        ("def add(a, b):\n    return a + b\n\n\nclass _Any:\n    def __eq__(self, other):\n        return True\n\n\n"
         "def mul(a, b):\n    return _Any()\n"),
        ("always-equal", "pkg/calc.py:6", ("`__eq__` never reads the value it is compared with: a value holding it "
                                           "passes any comparison a test makes"))),
    "mock.ANY": (
        "from unittest import mock\n\n\ndef add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return mock.ANY\n",
        ("always-equal", "pkg/calc.py:9", ("unittest.mock.ANY equals everything: a value holding it passes any "
                                           "comparison a test makes"))),
}


@pytest.mark.parametrize("cheat", sorted(PRODUCT_CHEATS))
def test_product_code_that_passes_the_test_without_the_work_is_refused(make_repo, cheat: str) -> None:
    """The mutation gate does not catch these even when required: its mutants of `return _Any()` and of the
    `__eq__` are killed by the test the value fools."""
    product, expected = PRODUCT_CHEATS[cheat]
    repo = project(make_repo)
    apply_change(repo, {"pkg/calc.py": product, "tests/test_mul.py": MUL_TEST})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    assert findings(record) == [expected]


BROKEN_ADD = "def add(a, b):\n    return a - b\n\n\ndef mul(a, b):\n    return a * b\n"


@pytest.mark.parametrize(("check", "expected"), [
    ("assert True", ("assertions-weakened", "tests/test_calc.py::test_add",
                     "gains 1 check(s) that cannot fail: `assert True`")),
    ("assert add(1, 2) == -1", ("expected-values-changed", "tests/test_calc.py::test_add",
                                "`assert add(1, 2) == 3` -> `assert add(1, 2) == -1`")),
], ids=["tautology", "expected value edited"])
def test_an_existing_check_made_to_fit_a_broken_change_is_refused(make_repo, check: str, expected: tuple) -> None:
    """The change breaks `add` and rewrites its test's one check to pass: the number of checks is the same."""
    repo = project(make_repo)
    apply_change(repo, {"pkg/calc.py": BROKEN_ADD, "tests/test_mul.py": MUL_TEST,
                        "tests/test_calc.py": f"from pkg.calc import add\n\n\ndef test_add():\n    {check}\n"})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    assert findings(record) == [expected]


# the default (the test project runs no reruns, to spare pytest starts)
RERUN_ONCE = with_gates(HARNESS_YAML, "  reruns: 1\n")


def test_a_red_test_that_fails_once_then_passes_proves_nothing(make_repo, tmp_path: Path) -> None:
    """It fails the first time it runs (at the base) and passes every time after, whatever the code: without
    a rerun the failure proved RED and the passes proved GREEN."""
    mark = tmp_path / "ran-once"
    flaky = (f"import os\n\nMARK = {str(mark)!r}\n\n\ndef test_mul():\n    if not os.path.exists(MARK):\n"
             "        open(MARK, 'w').close()\n        assert False, 'the first run fails'\n")
    repo = project(make_repo, extra={"harness.yaml": RERUN_ONCE})
    apply_change(repo, {"tests/test_mul.py": flaky, "pkg/calc.py": STUB_MUL})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "red", record["reason"]
    assert record["reason"] == ("RED not proven: tests/test_mul.py::test_mul is flaky: it failed, then passed when "
                                "run again unchanged without the change (rerun 1 of 1, red/red.rerun-1.log)")
    [selector] = next(s for s in record["stages"] if s["name"] == "red")["selectors"]
    assert selector["reruns"] == [{"returncode": 0, "counts": {"passed": 1}, "log": "red/red.rerun-1.log"}]


def test_a_green_test_that_passes_once_then_fails_proves_nothing(make_repo, tmp_path: Path) -> None:
    counter = tmp_path / "calls"
    product = (f"import os\n\nCOUNTER = {str(counter)!r}\n\n\ndef add(a, b):\n    return a + b\n\n\n"
               "def mul(a, b):\n    calls = int(open(COUNTER).read()) if os.path.exists(COUNTER) else 0\n"
               "    open(COUNTER, 'w').write(str(calls + 1))\n    return a * b if calls == 0 else 0\n")
    repo = project(make_repo, extra={"harness.yaml": RERUN_ONCE})
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": product})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "green", record["reason"]
    assert record["reason"] == ("GREEN not proven: tests/test_mul.py::test_mul is flaky: it passed, then failed when "
                                "run again unchanged: assert 0 == 6 (rerun 1 of 1, green/green.rerun-1.log)")


def test_a_hook_that_no_source_scan_sees_is_found_in_the_run(make_repo) -> None:
    """The conftest binds `pytest_collection_modifyitems` to what a factory returns, so no `def` of a hook is
    written anywhere; it drops the regression test the broken `add` fails. pytest runs it all the same, and
    the collect stage's runs list it."""
    support = ("def dropping(name):\n    def hook(config, items):\n        items[:] = [i for i in items if i.name "
               "!= name]\n    return hook\n")
    repo = project(make_repo, extra={"tests/test_calc.py": TWO_CALC_TESTS})
    apply_change(repo, {"tests/support.py": support, "tests/test_mul.py": MUL_TEST, "pkg/calc.py": BROKEN_ADD,
                        "tests/conftest.py": "from tests.support import dropping\n\n"
                                             "pytest_collection_modifyitems = dropping('test_add')\n"})

    code, record = run(repo)

    assert code == 1 and record["failed_stage"] == "integrity", record["reason"]
    assert findings(record) == [(
        "test-machinery-changed", "tests/support.py:2",
        ("pytest_collection_modifyitems: `hook` runs as this pytest hook, registered by tests/conftest.py, and "
         "the change adds or edits it: a hook can rewrite outcomes, deselect or skip tests, or replace the code "
        "under test"))]
