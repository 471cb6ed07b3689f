"""A small real project for harness tests: a package, a pytest suite, a ledger and a harness.yaml.

Its harness.yaml keeps each iteration to the pytest processes the proof itself needs: the full suite keeps
`-n auto` (the default `gates.full_suite.jobs`), but pytest-xdist resolves it to no workers here
(PYTEST_XDIST_AUTO_NUM_WORKERS=0: a suite of a few tests gains nothing from worker processes), and a proven
RED or GREEN selector is not run again (`gates.reruns: 0`; the default, 1, doubles those pytest starts and
only a test about flaky proofs needs it). A test about xdist workers says so in its own config
(`with_xdist_workers`); one that needs stages at once, or one after another, whatever the machine's cores,
sets `concurrent_stages` (`with_stages_at_once`); other gate settings go into the one `gates:` block
(`with_gates`).
"""
from __future__ import annotations

from pathlib import Path

from tests.conftest import git, write_files

XDIST_NO_WORKERS = '    PYTEST_XDIST_AUTO_NUM_WORKERS: "0"\n'
HARNESS_YAML = f"""\
pytest:
  env:
    PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1"
{XDIST_NO_WORKERS}  timeout_s: 120
commit:
  name: Harness Test
  email: harness@example.invalid
gates:
  reruns: 0
"""


def with_xdist_workers(yaml: str) -> str:
    """`yaml` whose full suite runs in real pytest-xdist workers (`-n auto`: one per CPU)."""
    return yaml.replace(XDIST_NO_WORKERS, "")


def with_gates(yaml: str, settings: str) -> str:
    """`yaml` (HARNESS_YAML or one built on it) with `settings`, lines indented under `gates:`, in its `gates:`
    block; a setting the block already has (`reruns`) takes the new value. A second `gates:` key would be
    refused as a duplicate."""
    head, found, rest = yaml.partition("\ngates:\n")
    if not found:
        raise ValueError("with_gates needs a yaml with a block-style `gates:` section (HARNESS_YAML has one)")
    if not all(line.startswith("  ") for line in settings.splitlines()):
        raise ValueError(f"gate settings must be indented under `gates:`, got {settings!r}")
    block = rest.splitlines(keepends=True)
    end = next((i for i, line in enumerate(block) if not line.startswith(" ")), len(block))
    given = {line.split(":")[0] for line in settings.splitlines() if not line.startswith("   ")}
    kept = [line for line in block[:end] if line.split(":")[0] not in given]
    return head + found + settings + "".join(kept + block[end:])


def with_stages_at_once(yaml: str, setting: str = "true") -> str:
    """`yaml` (without a `concurrent_stages` of its own) with `concurrent_stages: <setting>`."""
    return yaml + f"concurrent_stages: {setting}\n"

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
