"""Product code on changed lines that asks whether a test runs it, or returns a value equal to anything."""
from __future__ import annotations

import pytest

from harness.gates.integrity.product_scan import product_findings


def found(source: str, lines: range | None = None) -> list[tuple[str, str]]:
    every = range(1, source.count("\n") + 2)
    return [(f.kind, f.test) for f in product_findings("pkg/calc.py", source, lines or every)]


@pytest.mark.parametrize("detection", [
    "import sys\nTESTING = 'pytest' in sys.modules",
    "import sys\nTESTING = sys.modules.get('pytest') is not None",
    "import sys\nTESTING = sys.modules['_pytest'] is not None",
    "import os\nTESTING = 'PYTEST_CURRENT_TEST' in os.environ",
    "import os\nTESTING = os.environ['PYTEST_CURRENT_TEST']",
    "from os import getenv\nTESTING = getenv('TESTING') == '1'",
    "import sys\nTESTING = any('pytest' in arg for arg in sys.argv)",
    "import sys\nTESTING = sys.argv[0].endswith('py.test')",
    "import importlib.util\nTESTING = importlib.util.find_spec('unittest') is not None",
    "import inspect\nTESTING = any('tests/' in f.filename for f in inspect.stack())",
    "import sys\nTESTING = sys._getframe(1).f_code.co_filename.startswith('test_')",
    "import sys\nTESTING = getattr(sys, '_called_from_test', False)",
    "import sys\nTESTING = sys._called_from_test",
])
def test_code_that_asks_whether_a_test_runs_it_is_found(detection: str) -> None:
    assert found(detection + "\n") == [("runner-detected", "pkg/calc.py:2")]


def test_what_reads_the_environment_for_other_reasons_or_names_pytest_elsewhere_is_not() -> None:
    source = ('"""Run pytest with these settings."""\nimport os\nimport sys\n\nCOMMAND = (sys.executable, "-m", '
              '"pytest")\nHOME = os.environ.get("HOME")\nDEBUG = "debug" in sys.argv\nLATEST = os.getenv("LATEST")\n'
              'HAS_NUMPY = "numpy" in sys.modules\nNEW = sys.monitoring if hasattr(sys, "monitoring") else None\n')
    assert found(source) == []


def test_only_the_changed_lines_count() -> None:
    source = "import sys\nTESTING = 'pytest' in sys.modules\n\n\ndef mul(a, b):\n    return a * b\n"
    assert found(source, range(5, 7)) == []
    assert found(source, range(2, 3)) == [("runner-detected", "pkg/calc.py:2")]


@pytest.mark.parametrize("value", [
    "class _Any:\n    def __eq__(self, other):\n        return True\n\n\ndef mul(a, b):\n    return _Any()",
    "class _Six(int):\n    __eq__ = lambda self, other: True\n\n\ndef mul(a, b):\n    return _Six(6)",
    "class _Any:\n    def __eq__(*args):\n        return not False\n\n\ndef mul(a, b):\n    return _Any()",
    "def mul(a, b):\n    return type('Any', (), {'__eq__': lambda s, o: True})()",
    "from unittest import mock\n\n\ndef mul(a, b):\n    return mock.ANY",
    "from unittest.mock import ANY\n\n\ndef mul(a, b):\n    return ANY",
])
def test_a_value_that_equals_anything_is_found(value: str) -> None:
    assert [kind for kind, _ in found(value + "\n")] == ["always-equal"]


def test_honest_comparison_methods_are_not() -> None:
    source = ("class Point:\n    def __eq__(self, other):\n        return (self.x, self.y) == (other.x, other.y)\n\n"
              "    def __ne__(self, other):\n        return NotImplemented\n\n    def __lt__(self, other):\n"
              "        raise TypeError('points are not ordered')\n")
    assert found(source) == []
