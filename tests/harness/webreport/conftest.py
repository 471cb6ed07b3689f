"""A real repository reviewed by the report: one GREEN and one failed attempt made by `harness run`, an
item whose title is a script, an attempt whose evidence path leaves the repository, a selector history
with a regression. Built once per test process (harness runs take seconds); tests that change it copy it.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.main import main
from tests.conftest import git, init_repo, write_files
from tests.harness.project import (
    BASE_FILES,
    HARNESS_YAML,
    MUL_IMPL,
    MUL_TEST,
    with_gates,
    with_stages_at_once,
)

XSS_TITLE = "<script>alert(1)</script>"
SKIP_TEST = "import pytest\n\n\n@pytest.mark.skip('later')\ndef test_sub():\n    assert False\n"
SUB_IMPL = MUL_IMPL + "\n\ndef sub(a, b):\n    return a - b\n"
XSS_ITEM = f"""
## [XSS-001] {XSS_TITLE}
- Status: blocked (<img src=x onerror=alert(2)>)
- Priority: 9
- Depends-On: CALC-001, GHOST-9
- Spec: tests/test_calc.py

Prose with <b>raw html</b> and <script>alert(3)</script>, a [way out](../../../etc/passwd), a
[test file](../tests/test_calc.py), a [script link](javascript:alert(4)) and ![an image](http://example.invalid/x.png).

### Attempts History
- 2025-01-02T00:00:00Z · #1 · FAILED at red · 0123456789 · ../outside/reports/x/analysis/summary.md
"""


@dataclass(frozen=True)
class Reviewed:
    repo: Path
    site: Path


def _history(commit: str) -> str:
    def line(run: str, status: str) -> str:
        return json.dumps({"format": 1, "run": run, "started": f"{run[:10]}T00:00:00Z", "commit": commit,
                           "dirty": False, "run_dir": f"plans/selectors/runs/{run}", "filter": {},
                           "results": {"tests/test_calc.py": {"status": status, "counts": {status: 1},
                                                              "failing": [], "duration_s": 0.1}}})
    return line("2025-01-03T000000Z", "passed") + "\n" + line("2025-01-04T000000Z", "failed") + "\n"


def build_reviewed_repo(root: Path) -> Path:
    repo = root / "reviewed"
    # stages at once: the failed attempt's page shows GREEN, which ran beside the RED that failed. Without the
    # integrity gate both start together once collect has passed; with it, GREEN waits for the tree integrity
    # holds, and a RED that fails first leaves GREEN unstarted (the flake of 2026-12-07)
    yaml = with_gates(with_stages_at_once(HARNESS_YAML), "  integrity: false\n")
    init_repo(repo, {**BASE_FILES, "harness.yaml": yaml, ".gitignore": "/plans/report/\n"})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        write_files(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
        assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 0
        write_files(repo, {"tests/test_sub.py": SKIP_TEST, "pkg/calc.py": SUB_IMPL})
        assert main(["run", "-C", str(repo), "--no-agent", "CALC-002"]) == 1
    ledger = repo / "docs/fix_plan.md"
    ledger.write_text(ledger.read_text() + XSS_ITEM)
    write_files(repo, {"plans/selectors/history.jsonl": _history(git(repo, "rev-parse", "HEAD").strip())})
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "an item that tries to script the report")
    return repo


@pytest.fixture(scope="session")
def reviewed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_reviewed_repo(tmp_path_factory.mktemp("webreport"))


@pytest.fixture
def reviewed(reviewed_template: Path, tmp_path: Path) -> Reviewed:
    """A private copy of the reviewed repository, its site built to the default folder."""
    repo = tmp_path / "reviewed"
    shutil.copytree(reviewed_template, repo, symlinks=True)
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["report", "-C", str(repo)]) == 0
    return Reviewed(repo, repo / "plans" / "report")
