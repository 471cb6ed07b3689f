"""An error that is not the change's fault costs no attempt: before the claim (preflight) and after it (the
attempt is unwound where the error happens). Each case runs twice in a row through the real CLI: the second
run must give the same clear error, not recover a crash that never happened."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.clock import utc_now
from harness.durability.set_aside import keep_ledger
from harness.errors import ExitCode, GitError, Interrupted
from harness.iteration.execute import begin_attempt, unwound_on_error
from harness.iteration.records import IterationRequest
from harness.ledger import load_ledger, with_attempt
from harness.main import main
from harness.workspace import open_workspace
from tests.conftest import git
from tests.harness.project import HARNESS_YAML, LEDGER, MUL_IMPL, MUL_TEST, apply_change, make_project
from tests.harness.repo_state import leftovers, repo_state

USERS_FIX = {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL}


def run_twice_and_compare(repo: Path, argv: list[str], capsys, *, expected: str, after_first=None) -> list[str]:
    """Both runs exit 4 with `expected` in the error; the repository is exactly as before (or as
    `after_first` says the first run left it); no attempt was recorded or claimed; nothing was recovered."""
    before = repo_state(repo)
    errors = []
    for run in (1, 2):
        assert main(argv) == ExitCode.ERROR
        err = capsys.readouterr().err
        errors.append(err)
        assert expected in err, err
        assert "recovered" not in err, err
        now = repo_state(repo)
        want = before if after_first is None else after_first(before)
        assert now.files == want.files  # the tree (the user's fix) and the ledger, byte for byte
        assert now.status == want.status and now.head == before.head and now.refs == before.refs
        assert leftovers(repo) == []
        assert load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts == ()
    if after_first is None:  # found before the claim both times: word for word the same
        assert errors[0] == errors[1]
    return errors


def test_a_selector_with_unbalanced_quotes_costs_no_attempt(make_repo, capsys) -> None:
    ledger = LEDGER.replace("- RED: tests/test_mul.py::test_mul", '- RED: tests/test_mul.py -k "unclosed')
    repo = make_project(make_repo, ledger=ledger)
    apply_change(repo, USERS_FIX)
    run_twice_and_compare(repo, ["run", "-C", str(repo), "--no-agent", "CALC-001"], capsys,
                          expected="harness: error: docs/fix_plan.md:7: item CALC-001, `- RED:` selector "
                                   "'tests/test_mul.py -k \"unclosed' cannot be split")


def test_a_missing_agent_program_costs_no_attempt(make_repo, capsys) -> None:
    repo = make_project(make_repo, extra={"harness.yaml": HARNESS_YAML + "agent:\n  command: [no-such-agent-f1]\n"})
    apply_change(repo, USERS_FIX)
    run_twice_and_compare(repo, ["run", "-C", str(repo), "--allow-dirty", "CALC-001"], capsys,
                          expected="'no-such-agent-f1' is not on PATH; fix `agent.command` in harness.yaml")


def test_a_missing_prompt_template_costs_no_attempt(make_repo, capsys) -> None:
    yaml = HARNESS_YAML + 'agent:\n  command: ["{python}", "-c", "pass"]\n  prompt_template: prompts/gone.md.j2\n'
    repo = make_project(make_repo, extra={"harness.yaml": yaml})
    apply_change(repo, USERS_FIX)
    run_twice_and_compare(repo, ["run", "-C", str(repo), "--allow-dirty", "CALC-001"], capsys,
                          expected="prompts/gone.md.j2 does not exist; fix `agent.prompt_template`")


def test_an_error_after_the_claim_unwinds_the_attempt_and_keeps_the_agents_work(make_repo, tmp_path, capsys) -> None:
    # The agent passes preflight, then removes itself during its first turn (after writing the test): its
    # second turn cannot start. That error comes after the attempt was claimed and RED was proven.
    agent = tmp_path / "bin" / "agent"
    agent.parent.mkdir()
    agent.write_text(f"#!/bin/sh\ncat > /dev/null\nprintf '%s' '{MUL_TEST}' > tests/test_mul.py\nrm -- \"$0\"\n")
    agent.chmod(0o755)
    # Without a sandbox: in one, the agent's program is read-only to it.
    yaml = HARNESS_YAML + f"agent:\n  command: [{agent}]\n  phases: [red, green]\n  sandbox: off\n"
    repo = make_project(make_repo, extra={"harness.yaml": yaml})
    apply_change(repo, {"notes.txt": "the user's own file\n"})

    def with_the_agents_test(before):
        return type(before)(before.head, "?? notes.txt\n?? tests/test_mul.py\n",
                            {**before.files, "tests/test_mul.py": MUL_TEST.encode()}, before.refs)

    first, second = run_twice_and_compare(repo, ["run", "-C", str(repo), "--allow-dirty", "CALC-001"], capsys,
                                          expected="harness: error: the agent cannot start: ",
                                          after_first=with_the_agents_test)
    assert "was not found" in first  # when its second turn started
    assert f"{agent} does not exist" in second  # found by preflight: nothing was claimed
    assert not agent.exists()


def test_verify_checks_selectors_before_claiming(make_repo, capsys) -> None:
    ledger = LEDGER.replace("- Regression: tests/test_calc.py", "- Regression: tests/test_calc.py -k 'open")
    repo = make_project(make_repo, ledger=ledger)
    base = git(repo, "rev-parse", "HEAD").strip()
    apply_change(repo, USERS_FIX)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "mul")
    run_twice_and_compare(repo, ["verify", "-C", str(repo), "--base", base, "--item", "CALC-001"], capsys,
                          expected="item CALC-001, `- Regression:` selector")


@pytest.mark.parametrize("error", [GitError("git failed"), RuntimeError("a bug")])
def test_a_claimed_attempt_is_taken_back_whatever_the_error(make_repo, error) -> None:
    """Any Exception (a HarnessError or a bug) unwinds the claim, the attempt line the harness had written
    included, and keeps the edit a person made to the ledger meanwhile."""
    repo = make_project(make_repo)
    apply_change(repo, USERS_FIX)
    before = repo_state(repo)
    ws = open_workspace(repo)
    ledger = ws.load_ledger()
    request = IterationRequest(root=ws.root, config=ws.config, item=ledger.get("CALC-001"), base=before.head,
                               ledger=ledger)
    attempt = begin_attempt(request, ws.repo, utc_now())
    assert attempt.evidence_dir.is_dir() and attempt.journal.load() is not None  # claimed
    ledger_path = repo / "docs/fix_plan.md"
    with pytest.raises(type(error)), unwound_on_error(request, ws.repo, attempt):
        (attempt.staging / "red").mkdir()
        written = with_attempt(ledger.text, "CALC-001", timestamp="2026-01-01T00:00:00Z", number=1,
                               outcome="FAILED at red", base_commit=before.head[:10], evidence="x/summary.md")
        keep_ledger(attempt.journal, ledger_path.read_bytes(), written.encode())  # as commit.py writes it
        ledger_path.write_text(written)
        ledger_path.write_text(ledger_path.read_text() + "\nA person's note.\n")  # edited meanwhile
        raise error
    after = repo_state(repo)
    assert after.files.pop("docs/fix_plan.md") == before.files.pop("docs/fix_plan.md") + b"\nA person's note.\n"
    assert after.files == before.files and after.refs == before.refs and after.head == before.head
    assert leftovers(repo) == []


def test_an_interruption_is_not_unwound(make_repo) -> None:
    """Ctrl-C and SIGTERM are crashes: the journal stays for the next start to record ABORTED."""
    repo = make_project(make_repo)
    ws = open_workspace(repo)
    ledger = ws.load_ledger()
    request = IterationRequest(root=ws.root, config=ws.config, item=ledger.get("CALC-001"),
                               base=repo_state(repo).head, ledger=ledger)
    attempt = begin_attempt(request, ws.repo, utc_now())
    with pytest.raises(Interrupted), unwound_on_error(request, ws.repo, attempt):
        raise Interrupted("SIGTERM")
    assert attempt.journal.load()["item"] == "CALC-001"
