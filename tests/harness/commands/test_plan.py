"""`harness plan`: a planner proposes ledger items; only a proposal that passes the lint enters the ledger,
in one commit, and only with --apply."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import HARNESS_YAML, make_project, status_porcelain

# CALC-001 and CALC-002 are pending; DONE-1 is done and BLOCKED-1 blocked, each with its attempt line.
LEDGER = """\
# Fix Plan

## [CALC-001] calc gains mul
- Status: pending
- Priority: 1
- RED: tests/test_mul.py::test_mul

Prose about the item.

## [CALC-002] calc gains sub
- Status: pending
- Priority: 2
- Depends-On: CALC-001
- RED: tests/test_sub.py

## [DONE-1] add exists
- Status: done
- RED: tests/test_calc.py::test_add

### Attempts History
- 2025-01-01T12:00:00Z · #1 · GREEN · 1234567 · plans/active/DONE-1/summary.md

## [BLOCKED-1] calc gains div
- Status: blocked (1 failed attempt: FAILED at red)
- RED: tests/test_div.py

Divide two numbers.

### Attempts History
- 2025-01-01T13:00:00Z · #1 · FAILED at red · 1234567 · plans/active/BLOCKED-1/summary.md
"""

NEW_ITEM = """\
## [CALC-003] calc gains neg
- Priority: 3
- Depends-On: CALC-002
- RED: tests/test_neg.py::test_neg
- Exit-Criteria: neg(2) == -2

neg is the unary minus.
"""

EDIT_CALC_002 = """\
## [CALC-002] calc gains sub, tested both ways
- Status: pending
- Priority: 2
- Depends-On: CALC-001
- RED: tests/test_sub.py
- Exit-Criteria: sub(3, 1) == 2 and sub(1, 3) == -2
"""


def planner_project(make_repo, tmp_path: Path, proposal: str | None = None, *, planner_yaml: str | None = None,
                    ledger: str = LEDGER) -> Path:
    """A project whose planner is the scripted planner writing `proposal` (kept in tmp_path/proposal.md)."""
    source = tmp_path / "proposal.md"
    source.write_text(proposal or "")
    yaml = planner_yaml or ('planner:\n  command: ["{python}", "-m", "harness.demo.scripted_planner", '
                            f'"{source}"]\n  timeout_s: 60\n')
    return make_project(make_repo, extra={"harness.yaml": HARNESS_YAML + yaml}, ledger=ledger)


def snapshot(repo: Path) -> tuple[bytes, str]:
    return (repo / "docs/fix_plan.md").read_bytes(), git(repo, "rev-parse", "HEAD").strip()


def test_a_good_proposal_shows_its_diff_and_writes_nothing_without_apply(make_repo, tmp_path, capsys) -> None:
    repo = planner_project(make_repo, tmp_path, NEW_ITEM + "\n" + EDIT_CALC_002)
    before = snapshot(repo)

    assert main(["plan", "-C", str(repo)]) == ExitCode.OK

    out = capsys.readouterr().out
    assert "+## [CALC-003] calc gains neg\n" in out and "+- Depends-On: CALC-002\n" in out
    assert "-## [CALC-002] calc gains sub\n" in out and "+## [CALC-002] calc gains sub, tested both ways\n" in out
    assert "--- a/docs/fix_plan.md" in out and "add CALC-003; edit CALC-002 (dry run: nothing written)" in out
    assert snapshot(repo) == before and status_porcelain(repo) == ""
    kept = repo / ".git/harness/plan/proposal.md"
    assert kept.read_text() == NEW_ITEM + "\n" + EDIT_CALC_002 and f"--proposal {kept}" in out


def test_apply_makes_one_commit_with_the_plan_and_a_trailer_naming_the_planner(make_repo, tmp_path,
                                                                               capsys) -> None:
    repo = planner_project(make_repo, tmp_path, NEW_ITEM + "\n" + EDIT_CALC_002)
    head = git(repo, "rev-parse", "HEAD").strip()

    assert main(["plan", "-C", str(repo), "--apply", "--goal", "unary operators"]) == ExitCode.OK

    assert git(repo, "rev-parse", "HEAD~1").strip() == head
    message = git(repo, "log", "-1", "--format=%B")
    assert message.startswith("plan: add CALC-003; edit CALC-002\n\nGoal: unary operators\n")
    assert "- added [CALC-003] calc gains neg\n- edited [CALC-002] calc gains sub, tested both ways" in message
    trailer = git(repo, "log", "-1", "--format=%(trailers:key=Harness-Planner,valueonly)").strip()
    assert trailer == f"{{python}} -m harness.demo.scripted_planner {tmp_path / 'proposal.md'}"
    assert git(repo, "show", "--name-only", "--format=", "HEAD").split() == ["docs/fix_plan.md"]
    expected = LEDGER.replace(EDIT_CALC_002.replace(", tested both ways", "").replace(
        "- Exit-Criteria: sub(3, 1) == 2 and sub(1, 3) == -2\n", ""), EDIT_CALC_002) + "\n" + NEW_ITEM
    assert (repo / "docs/fix_plan.md").read_text() == expected  # every other byte as it was
    ledger = load_ledger(repo / "docs/fix_plan.md")
    assert ledger.ids() == ("CALC-001", "CALC-002", "DONE-1", "BLOCKED-1", "CALC-003")
    assert ledger.get("CALC-003").depends_on == ("CALC-002",) and ledger.get("CALC-003").status == "pending"
    assert status_porcelain(repo) == ""
    assert "committed" in capsys.readouterr().out


def test_an_edited_blocked_item_keeps_its_attempt_history(make_repo, tmp_path) -> None:
    unblocked = "## [BLOCKED-1] calc gains div, by a smaller step\n- Status: pending\n- RED: tests/test_div.py::test_div\n"
    repo = planner_project(make_repo, tmp_path, unblocked)
    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.OK
    text = (repo / "docs/fix_plan.md").read_text()
    assert text.endswith(unblocked + "\n### Attempts History\n"
                         "- 2025-01-01T13:00:00Z · #1 · FAILED at red · 1234567 · plans/active/BLOCKED-1/summary.md\n")
    item = load_ledger(repo / "docs/fix_plan.md").get("BLOCKED-1")
    assert item.status == "pending" and item.prose == "" and [a.outcome for a in item.attempts] == ["FAILED at red"]


def test_the_proposal_of_a_dry_run_is_applied_exactly_as_reviewed(make_repo, tmp_path, capsys) -> None:
    queue = tmp_path / "queue"
    queue.mkdir()
    (queue / "1.md").write_text(NEW_ITEM)  # a second run of the planner would propose nothing
    yaml = f'planner:\n  command: ["{{python}}", "-m", "harness.demo.scripted_planner", "{queue}"]\n'
    repo = planner_project(make_repo, tmp_path, planner_yaml=yaml)
    assert main(["plan", "-C", str(repo)]) == ExitCode.OK
    reviewed = capsys.readouterr().out
    kept = repo / ".git/harness/plan/proposal.md"

    assert main(["plan", "-C", str(repo), "--apply", "--proposal", str(kept)]) == ExitCode.OK

    assert git(repo, "log", "-1", "--format=%s").strip() == "plan: add CALC-003"
    assert "+## [CALC-003] calc gains neg" in reviewed and load_ledger(repo / "docs/fix_plan.md").get("CALC-003")
    assert (queue / "1.md.used").exists() and not (queue / "1.md").exists()  # the planner ran once


REFUSALS = {
    "bad-grammar": ("## [calc-3] a lower-case id\n- RED: tests/test_x.py\n", "parse-error",
                    "proposal.md:1: parse-error: item id [calc-3] is not valid"),
    "duplicate-id": (NEW_ITEM + "\n" + NEW_ITEM, "duplicate-id", "duplicate id [CALC-003] at lines 1 and 9"),
    "unknown-dependency": (NEW_ITEM.replace("Depends-On: CALC-002", "Depends-On: CALC-020"), "missing-dependency",
                           ("proposal.md:3: [CALC-003] missing-dependency: depends on [CALC-020], which neither "
                           "the ledger nor the proposal has (did you mean CALC-002")),
    "cycle": (NEW_ITEM + "\n" + EDIT_CALC_002.replace("Depends-On: CALC-001", "Depends-On: CALC-003"),
              "dependency-cycle", "dependency cycle among CALC-002, CALC-003"),
    "red-not-a-test-file": (NEW_ITEM.replace("tests/test_neg.py::test_neg", "pkg/calc.py"), "red-not-a-test-file",
                            ("proposal.md:4: [CALC-003] red-not-a-test-file: RED 'pkg/calc.py': pkg/calc.py is not "
                            "a test file: it matches none of test_globs")),
    "red-names-a-folder": (NEW_ITEM.replace("tests/test_neg.py::test_neg", "tests"), "red-not-a-test-file",
                           "names the folder tests"),
    "no-red": (NEW_ITEM.replace("- RED: tests/test_neg.py::test_neg\n", ""), "no-red", "needs a `- RED:` selector"),
    "new-item-done": (NEW_ITEM.replace("- Priority: 3", "- Status: done\n- Priority: 3"), "status",
                      "Status 'done': a plan sets pending or blocked only"),
    "done-item-changed": ("## [DONE-1] add exists, renamed\n- Status: done\n- RED: tests/test_calc.py::test_add\n",
                          "not-editable", "[DONE-1] is 'done' in the ledger (line 16)"),
    "attempt-line-changed": (("## [BLOCKED-1] calc gains div\n- Status: pending\n- RED: tests/test_div.py\n\n"
                             "### Attempts History\n"
                             "- 2025-01-01T13:00:00Z · #1 · GREEN · 1234567 · plans/active/BLOCKED-1/summary.md\n"),
                             "attempt-lines", ("proposal.md:5: [BLOCKED-1] attempt-lines: the item holds an "
                             "`### Attempts History` section")),
    "misspelt-field": (NEW_ITEM.replace("Depends-On", "Depends-on"), "unknown-field",
                       "field 'Depends-on' is not used by the harness"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_proposal_that_fails_the_lint_is_refused_with_its_reason_and_nothing_is_written(
        make_repo, tmp_path, capsys, case: str) -> None:
    proposal, code, needle = REFUSALS[case]
    repo = planner_project(make_repo, tmp_path, proposal)
    before = snapshot(repo)

    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.REFUSED

    captured = capsys.readouterr()
    assert f" {code}: " in captured.out and needle in captured.out, captured.out
    assert "harness plan: refused" in captured.err and "nothing was written" in captured.err
    assert snapshot(repo) == before and status_porcelain(repo) == ""


def test_missing_acceptance_is_refused_where_the_planner_must_name_it(make_repo, tmp_path, capsys) -> None:
    source = tmp_path / "proposal.md"
    yaml = (f'planner:\n  command: ["{{python}}", "-m", "harness.demo.scripted_planner", "{source}"]\n'
            "  require_acceptance: true\n")
    repo = planner_project(make_repo, tmp_path, planner_yaml=yaml)
    source.write_text(NEW_ITEM)
    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.REFUSED
    assert "[CALC-003] missing-acceptance: planner.require_acceptance is set" in capsys.readouterr().out
    source.write_text(NEW_ITEM.replace("- Exit-Criteria", "- Acceptance: tests/test_neg_holdout.py\n- Exit-Criteria"))
    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.OK
    assert load_ledger(repo / "docs/fix_plan.md").get("CALC-003").acceptance == ("tests/test_neg_holdout.py",)


ROGUE_PLANNER = """\
import os, sys
from pathlib import Path
sys.stdin.read()
Path(os.environ["HARNESS_PLAN_FILE"]).write_text(sys.argv[1])
Path("pkg/calc.py").write_text("def add(a, b):\\n    return 0\\n")
Path("tests/test_new.py").write_text("def test_new():\\n    pass\\n")
Path("docs/fix_plan.md").write_text(Path("docs/fix_plan.md").read_text().replace("pending", "done"))
Path("notes.txt").write_text("the planner was here\\n")
"""


def test_a_planner_that_changes_the_tree_is_refused_and_its_edits_are_taken_back(make_repo, tmp_path,
                                                                                   capsys) -> None:
    script = tmp_path / "rogue.py"
    script.write_text(ROGUE_PLANNER)
    yaml = f'planner:\n  command: ["{{python}}", "{script}", {json.dumps(NEW_ITEM)}]\n'
    repo = planner_project(make_repo, tmp_path, planner_yaml=yaml)
    (repo / "notes.txt").write_text("a person's notes\n")  # uncommitted work of a person, changed by the planner
    before = snapshot(repo)

    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.REFUSED

    out = capsys.readouterr().out
    assert "tree-changed: the planner changed the working tree (docs/fix_plan.md, notes.txt, pkg/calc.py, " \
           "tests/test_new.py)" in out
    assert "taken back (as HEAD has them): docs/fix_plan.md, pkg/calc.py, tests/test_new.py" in out
    assert "left as the planner left them (they held uncommitted changes before it ran): notes.txt" in out
    assert snapshot(repo) == before
    assert status_porcelain(repo) == "?? notes.txt\n"


def test_a_planner_that_commits_is_refused(make_repo, tmp_path, capsys) -> None:
    script = tmp_path / "committer.py"
    script.write_text("import subprocess, sys\nsys.stdin.read()\n"
                      "subprocess.run(['git', 'commit', '-q', '--allow-empty', '-m', 'sneaky'], check=True)\n")
    repo = planner_project(make_repo, tmp_path, planner_yaml=f'planner:\n  command: ["{{python}}", "{script}"]\n')
    ledger_before = (repo / "docs/fix_plan.md").read_bytes()
    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.REFUSED
    assert "head-moved: the planner moved HEAD" in capsys.readouterr().out
    assert (repo / "docs/fix_plan.md").read_bytes() == ledger_before
    assert git(repo, "log", "-1", "--format=%s").strip() == "sneaky"  # left for a person to inspect


PLANNER_FAILURES = {
    "not-found": ('["no-such-planner-xyz", "-p"]', 60, ("the planner cannot start: 'no-such-planner-xyz' was not "
                  "found; fix `planner.command` in harness.yaml")),
    "fails": ('["{python}", "-c", "import sys; sys.stdin.read(); sys.exit(3)"]', 60,
              "the planner exited with code 3; nothing was written; its log: "),
    "times-out": ('["{python}", "-c", "import time; time.sleep(60)"]', 1,
                  "the planner timed out after 1 s (its process group was killed); nothing was written"),
    "writes-no-proposal": ('["{python}", "-c", "import sys; sys.stdin.read()"]', 60,
                           "the planner exited 0 but wrote no proposal to $HARNESS_PLAN_FILE"),
}


@pytest.mark.parametrize("case", sorted(PLANNER_FAILURES))
def test_a_planner_that_cannot_give_a_proposal_is_an_error_and_nothing_is_written(make_repo, tmp_path, capsys,
                                                                                 case: str) -> None:
    command, timeout_s, needle = PLANNER_FAILURES[case]
    repo = planner_project(make_repo, tmp_path,
                           planner_yaml=f"planner:\n  command: {command}\n  timeout_s: {timeout_s}\n")
    before = snapshot(repo)
    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.ERROR
    assert needle in capsys.readouterr().err
    assert snapshot(repo) == before and status_porcelain(repo) == ""


def test_without_a_planner_the_error_says_how_to_configure_one(make_repo, capsys) -> None:
    repo = make_project(make_repo, ledger=LEDGER)
    assert main(["plan", "-C", str(repo)]) == ExitCode.ERROR
    assert "no planner is configured: add `planner: {command: [...]}` to harness.yaml" in capsys.readouterr().err


def test_a_ledger_with_uncommitted_edits_is_not_planned(make_repo, tmp_path, capsys) -> None:
    repo = planner_project(make_repo, tmp_path, NEW_ITEM)
    edited = LEDGER.replace("Prose about the item.", "A person's edit, not committed yet.")
    (repo / "docs/fix_plan.md").write_text(edited)
    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.ERROR
    assert "docs/fix_plan.md has uncommitted changes" in capsys.readouterr().err
    assert (repo / "docs/fix_plan.md").read_text() == edited


def test_an_empty_proposal_changes_nothing(make_repo, tmp_path, capsys) -> None:
    repo = planner_project(make_repo, tmp_path, "")
    before = snapshot(repo)
    assert main(["plan", "-C", str(repo), "--apply"]) == ExitCode.OK
    assert "the planner proposed no change" in capsys.readouterr().out
    assert snapshot(repo) == before


PROMPT_CATCHER = """\
import os, sys
from pathlib import Path
Path(sys.argv[1]).write_text(sys.stdin.read() + "\\nENV " + os.environ["HARNESS_PLAN_FILE"])
Path(os.environ["HARNESS_PLAN_FILE"]).write_text("")
"""


def test_the_planner_is_told_the_goal_the_ledger_the_last_attempts_and_where_to_write(make_repo, tmp_path) -> None:
    script, caught = tmp_path / "catcher.py", tmp_path / "prompt.txt"
    script.write_text(PROMPT_CATCHER)
    repo = planner_project(make_repo, tmp_path,
                           planner_yaml=f'planner:\n  command: ["{{python}}", "{script}", "{caught}"]\n')
    (repo / "docs/findings.md").write_text("# Findings\n\n## F-1\nmul overflows nothing\n")
    git(repo, "add", "docs/findings.md")
    git(repo, "commit", "-q", "-m", "findings")
    assert main(["plan", "-C", str(repo), "--goal", "grow calc into a calculator"]) == ExitCode.OK
    prompt, env_line = caught.read_text().rsplit("\nENV ", 1)
    assert "grow calc into a calculator" in prompt
    assert f"    {env_line}\n" in prompt  # the proposal file, named in the prompt as in the environment
    assert "- [CALC-001] calc gains mul: pending, priority 1" in prompt
    assert "- [DONE-1] add exists: done, priority 100, 1 attempt(s), last GREEN (not editable)" in prompt
    assert "[BLOCKED-1] #1 2025-01-01T13:00:00Z: FAILED at red" in prompt
    assert "mul overflows nothing" in prompt and "Prose about the item." in prompt
