"""What a test module's source says about its tests, and which weakenings compare_modules finds."""
from __future__ import annotations

from harness.gates.integrity.test_facts import compare_modules, module_facts, removed_tests

BASE = """\
import pytest
import numpy as np
import numpy.testing as npt
from numpy.testing import assert_allclose as close
from torch.testing import assert_close
from pytest import raises


def test_checks():
    assert 1 == 1
    with pytest.raises(ValueError):
        int("x")
    with raises(KeyError):
        {}["k"]
    assert 0.1 + 0.2 == pytest.approx(0.3)
    np.testing.assert_array_equal([1], [1])
    npt.assert_equal(1, 1)
    close(1.0, 1.0)
    assert_close(1, 1)


class TestGroup:
    def test_method(self):
        assert True

    class TestInner:
        def test_deep(self):
            assert True


@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    assert x


def helper():
    return 1
"""


def facts(source: str):
    return module_facts(source)


def findings(new: str, old: str = BASE) -> list[str]:
    return [f"{f.kind} {f.test} {f.detail}" for f in compare_modules("tests/test_x.py", facts(old), facts(new))]


def test_tests_and_their_checks_are_counted_through_import_aliases() -> None:
    tests = facts(BASE).tests
    assert sorted(tests) == ["TestGroup::TestInner::test_deep", "TestGroup::test_method", "test_checks",
                             "test_param"]
    assert tests["test_checks"].checks == 9  # 2 asserts, 2 raises, approx, 4 numpy/torch testing asserts
    assert tests["test_param"].skip_marks == ()


def test_an_unchanged_module_has_no_findings() -> None:
    assert findings(BASE) == []


def test_removed_assertions_name_the_test_and_the_counts() -> None:
    weaker = BASE.replace("    npt.assert_equal(1, 1)\n", "").replace("    assert_close(1, 1)\n", "")
    assert findings(weaker) == ["assertions-removed tests/test_x.py::test_checks checks 9 -> 7"]


def test_a_skip_mark_on_the_test_or_its_class_is_found() -> None:
    marked = BASE.replace("class TestGroup:", "@pytest.mark.skipif(True, reason='later')\nclass TestGroup:")
    found = findings(marked)
    assert "test-skipped tests/test_x.py::TestGroup::test_method gains the mark " \
           "pytest.mark.skipif(True, reason='later')" in found
    assert any(f.startswith("test-skipped tests/test_x.py::TestGroup::TestInner::test_deep") for f in found)
    assert len(found) == 2


def test_an_xfail_param_and_a_module_pytestmark_are_found() -> None:
    marked = BASE.replace("[1, 2]", "[1, pytest.param(2, marks=pytest.mark.xfail)]")
    assert findings(marked) == ["test-skipped tests/test_x.py::test_param gains the mark pytest.mark.xfail"]
    module = BASE.replace("from pytest import raises\n", "from pytest import raises\npytestmark = pytest.mark.skip\n")
    assert len([f for f in findings(module) if "gains the mark pytest.mark.skip" in f]) == 4


def test_skip_calls_early_returns_and_conditions_are_found() -> None:
    skipping = BASE.replace("    def test_method(self):\n", "    def test_method(self):\n        pytest.skip('no')\n")
    assert findings(skipping) == [("test-skipped tests/test_x.py::TestGroup::test_method gains 1 "
                                   "pytest.skip/xfail/importorskip call(s)")]
    returning = BASE.replace("def test_param(x):\n", "def test_param(x):\n    if x:\n        return\n")
    assert findings(returning) == [("test-skipped tests/test_x.py::test_param gains a return statement, so its "
                                    "checks after it may not run")]
    hidden = BASE.replace("    assert 1 == 1\n", "    if False:\n        assert 1 == 1\n")
    assert findings(hidden) == [("test-skipped tests/test_x.py::test_checks 1 check(s) moved under a condition "
                                 "(if/while/try), so they may not run")]
    swallowed = BASE.replace("def test_param(x):\n    assert x\n",
                             "def test_param(x):\n    try:\n        assert x\n    except AssertionError:\n        pass\n")
    assert findings(swallowed) == [("test-skipped tests/test_x.py::test_param 1 check(s) moved under a condition "
                                    "(if/while/try), so they may not run")]


def test_a_definition_moved_under_a_module_level_condition_is_found() -> None:
    conditional = BASE.replace("@pytest.mark.parametrize", "if False:\n  @pytest.mark.parametrize").replace(
        "def test_param(x):\n    assert x\n", "  def test_param(x):\n      assert x\n")
    assert findings(conditional) == [("test-skipped tests/test_x.py::test_param is now defined under a condition "
                                      "(if/try), so it may not be collected")]


def test_a_skip_call_in_a_fixture_or_helper_is_found_for_the_file() -> None:
    fixture = BASE + "\n\n@pytest.fixture(autouse=True)\ndef gate():\n    pytest.importorskip('nothing_here')\n"
    assert findings(fixture) == [("test-skipped tests/test_x.py a fixture, helper or module-level statement gains "
                                  "a pytest.skip/xfail/importorskip call")]


def test_more_checks_and_new_tests_are_no_finding() -> None:
    stronger = BASE + "\n\ndef test_new():\n    assert helper() == 1\n"
    stronger = stronger.replace("    assert True\n", "    assert True\n    assert 1\n", 1)
    assert findings(stronger) == []


def test_removed_tests_from_source_and_an_unparsable_module() -> None:
    gone = BASE.replace("def test_param(x):", "def not_a_test(x):")
    assert [f.test for f in removed_tests("tests/test_x.py", facts(BASE), facts(gone))] == ["tests/test_x.py::test_param"]
    assert len(removed_tests("tests/test_x.py", facts(BASE), None)) == 4
    assert not facts("def test(:\n").parsed
    assert findings("def test(:\n") == []


CALC = """\
import pytest
from pkg.calc import add


def test_add():
    \"\"\"Adds.\"\"\"
    assert add(1, 2) == 3, "one and two"
    assert add(2, 2) == 4


def test_expected():
    expected = 5
    assert add(2, 3) == expected


@pytest.mark.parametrize(("a", "b", "total"), [(1, 1, 2)], ids=["ones"])
def test_cases(a, b, total):
    assert add(a, b) == total
"""


def test_checks_that_cannot_fail_are_assertions_weakened_even_with_the_count_unchanged() -> None:
    for tautology in ("True", "1", "not False", "add(1, 2) == add(1, 2)", "(add(1, 2) == 3, 'message')",
                      "add(1, 2) == 3 or True"):
        weaker = CALC.replace("    assert add(2, 2) == 4\n", f"    assert {tautology}\n")
        assert findings(weaker, CALC) == [
            f"assertions-weakened tests/test_x.py::test_add gains 1 check(s) that cannot fail: `assert {tautology}`"]
    unittest_style = CALC.replace("    assert add(2, 2) == 4\n", "    self.assertEqual(add(2, 2), add(2, 2))\n")
    assert findings(unittest_style, CALC) == [
        ("assertions-weakened tests/test_x.py::test_add gains 1 check(s) that cannot fail: "
         "`self.assertEqual(add(2, 2), add(2, 2))`")]


def test_an_edited_expected_value_is_found_in_the_check_or_anywhere_in_the_test() -> None:
    edited = CALC.replace("assert add(1, 2) == 3,", "assert add(1, 2) == -1,")
    assert findings(edited, CALC) == [
        "expected-values-changed tests/test_x.py::test_add `assert add(1, 2) == 3` -> `assert add(1, 2) == -1`"]
    assert findings(CALC.replace("expected = 5", "expected = 6"), CALC) == [
        "expected-values-changed tests/test_x.py::test_expected its constants changed: 5 -> 6"]
    assert findings(CALC.replace("[(1, 1, 2)]", "[(1, 1, 3)]"), CALC) == [
        "expected-values-changed tests/test_x.py::test_cases its constants changed: 2 -> 3"]


def test_a_reworded_docstring_or_message_and_a_new_check_are_no_finding() -> None:
    reworded = CALC.replace('"""Adds."""', '"""Adds two numbers."""').replace('"one and two"', '"1 + 2"')
    assert findings(reworded, CALC) == []
    stronger = CALC.replace("    assert add(2, 2) == 4\n", "    assert add(2, 2) == 4\n    assert add(0, 0) == 0\n")
    assert findings(stronger, CALC) == []
