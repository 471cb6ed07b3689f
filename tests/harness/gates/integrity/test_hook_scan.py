"""The hooks pytest ran with, judged by whether the change brings or edits them."""
from __future__ import annotations

from harness.gates.integrity.hook_scan import hook_findings
from harness.gates.records import IntegrityFinding
from harness.pytest_run.results import ProjectHook

HOOK = "def pytest_runtest_setup(item):\n    pass\n"


def judged(hooks: list[ProjectHook], old: dict[str, str], new: dict[str, str], changed: set[str],
           already: tuple[IntegrityFinding, ...] = ()) -> list[tuple[str, str]]:
    return [(f.test, f.detail.split(":", 1)[0]) for f in hook_findings(hooks, changed, old.get, new.get, already)]


def test_a_hook_new_or_edited_in_a_changed_file_is_found_and_an_unchanged_one_is_not() -> None:
    hooks = [ProjectHook("pytest_runtest_setup", "tests/conftest.py", 1, "pytest_runtest_setup", "tests/conftest.py")]
    assert judged(hooks, {}, {"tests/conftest.py": HOOK}, {"tests/conftest.py"}) == [
        ("tests/conftest.py:1", "pytest_runtest_setup")]
    edited = HOOK.replace("pass", "item.add_marker('skip')")
    assert judged(hooks, {"tests/conftest.py": HOOK}, {"tests/conftest.py": edited}, {"tests/conftest.py"}) == [
        ("tests/conftest.py:1", "pytest_runtest_setup")]
    moved = "import os\n\n\n" + HOOK  # the same function, further down: no finding
    assert judged([ProjectHook("pytest_runtest_setup", "tests/conftest.py", 4, "pytest_runtest_setup",
                               "tests/conftest.py")], {"tests/conftest.py": HOOK}, {"tests/conftest.py": moved},
                  {"tests/conftest.py"}) == []
    assert judged(hooks, {"tests/conftest.py": HOOK}, {"tests/conftest.py": HOOK}, set()) == []


def test_an_unchanged_helper_registered_anew_by_a_changed_conftest_is_found() -> None:
    helper = {"tests/helpers.py": HOOK}
    hooks = [ProjectHook("pytest_runtest_setup", "tests/helpers.py", 1, "pytest_runtest_setup", "tests/conftest.py")]
    conftest = "from tests.helpers import pytest_runtest_setup\n"
    assert judged(hooks, {**helper, "tests/conftest.py": ""}, {**helper, "tests/conftest.py": conftest},
                  {"tests/conftest.py"}) == [("tests/helpers.py:1", "pytest_runtest_setup")]
    assert judged(hooks, {**helper, "tests/conftest.py": conftest}, {**helper, "tests/conftest.py": conftest + "\n"},
                  {"tests/conftest.py"}) == []  # registered at the base already


def test_reporting_hooks_and_hooks_a_source_scan_reported_are_left_out() -> None:
    header = [ProjectHook("pytest_report_header", "conftest.py", 1, "pytest_report_header", "conftest.py")]
    assert judged(header, {}, {"conftest.py": "def pytest_report_header():\n    return 'x'\n"}, {"conftest.py"}) == []
    hooks = [ProjectHook("pytest_runtest_setup", "tests/conftest.py", 1, "pytest_runtest_setup", "tests/conftest.py")]
    static = (IntegrityFinding("selection-narrowed", "tests/conftest.py", "tests/conftest.py",
                               "pytest_runtest_setup added; this hook can deselect, ignore or skip tests"),)
    assert judged(hooks, {}, {"tests/conftest.py": HOOK}, {"tests/conftest.py"}, static) == []
