from __future__ import annotations

import shutil
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.gates.lint import (
    LintError,
    LintRun,
    ToolFinding,
    compare_lint,
    lint_change,
    parse_findings,
    run_lint,
)
from harness.gitops import open_repo, temp_worktree

# A deterministic "linter": every line holding `# lint: <message>` is a finding `L100 <message>`.
FAKE_LINTER = """\
import pathlib, sys
found = 0
for path in sorted(pathlib.Path(".").rglob("*.py")):
    if path.name == "linter.py" or ".git" in path.parts:
        continue
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if "# lint: " in line:
            print(f"{path.as_posix()}:{number}:1: L100 {line.split('# lint: ', 1)[1]}")
            found += 1
print(f"Found {found} findings.")
sys.exit(1 if found else 0)
"""


@pytest.fixture
def linter(tmp_path: Path) -> list[str]:
    path = tmp_path / "linter.py"
    path.write_text(FAKE_LINTER)
    return [sys.executable, str(path)]


def tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text))
    return root


def fake_run(findings: list[tuple[str, int, str, str]], exit_code: int | None = None) -> LintRun:
    parsed = tuple(ToolFinding(path, line, 1, code, message) for path, line, code, message in findings)
    code = exit_code if exit_code is not None else (1 if parsed else 0)
    return LintRun(("lint",), Path("."), code, False, 0.1, Path("lint.log"), parsed)


def test_parse_findings_reads_the_common_formats(tmp_path: Path) -> None:
    output = "\n".join([
        "a.py:1:8: F401 [*] `os` imported but unused",
        "./pkg/b.py:3: error: Incompatible types in assignment  [assignment]",
        f"{tmp_path}/c.py:2:5: 'sys' imported but unused",
        "E501 Line too long (120 > 110)",
        " --> pkg/d.py:7:111",
        "  |",
        "7 | x = 1",
        "Found 4 errors.",
        "\x1b[1ma.py\x1b[0m:9:1: W291 trailing whitespace",
    ])
    found = parse_findings(output, tmp_path)
    assert [(f.path, f.line, f.col, f.code, f.message) for f in found] == [
        ("a.py", 1, 8, "F401", "`os` imported but unused"),
        ("pkg/b.py", 3, None, "", "error: Incompatible types in assignment  [assignment]"),
        ("c.py", 2, 5, "", "'sys' imported but unused"),
        ("pkg/d.py", 7, 111, "E501", "Line too long (120 > 110)"),
        ("a.py", 9, 1, "W291", "trailing whitespace"),
    ]
    assert found[0].key == ("a.py", "F401", "`os` imported but unused")


def test_compare_ignores_line_numbers_but_counts_repeats() -> None:
    base = fake_run([("a.py", 3, "F401", "`os` imported but unused"), ("b.py", 1, "E1", "gone later")])
    moved = fake_run([("a.py", 30, "F401", "`os` imported but unused")])
    verdict = compare_lint(base, moved)
    assert verdict.ok and verdict.new_findings == ()
    assert [f.path for f in verdict.fixed_findings] == ["b.py"]
    assert verdict.reason == "static analysis: no new findings (1 fixed)"
    twice = fake_run([("a.py", 3, "F401", "`os` imported but unused"), ("a.py", 9, "F401",
                                                                     "`os` imported but unused")])
    verdict = compare_lint(base, twice)
    assert not verdict.ok and [(f.path, f.line) for f in verdict.new_findings] == [("a.py", 9)]
    assert verdict.reason == "static analysis: 1 new finding(s): a.py:9:1: F401 `os` imported but unused"
    assert "New findings:" in verdict.summary() and "- `a.py:9:1: F401" in verdict.summary()
    other_file = fake_run([("c.py", 3, "F401", "`os` imported but unused")])
    assert not compare_lint(base, other_file).ok


def test_fake_linter_new_finding_fails_and_existing_is_tolerated(tmp_path: Path, linter: list[str]) -> None:
    base = tree(tmp_path / "base", {"m.py": "x = 1  # lint: old problem\n"})
    head = tree(tmp_path / "head", {"m.py": "\n\nx = 1  # lint: old problem\n",
                                    "n.py": "y = 2  # lint: new one\n"})
    base_run, head_run, verdict = lint_change(linter, base_cwd=base, head_cwd=head, out_dir=tmp_path / "ev",
                                              timeout_s=30)
    assert base_run.exit_code == 1 and len(base_run.findings) == 1
    assert head_run.findings[0].line == 3  # moved, still the same finding
    assert not verdict.ok
    assert [(f.path, f.code, f.message) for f in verdict.new_findings] == [("n.py", "L100", "new one")]
    log = (tmp_path / "ev" / "lint-head.log").read_text()
    assert "n.py:1:1: L100 new one" in log and "exit 1" in log and str(head) in log
    # The same tree on both sides: nothing new.
    _, _, same = lint_change(linter, base_cwd=base, head_cwd=base, out_dir=tmp_path / "ev2", timeout_s=30)
    assert same.ok and same.reason == "static analysis: no new findings"


def test_linter_that_crashes_or_hangs_fails_the_gate(tmp_path: Path) -> None:
    clean = fake_run([])
    crash = run_lint([sys.executable, "-c", "import sys; print('config error'); sys.exit(2)"], tmp_path,
                     tmp_path / "crash.log", timeout_s=30)
    assert crash.failed_to_run
    verdict = compare_lint(clean, crash)
    assert not verdict.ok and "exited 2 without reporting findings" in verdict.reason
    sleeper = "import time; print('a.py:1:1: X1 m', flush=True); time.sleep(60)"
    hang = run_lint([sys.executable, "-c", sleeper], tmp_path, tmp_path / "hang.log", timeout_s=1,
                    kill_grace_s=0.5)
    assert hang.timed_out and hang.failed_to_run
    assert "timed out" in compare_lint(clean, hang).reason
    assert "timed out" in (tmp_path / "hang.log").read_text()
    # A base that could not be linted: every finding of the change counts, and the reason says why.
    verdict = compare_lint(crash, fake_run([("a.py", 1, "X1", "m")]))
    assert not verdict.ok and "the base run exited 2" in verdict.reason


def test_missing_linter_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LintError, match=r"no-such-linter-xyz.*`gates.lint.command` in harness.yaml"):
        run_lint(["no-such-linter-xyz", "check"], tmp_path, tmp_path / "l.log", timeout_s=10)


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_catches_an_added_unused_import_and_tolerates_an_existing_one(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    repo_root = make_repo({"pkg/a.py": "import os\n\n\ndef f():\n    return 1\n"})
    # The change moves the old unused import down and adds a new one in another file.
    tree(repo_root, {"pkg/a.py": '"""Doc."""\n\nimport os\n\n\ndef f():\n    return 2\n',
                     "pkg/b.py": "import sys\n\n\ndef g():\n    return 3\n"})
    repo = open_repo(repo_root)
    with temp_worktree(repo, "HEAD") as base:
        _, head_run, verdict = lint_change(["ruff", "check", "--no-cache", "."], base_cwd=base,
                                           head_cwd=repo_root, out_dir=tmp_path / "ev", timeout_s=60)
    assert {f.path for f in head_run.findings} == {"pkg/a.py", "pkg/b.py"}
    assert not verdict.ok
    assert [(f.path, f.code) for f in verdict.new_findings] == [("pkg/b.py", "F401")]
    assert "sys" in verdict.new_findings[0].message and "pkg/b.py" in verdict.reason
