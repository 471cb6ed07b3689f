"""`pytest_plugins` however it is bound, and `pytest11` entry points in every packaging file."""
from __future__ import annotations

import pytest

from harness.gates.integrity.plugin_scan import entry_point_findings, plugin_findings, plugin_statements


@pytest.mark.parametrize("spelling", [
    "pytest_plugins = ['cheat']",
    "pytest_plugins: list[str] = ['cheat']",
    "pytest_plugins += ['cheat']",
    "globals()['pytest_plugins'] = ['cheat']",
    "import sys\nsetattr(sys.modules[__name__], 'pytest_plugins', ['cheat'])",
    "import sys\nsys.modules[__name__].pytest_plugins = ['cheat']",
    "from cheat import pytest_plugins",
    "import cheat as pytest_plugins",
    "try:\n    import x\nexcept ImportError:\n    pytest_plugins = ('cheat',)",
    "vars().update({'pytest_plugins': ['cheat']})",
    "globals().update(pytest_plugins=['cheat'])",
])
def test_pytest_plugins_is_found_however_it_is_bound(spelling: str) -> None:
    [finding] = plugin_findings("tests/conftest.py", "import os\n", spelling + "\n")
    assert (finding.kind, finding.file, finding.test) == ("test-machinery-changed", "tests/conftest.py",
                                                          "tests/conftest.py")
    assert "makes pytest load the modules it names as plugins" in finding.detail


@pytest.mark.parametrize("mention", [
    "PLUGINS_NAME = 'pytest_plugins'",  # the integrity gate's own source names it
    "HELP = {'pytest_plugins': 'loads plugins'}",
    "if name == 'pytest_plugins':\n    pass",
])
def test_naming_pytest_plugins_without_binding_it_is_no_finding(mention: str) -> None:
    assert plugin_findings("pkg/scan.py", "import os\n", mention + "\n") == []


def test_a_binding_the_base_had_is_no_finding_and_a_new_one_beside_it_is() -> None:
    old = "pytest_plugins = ['tests.helpers']\n"
    assert plugin_findings("tests/conftest.py", old, old + "\n\ndef helper():\n    return 1\n") == []
    new = old + "pytest_plugins += ['cheat']\n"
    assert [f.detail.split("`")[1] for f in plugin_findings("tests/conftest.py", old, new)] == [
        "pytest_plugins += ['cheat']"]
    assert plugin_statements("def broken(:\n") == []


ENTRY_POINTS = {
    "pyproject.toml": ('[project]\nname = "x"\n', ('[project]\nname = "x"\n\n[project.entry-points.pytest11]\n'
                                                   'cheat = "pkg.cheat"\n')),
    "setup.cfg": ("[options]\npackages = find:\n", ("[options]\npackages = find:\n\n[options.entry_points]\n"
                                                    "pytest11 =\n    cheat = pkg.cheat\n")),
    "setup.py": ("from setuptools import setup\nsetup(name='x')\n",
                 "from setuptools import setup\nsetup(name='x', entry_points={'pytest11': ['cheat = pkg.cheat']})\n"),
    "pkg.egg-info/entry_points.txt": ("", "[pytest11]\ncheat = pkg.cheat\n"),
}


@pytest.mark.parametrize("path", sorted(ENTRY_POINTS))
def test_a_pytest11_entry_point_gained_in_any_packaging_file_is_a_finding(path: str) -> None:
    old, new = ENTRY_POINTS[path]
    [finding] = entry_point_findings(path, old, new)
    assert finding.kind == "test-machinery-changed" and finding.test == path
    assert finding.detail == ("gains the pytest11 entry point `cheat = pkg.cheat`: installed, pytest loads it as a "
                              "plugin in every run")
    assert entry_point_findings(path, new, new) == []


def test_poetry_plugins_and_setup_py_ini_text_are_read_too() -> None:
    poetry = '[tool.poetry.plugins."pytest11"]\ncheat = "pkg.cheat"\n'
    assert [f.detail.split("`")[1] for f in entry_point_findings("pyproject.toml", "", poetry)] == ["cheat = pkg.cheat"]
    setup = "from setuptools import setup\nsetup(entry_points='''\n[pytest11]\ncheat = pkg.cheat\n''')\n"
    assert len(entry_point_findings("setup.py", None, setup)) == 1
    assert entry_point_findings("README.md", "", "[pytest11]\ncheat = x\n") == []
