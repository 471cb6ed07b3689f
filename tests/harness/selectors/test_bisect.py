"""`git bisect run` in a temporary worktree over a real history: first bad commit, skips, and the user's
HEAD, branch, working tree and own bisect state left exactly as they were."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import git as gitpython
import pytest

from harness.errors import SelectorError
from harness.pytest_run.runner import PytestSettings, parse_selector
from harness.selectors.bisect import BAD, GOOD, SKIP, bisect_selector, judge
from harness.selectors.history import History, append_history, history_line, load_history
from harness.selectors.runs import SelectorResult, Status
from tests.conftest import git, write_files

FAST = PytestSettings(env={"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONPATH": "src"}, timeout_s=120)
SELECTOR = "tests/test_calc.py::test_add"
GOOD_CALC = "def add(a, b):\n    return a + b\n"
BAD_CALC = "def add(a, b):\n    return a - b\n"
TESTS = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
LEDGER = "# Plan\n\n## [CALC-2] Refactor addition\n- RED: tests/test_other.py\n"


def commit(repo: Path, message: str, files: dict[str, str] | None = None, remove: tuple[str, ...] = (),
           trailer: str | None = None) -> str:
    write_files(repo, files or {"NOTES.md": message + "\n"})
    for path in remove:
        git(repo, "rm", "-q", path)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, *(["-m", trailer] if trailer else []))
    return git(repo, "rev-parse", "HEAD").strip()


def passing_history(tmp_path: Path, sha: str) -> History:
    path = tmp_path / "history.jsonl"
    passed = SelectorResult(SELECTOR, Status.PASSED, {"passed": 1}, 0.1, (), (SELECTOR,), "001-batch",
                            "1 passed")
    append_history(path, history_line(run="r1", started="t", commit=sha, dirty=False, run_dir="x", filter={},
                                      results=[passed]))
    return load_history(path)


def user_state(repo: Path) -> dict[str, str]:
    dot = repo / ".git"
    return {
        "head_ref": git(repo, "symbolic-ref", "HEAD"),
        "head": git(repo, "rev-parse", "HEAD"),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all"),
        "bisect_refs": git(repo, "for-each-ref", "refs/bisect"),
        "bisect_log": (dot / "BISECT_LOG").read_text() if (dot / "BISECT_LOG").exists() else "",
        "bisect_start": (dot / "BISECT_START").read_text() if (dot / "BISECT_START").exists() else "",
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
        "calc": (repo / "src" / "calc.py").read_text(),
    }


@pytest.fixture
def history_repo(make_repo: Callable[..., Path]) -> tuple[Path, list[str]]:
    """c0..c6: the selector passes; an unrelated conftest breaks at c3 (git's first midpoint between c0
    and c6) and is fixed at c4; add breaks at c5."""
    repo = make_repo({"src/calc.py": GOOD_CALC, "tests/test_calc.py": TESTS, "docs/fix_plan.md": LEDGER,
                      "tests/test_other.py": "def test_other():\n    pass\n"})
    shas = [git(repo, "rev-parse", "HEAD").strip()]
    shas.append(commit(repo, "docs: notes"))
    shas.append(commit(repo, "docs: more notes"))
    shas.append(commit(repo, "tests: shared fixture", {"tests/conftest.py": "import no_such_plugin\n"}))
    shas.append(commit(repo, "tests: fix the fixture", {"tests/conftest.py": "import os\n"}))
    shas.append(commit(repo, "calc: simpler add", {"src/calc.py": BAD_CALC}, trailer="Harness-Item: CALC-2"))
    shas.append(commit(repo, "docs: even more notes"))
    return repo, shas


@pytest.mark.slow
def test_bisect_names_the_first_bad_commit_and_leaves_the_users_state_alone(
        history_repo: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history_repo
    # The user is in the middle of their own bisect (without checkout, so HEAD stays on main).
    git(repo, "bisect", "start", "--no-checkout", shas[6], shas[0])
    (repo / "scratch.txt").write_text("uncommitted work\n")
    before = user_state(repo)
    assert before["bisect_refs"] and before["bisect_log"]

    report = bisect_selector(gitpython.Repo(repo), SELECTOR, good=None, bad=None,
                             history=passing_history(tmp_path, shas[0]), options=FAST,
                             ledger_path=repo / "docs" / "fix_plan.md")

    assert report.outcome == "found", report
    assert report.good == shas[0] and report.good_source == "last passing run in the history"
    assert report.bad == shas[6]
    first = report.first_bad
    assert first is not None and first.sha == shas[5]
    assert (first.author, first.subject) == ("Test Author", "calc: simpler add")
    assert "Harness-Item: CALC-2" in first.message
    assert first.items == (("CALC-2", "Refactor addition"),)
    assert [(s.commit, s.verdict) for s in report.steps[:2]] == [(shas[0], "good"), (shas[6], "bad")]
    verdicts = {s.commit: s.verdict for s in report.steps}
    assert verdicts[shas[5]] == "bad"
    assert all(verdicts[s] == "good" for s in (shas[0], shas[1], shas[2], shas[4]) if s in verdicts)
    # The broken conftest is not the selector's fault: that commit is skipped, and said so.
    assert [s.commit for s in report.skipped] == [shas[3]]
    assert "cannot run here" in report.skipped[0].detail and "no_such_plugin" in report.skipped[0].detail
    assert user_state(repo) == before
    assert not (repo / ".git" / "worktrees").exists() or not any((repo / ".git" / "worktrees").iterdir())


@pytest.mark.slow
def test_commits_that_cannot_run_the_selector_are_skipped_and_reported(
        make_repo: Callable[..., Path]) -> None:
    repo = make_repo({"src/calc.py": GOOD_CALC, "tests/test_calc.py": TESTS})
    good = git(repo, "rev-parse", "HEAD").strip()
    gone = commit(repo, "tests: move the tests away", remove=("tests/test_calc.py",),
                  files={"tests/test_moved.py": TESTS})
    bad = commit(repo, "calc: break it, tests back", {"src/calc.py": BAD_CALC, "tests/test_calc.py": TESTS})

    report = bisect_selector(gitpython.Repo(repo), SELECTOR, good=good, bad=bad,
                             history=History(repo, (), ()), options=FAST)

    assert report.outcome == "ambiguous"
    assert set(report.candidates) == {gone, bad}
    assert [s.commit for s in report.skipped] == [gone]
    assert "selects no tests" in report.skipped[0].detail
    assert "one of" in report.message


@pytest.mark.slow
def test_bisect_says_plainly_when_good_does_not_pass_or_bad_does_not_fail(
        history_repo: tuple[Path, list[str]], tmp_path: Path) -> None:
    repo, shas = history_repo
    r = gitpython.Repo(repo)
    empty = History(tmp_path / "none.jsonl", (), ())

    failing_good = bisect_selector(r, SELECTOR, good=shas[5], bad=shas[6], history=empty, options=FAST)
    assert failing_good.outcome == "not_confirmed"
    assert f"does not pass at the good commit {shas[5][:10]} (given): it is failed" in failing_good.message

    passing_bad = bisect_selector(r, SELECTOR, good=shas[0], bad=shas[4], history=empty, options=FAST)
    assert passing_bad.outcome == "not_confirmed"
    assert f"does not fail at the bad commit {shas[4][:10]} (given): it is passed" in passing_bad.message

    with pytest.raises(SelectorError, match="has no passing run in .*give --good REV"):
        bisect_selector(r, SELECTOR, good=None, bad=None, history=empty, options=FAST)
    with pytest.raises(SelectorError, match="is not an ancestor of bad"):
        bisect_selector(r, SELECTOR, good=shas[6], bad=shas[0], history=empty, options=FAST)
    with pytest.raises(SelectorError, match="the same commit"):
        bisect_selector(r, SELECTOR, good="HEAD", bad=shas[6], history=empty, options=FAST)
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


def test_judge_tells_bad_from_cannot_run(tmp_path: Path) -> None:
    root = tmp_path / "suite"
    write_files(root, {
        "pytest.ini": "[pytest]\n",
        "a/test_ok.py": "def test_ok():\n    pass\n",
        "b/test_own_import.py": "from nowhere import thing\n\n\ndef test_x():\n    pass\n",
        "c/conftest.py": "import no_such_plugin\n",
        "c/test_under.py": "def test_y():\n    pass\n",
        "d/test_empty.py": "# nothing\n",
    })
    out = tmp_path / "out"
    cases = {"a/test_ok.py::test_ok": GOOD, "b/test_own_import.py::test_x": BAD, "c/test_under.py": SKIP,
             "d/test_empty.py": SKIP}
    got = {raw: judge(parse_selector(raw), root, out, f"case{i}", FAST)[0] for i, raw in enumerate(cases)}
    assert got == cases
