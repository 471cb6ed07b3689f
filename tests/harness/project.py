"""A small real project for harness tests: a package, a pytest suite, a ledger and a harness.yaml."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import git, write_files

HARNESS_YAML = """\
pytest:
  env:
    PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"
  timeout_s: 120
commit:
  name: Harness Test
  email: harness@example.invalid
"""

LEDGER = """\
# Fix Plan

## [CALC-001] calc gains mul
- Status: pending
- Priority: 1
- Initiative: CALC-INIT
- RED: tests/test_mul.py::test_mul
- Regression: tests/test_calc.py
- Exit-Criteria: mul multiplies

Prose about the item.

## [CALC-002] calc gains sub
- Status: pending
- Priority: 2
- Depends-On: CALC-001
- RED: tests/test_sub.py
"""

BASE_FILES = {
    "harness.yaml": HARNESS_YAML,
    "docs/fix_plan.md": LEDGER,
    "pkg/__init__.py": "",
    "pkg/calc.py": "def add(a, b):\n    return a + b\n",
    "tests/__init__.py": "",
    "tests/test_calc.py": "from pkg.calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n",
}

MUL_TEST = "from pkg.calc import mul\n\n\ndef test_mul():\n    assert mul(2, 3) == 6\n"
MUL_IMPL = "def add(a, b):\n    return a + b\n\n\ndef mul(a, b):\n    return a * b\n"


def make_project(make_repo, extra: dict[str, str] | None = None, ledger: str | None = None) -> Path:
    files = dict(BASE_FILES)
    if ledger is not None:
        files["docs/fix_plan.md"] = ledger
    files.update(extra or {})
    return make_repo(files)


def apply_change(repo: Path, files: dict[str, str]) -> None:
    write_files(repo, files)


def head_subject(repo: Path) -> str:
    return git(repo, "log", "-1", "--format=%s").strip()


def status_porcelain(repo: Path) -> str:
    return git(repo, "status", "--porcelain", "--untracked-files=all")
