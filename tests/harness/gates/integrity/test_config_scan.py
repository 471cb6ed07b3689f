"""selection-narrowed, known-failures-added and gates-weakened from the two versions of a changed file."""
from __future__ import annotations

import pytest

from harness.config import parse_config
from harness.gates.integrity.config_scan import gate_findings, known_failure_findings, selection_findings


def details(path: str, old: str | None, new: str | None) -> list[str]:
    found = selection_findings(path, old, new)
    assert all(f.kind == "selection-narrowed" and f.file == path and f.test == path for f in found)
    return [f.detail for f in found]


@pytest.mark.parametrize(("path", "old", "new", "expected"), [
    ("pyproject.toml", '[tool.pytest.ini_options]\naddopts = "-q"\n',
     '[tool.pytest.ini_options]\naddopts = "-q -k \'not slow\'"\n', ["addopts gains `-k not slow`, so fewer tests run"]),
    ("pyproject.toml", "[tool.pytest.ini_options]\naddopts = []\n",
     '[tool.pytest.ini_options]\naddopts = ["--deselect=tests/a.py::t"]\n',
     ["addopts gains `--deselect tests/a.py::t`, so fewer tests run"]),
    ("pytest.ini", "[pytest]\n", "[pytest]\naddopts = -mfast\n", ["addopts gains `-m fast`, so fewer tests run"]),
    ("sub/tox.ini", "", "[pytest]\naddopts = --ignore tests/slow\n",
     ["addopts gains `--ignore tests/slow`, so fewer tests run"]),
    ("setup.cfg", "[tool:pytest]\n", "[tool:pytest]\naddopts = --collect-only\n",
     ["addopts gains `--collect-only`, so fewer tests run"]),
    ("pyproject.toml", '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n',
     '[tool.pytest.ini_options]\ntestpaths = ["tests/unit"]\n',
     ["testpaths changed from ['tests'] to ['tests/unit'], which decides what is collected"]),
    ("harness.yaml", "pytest:\n  args: []\n", "pytest:\n  args: [-m, fast]\ngates:\n  full_suite: {args: [--lf]}\n",
     ["the pytest arguments in harness.yaml gain `-m fast`, so fewer tests run",
      "the pytest arguments in harness.yaml gain `--lf`, so fewer tests run"]),
])
def test_added_filters_are_named_with_their_values(path: str, old: str, new: str, expected: list[str]) -> None:
    assert details(path, old, new) == expected


def test_filters_already_there_and_other_options_are_no_finding() -> None:
    old = '[tool.pytest.ini_options]\naddopts = "-k fast"\n'
    assert details("pyproject.toml", old, '[tool.pytest.ini_options]\naddopts = "-k fast -ra -x"\n') == []
    assert details("pyproject.toml", "", "[project]\nname = 'x'\n") == []
    assert details("README.md", "", "addopts = -k x\n") == []


def test_conftest_collect_ignore_and_collection_hooks() -> None:
    old = 'collect_ignore = ["setup.py"]\n'
    new = ('collect_ignore = ["setup.py"]\ncollect_ignore.append("test_slow.py")\n\n'
           "def pytest_collection_modifyitems(config, items):\n    items[:] = items[:1]\n")
    assert details("tests/conftest.py", old, new) == [
        "collect_ignore gains 'test_slow.py', so it is not collected",
        "pytest_collection_modifyitems added; this hook can deselect, ignore or skip tests"]
    changed = new.replace("items[:1]", "items[:2]")
    assert details("tests/conftest.py", new, changed) == [
        "pytest_collection_modifyitems changed; this hook can deselect, ignore or skip tests"]
    assert details("tests/conftest.py", new, new + "\n\ndef helper():\n    return 1\n") == []


def test_known_failures_gained_are_each_a_finding() -> None:
    found = known_failure_findings("ci/known.txt", "# known\ntests/a.py::t\n", "ci/known.txt",
                                   "# known\ntests/a.py::t\ntests/b.py::u\n\ntests/c.py::v\n")
    assert [(f.kind, f.test, f.detail) for f in found] == [
        ("known-failures-added", "tests/b.py::u", "added to ci/known.txt"),
        ("known-failures-added", "tests/c.py::v", "added to ci/known.txt")]
    moved = known_failure_findings("ci/known.txt", "tests/a.py::t\n", "ci/other.txt", "tests/a.py::t\ntests/x.py::y\n")
    assert [(f.test, f.detail) for f in moved] == [("tests/x.py::y", "added to ci/other.txt (the base used ci/known.txt)")]
    assert known_failure_findings("ci/known.txt", "a\n", None, None) == []
    assert known_failure_findings(None, None, "ci/known.txt", "a\n")[0].test == "a"


STRICT = """\
gates:
  lint: {command: [ruff, check, .]}
  mutation: {enabled: true, min_score: 0.9, max_mutants: 40}
holdout: {dir: ../held-out}
"""


def test_every_gate_switched_off_or_loosened_is_a_finding_naming_its_key() -> None:
    loose = ("gates:\n  collect: false\n  regression: false\n  full_suite: false\n  integrity: false\n"
             "  mutation: {enabled: false, min_score: 0.5, max_mutants: 5}\n")
    found = gate_findings(parse_config(STRICT), parse_config(loose))
    assert all(f.kind == "gates-weakened" and f.file == "harness.yaml" for f in found)
    assert {f.test: f.detail for f in found} == {
        "gates.collect": "gates.collect: switched off",
        "gates.regression": "gates.regression: switched off",
        "gates.full_suite": "gates.full_suite: switched off",
        "gates.integrity": "gates.integrity: switched off",
        "gates.lint": "gates.lint: removed",
        "gates.mutation.enabled": "gates.mutation.enabled: switched off",
        "gates.mutation.min_score": "gates.mutation.min_score: lowered from 0.9 to 0.5",
        "gates.mutation.max_mutants": "gates.mutation.max_mutants: lowered from 40 to 5",
        "holdout": "holdout: removed (the held-out acceptance tests no longer run)",
    }


def test_stricter_or_equal_gates_are_no_finding() -> None:
    stricter = STRICT.replace("min_score: 0.9", "min_score: 0.95").replace("max_mutants: 40", "max_mutants: 60")
    assert gate_findings(parse_config(STRICT), parse_config(stricter)) == []
    assert gate_findings(parse_config(""), parse_config(STRICT)) == []
