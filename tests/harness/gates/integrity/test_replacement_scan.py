"""Test-side code that replaces the project's own objects, found however it is spelt."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.gates.integrity.replacement_scan import project_modules, replacement_findings, replacements

PRODUCTS = frozenset({"pkg"})
STAND_IN = "lambda a, b: a * b"


@pytest.mark.parametrize(("code", "target"), [
    (f"import pkg.calc\npkg.calc.mul = {STAND_IN}", "pkg.calc.mul"),
    (f"from pkg import calc\ncalc.mul = {STAND_IN}", "pkg.calc.mul"),
    (f"import pkg.calc as c\nvars(c)['mul'] = {STAND_IN}", "pkg.calc.mul"),
    (f"from pkg import calc\ncalc.__dict__['mul'] = {STAND_IN}", "pkg.calc.mul"),
    (f"from pkg import calc\nsetattr(calc, 'mul', {STAND_IN})", "pkg.calc.mul"),
    (f"from pkg import calc\nobject.__setattr__(calc, 'mul', {STAND_IN})", "pkg.calc.mul"),
    (f"from pkg import calc\ncalc.__setattr__('mul', {STAND_IN})", "pkg.calc.mul"),
    (f"import pkg.calc\nvars(pkg.calc).update(mul={STAND_IN})", "pkg.calc (an entry)"),
    ("from pkg import calc\ndel calc.mul", "pkg.calc.mul"),
    ("import sys\nsys.modules['pkg.calc'] = object()", "sys.modules['pkg.calc']"),
    ("import sys\nname = 'pkg' + '.calc'\nsys.modules[name] = object()", "sys.modules (an entry whose name is computed)"),
    (f"import sys\nm = sys.modules['pkg.calc']\nm.mul = {STAND_IN}", "pkg.calc.mul"),
    (f"import importlib\nm = importlib.import_module('pkg.calc')\nm.mul = {STAND_IN}", "pkg.calc.mul"),
    (f"import importlib\nm = importlib.import_module('pkg.' + 'calc')\nsetattr(m, 'm' + 'ul', {STAND_IN})",
     "pkg.calc.mul"),
    (f"import importlib\nP = 'pkg'\nm = importlib.import_module(f'{{P}}.calc')\nm.mul = {STAND_IN}", "pkg.calc.mul"),
    (f"import importlib, os\nm = importlib.import_module(os.environ['M'])\nm.mul = {STAND_IN}",
     "<a module imported by a computed name>.mul"),
    (f"import os\nm = __import__(os.environ['M'])\nsetattr(m, os.environ['A'], {STAND_IN})",
     "an attribute of <a module imported by a computed name>"),
    (f"from pkg.calc import Thing\nThing.area = property({STAND_IN})", "pkg.calc.Thing.area"),
    (f"from unittest import mock\nmock.patch('pkg.calc.mul', {STAND_IN}).start()", "pkg.calc.mul"),
    (f"from unittest import mock\nfrom pkg import calc\nmock.patch.object(calc, 'mul', {STAND_IN}).start()",
     "pkg.calc.mul"),
    ((f"import pytest\n\n@pytest.fixture(autouse=True)\ndef f(monkeypatch):\n"
      f"    monkeypatch.setattr('pkg.calc.mul', {STAND_IN})"), "pkg.calc.mul"),
    ((f"import pytest\nfrom pkg import calc\n\n@pytest.fixture\ndef f(monkeypatch):\n"
      f"    monkeypatch.setattr(calc, 'mul', {STAND_IN}, raising=False)"), "pkg.calc.mul"),
    (("import sys\nimport pytest\n\n@pytest.fixture\ndef f(monkeypatch):\n"
      "    monkeypatch.setitem(sys.modules, 'pkg.calc', object())"), "sys.modules['pkg.calc']"),
])
def test_a_conftest_replacing_the_projects_code_is_found_however_it_is_spelt(code: str, target: str) -> None:
    [found] = replacements(code + "\n", PRODUCTS, whole=True)
    assert found.target == target


def test_what_is_not_the_projects_code_or_only_reads_it_is_no_replacement() -> None:
    code = ("import os, sys\nfrom pkg import calc\n\nREAL = calc.mul\n\n\ndef fake(monkeypatch):\n"
            "    monkeypatch.setattr(os, 'fsync', lambda fd: None)\n    monkeypatch.setitem(sys.modules, 'torch', None)\n"
            "    monkeypatch.setenv('CALC', '1')\n    calc_result = calc.mul(2, 3)\n    mul = lambda a, b: 0\n")
    assert replacements(code, PRODUCTS, whole=True) == []
    assert replacements("def broken(:\n", PRODUCTS, whole=True) == []


AUTOUSE = """\
import pytest
from pkg import calc

fx = pytest.fixture


@fx({spelling})
def _fast(monkeypatch):
    monkeypatch.setattr(calc, "mul", lambda a, b: a * b)


def test_mul_mocked(monkeypatch):
    monkeypatch.setattr(calc, "mul", lambda a, b: 0)
    assert calc.mul(1, 1) == 0
"""


@pytest.mark.parametrize(("spelling", "found"), [
    ("autouse=True", True), ("autouse=bool(1)", True), ("**{'autouse': True}", True), ("autouse=1 == 1", True),
    ("autouse=False", False), ("", False)])
def test_in_a_test_module_only_module_level_code_and_autouse_fixtures_count(spelling: str, found: bool) -> None:
    """Mocking inside a test function is in view of its reader; an autouse fixture applies unseen."""
    targets = [r.target for r in replacements(AUTOUSE.format(spelling=spelling), PRODUCTS, whole=False)]
    assert targets == (["pkg.calc.mul"] if found else [])
    assert len(replacements(AUTOUSE.format(spelling=""), PRODUCTS, whole=True)) == 2  # a conftest: all of it


def test_findings_are_what_the_change_adds() -> None:
    old = f"from pkg import calc\ncalc.add = {STAND_IN}\n"
    new = old + f"calc.mul = {STAND_IN}\n"
    [finding] = replacement_findings("tests/conftest.py", old, new, PRODUCTS, test_module=False)
    assert (finding.kind, finding.file, finding.test) == ("code-under-test-replaced", "tests/conftest.py",
                                                          "tests/conftest.py")
    assert finding.detail == ("this conftest.py replaces pkg.calc.mul (`calc.mul = lambda a, b: a * b`), so the "
                              "tests may check a stand-in instead of the code under test")
    assert replacement_findings("tests/conftest.py", new, new, PRODUCTS, test_module=False) == []


def test_the_projects_modules_are_its_top_level_packages_and_modules(tmp_path: Path) -> None:
    for rel in ("pkg/__init__.py", "src/other/__init__.py", "tool.py", "conftest.py", "setup.py", "test_x.py",
                "tests/__init__.py", "docs/conf.py", "data/x.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert project_modules(tmp_path) == {"pkg", "other", "tool"}
