"""`harness selectors ...` and `harness bisect` end to end, on real repositories with a real history."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.durability.evidence import verify_sha256sums
from harness.errors import ExitCode
from harness.main import main
from harness.selectors.history import load_history
from tests.conftest import git, write_files

CONFIG = """\
pytest:
  env: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: "1", PYTHONPATH: src}
selectors:
  extra:
    - {selector: tests/test_other.py, name: other, groups: [smoke]}
"""
LEDGER = """\
# Plan

## [CALC-1] Addition works
- Status: done
- Initiative: CALC
- RED: tests/test_calc.py::test_add
- Regression: tests/test_calc.py
"""
EMPTY_ITEM = "\n## [CALC-2] Refactor addition\n- Initiative: CALC\n- Regression: tests/test_none.py\n"
FILES = {
    "harness.yaml": CONFIG,
    "docs/fix_plan.md": LEDGER,
    "src/calc.py": "def add(a, b):\n    return a + b\n",
    "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                          "def test_zero():\n    assert add(0, 0) == 0\n",
    "tests/test_other.py": "def test_other():\n    pass\n",
    "tests/test_none.py": "# no tests yet\n",
}
ADD = "tests/test_calc.py::test_add"


def commit(repo: Path, message: str, files: dict[str, str], trailer: str | None = None) -> str:
    write_files(repo, files)
    git(repo, "add", *files)
    git(repo, "commit", "-q", "-m", message, *(["-m", trailer] if trailer else []))
    return git(repo, "rev-parse", "HEAD").strip()


def harness(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_run_reports_a_regression_until_it_passes_again_and_bisect_names_the_commit(
        make_repo: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(FILES)
    good = git(repo, "rev-parse", "HEAD").strip()

    code, out, _ = harness(capsys, "selectors", "run", "-C", str(repo))
    assert code == 0, out
    assert "3 passed" in out and "REGRESSION" not in out

    commit(repo, "docs: notes", {"NOTES.md": "one\n"})
    bad = commit(repo, "calc: simpler add", {"src/calc.py": "def add(a, b):\n    return a - b\n",
                                             "docs/fix_plan.md": LEDGER + EMPTY_ITEM},
                 trailer="Harness-Item: CALC-2")
    head = commit(repo, "docs: more notes", {"NOTES.md": "two\n"})

    code, out, _ = harness(capsys, "selectors", "run", "-C", str(repo))
    assert code == 1
    assert f"REGRESSION     {ADD}: failed; last passed at {good[:10]}" in out
    assert "REGRESSION     tests/test_calc.py: failed" in out
    assert "NO TESTS       tests/test_none.py: collects nothing" in out

    code, out, _ = harness(capsys, "selectors", "run", "--group", "CALC", "--json", "-C", str(repo))
    assert code == 1
    doc = json.loads(out)
    regressions = {f["selector"]: f for f in doc["comparison"]["regressions"]}
    assert set(regressions) == {ADD, "tests/test_calc.py"}  # still reported: it has not passed again
    assert regressions[ADD]["last_pass"]["commit"] == good and regressions[ADD]["since"]["commit"] == head
    assert doc["filter"] == {"group": "CALC", "item": None} and len(doc["results"]) == 3
    by_selector = {r["selector"]: r for r in doc["results"]}
    assert by_selector[ADD]["status"] == "failed" and by_selector[ADD]["failing"] == [ADD]
    assert by_selector["tests/test_none.py"]["status"] == "no_tests"
    assert doc["commit"] == head and doc["dirty"] is False
    run_dir = repo / doc["run_dir"]
    assert verify_sha256sums(run_dir) == []
    assert json.loads((run_dir / "results.json").read_text()) == doc
    summary = (run_dir / "summary.md").read_text()
    assert "### Regressions (passed before, fail now)" in summary
    assert f"last passed at `{good[:10]}`" in summary
    assert list((run_dir / "pytest").glob("*.junit.xml")) and list((run_dir / "pytest").glob("*.log"))
    history = load_history(repo / "plans" / "selectors" / "history.jsonl")
    assert [r.commit for r in history.records] == [good, head, head]

    code, out, _ = harness(capsys, "selectors", "history", ADD, "-C", str(repo))
    assert code == 0
    rows = out.splitlines()[1:]
    assert [r.split()[1:3] for r in rows] == [
        [good[:10], "passed"], [head[:10], "failed"], [head[:10], "failed"]]

    code, out, _ = harness(capsys, "selectors", "list", "-C", str(repo))
    assert code == 0
    assert any(line.startswith(ADD) and "RED CALC-1" in line and "failed" in line and head[:10] in line
               for line in out.splitlines())

    code, out, err = harness(capsys, "bisect", ADD, "-C", str(repo))
    assert code == 0, out + err
    assert f"good {good[:10]} (last passing run in the history), bad {head[:10]}" in out
    assert f"first bad commit: {bad}" in out
    assert "author:  Test Author <author@example.invalid>" in out
    assert "message: calc: simpler add" in out
    assert "ledger item (Harness-Item trailer): CALC-2 Refactor addition" in out
    assert git(repo, "rev-parse", "HEAD").strip() == head
    assert git(repo, "symbolic-ref", "HEAD").strip() == "refs/heads/main"

    fixed = commit(repo, "calc: fix add", {"src/calc.py": "def add(a, b):\n    return b + a\n"})
    code, out, _ = harness(capsys, "selectors", "run", "--item", "CALC-1", "-C", str(repo))
    assert code == 0, out
    assert f"FIXED          {ADD}: passes again (not passing since {head[:10]}" in out
    assert "REGRESSION" not in out and fixed[:10] in out


def test_index_is_written_and_check_detects_drift(make_repo: Callable[..., Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(FILES)
    index = repo / "docs" / "TEST_SUITE_INDEX.md"

    code, _, err = harness(capsys, "selectors", "index", "--check", "-C", str(repo))
    assert code == 1 and "does not exist" in err
    code, out, _ = harness(capsys, "selectors", "index", "-C", str(repo))
    assert code == 0 and "wrote docs/TEST_SUITE_INDEX.md" in out
    assert f"`{ADD}`" in index.read_text()
    code, out, _ = harness(capsys, "selectors", "index", "--check", "-C", str(repo))
    assert code == 0 and "up to date" in out

    write_files(repo, {"docs/fix_plan.md": LEDGER + EMPTY_ITEM})
    code, _, err = harness(capsys, "selectors", "index", "--check", "-C", str(repo))
    assert code == 1
    assert "docs/TEST_SUITE_INDEX.md is out of date; run `harness selectors index`" in err
    assert "+  - Regression: `tests/test_none.py`" in err

    harness(capsys, "selectors", "index", "-C", str(repo))
    index.write_text(index.read_text().replace("Addition works", "Addition wroks"))  # a hand edit
    code, _, err = harness(capsys, "selectors", "index", "--check", "-C", str(repo))
    assert code == 1 and "-- **[CALC-1]** Addition wroks" in err


def test_list_json_filters_and_errors(make_repo: Callable[..., Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo(FILES)

    code, out, _ = harness(capsys, "selectors", "list", "--json", "-C", str(repo))
    assert code == 0
    rows = json.loads(out)
    assert [r["selector"] for r in rows] == [ADD, "tests/test_calc.py", "tests/test_other.py"]
    assert rows[2]["named_by"] == "extra 'other'" and rows[2]["groups"] == ["extra", "smoke"]
    assert all(r["last_status"] is None for r in rows)

    code, out, _ = harness(capsys, "selectors", "list", "--group", "regression", "-C", str(repo))
    assert code == 0 and "tests/test_calc.py" in out and ADD not in out

    code, _, err = harness(capsys, "selectors", "run", "--group", "nightly", "-C", str(repo))
    assert code == ExitCode.ERROR
    assert "no selector is in group 'nightly'; groups: CALC, extra, red, regression, smoke" in err
    code, _, err = harness(capsys, "selectors", "history", "tests/test_calc.py::test_ad", "-C", str(repo))
    assert code == 1 and "no recorded run of 'tests/test_calc.py::test_ad'" in err
    with pytest.raises(SystemExit):
        main(["selectors", "run", "--jobs", "0", "-C", str(repo)])
    assert "expected a number >= 1" in capsys.readouterr().err


@pytest.mark.slow
def test_collect_reports_selectors_that_collect_nothing(make_repo: Callable[..., Path],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    repo = make_repo({**FILES, "docs/fix_plan.md": LEDGER + EMPTY_ITEM})

    code, out, _ = harness(capsys, "selectors", "collect", "-C", str(repo))
    assert code == 1
    assert "NO TESTS   tests/test_none.py: selects no tests" in out
    assert "3 of 4 selector(s) collect tests" in out
    code, out, _ = harness(capsys, "selectors", "collect", "--item", "CALC-1", "--json", "-C", str(repo))
    assert code == 0
    doc = json.loads(out)
    assert doc["ok"] is True and doc["processes"] == 1
    assert [(r["selector"], r["counts"]) for r in doc["results"]] == [
        (ADD, {"collected": 1}), ("tests/test_calc.py", {"collected": 2})]
    assert not (repo / "plans").exists()  # collect records no history
