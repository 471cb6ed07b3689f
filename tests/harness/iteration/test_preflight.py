"""Preflight: what can be checked before an attempt is claimed is checked, and the message names the fix."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import HarnessError
from harness.iteration.preflight import preflight, program_problem
from harness.iteration.records import IterationRequest
from harness.workspace import open_workspace
from tests.harness.project import HARNESS_YAML, LEDGER, make_project, with_gates


def request_for(repo: Path, item_id: str = "CALC-001") -> IterationRequest:
    ws = open_workspace(repo)
    ledger = ws.load_ledger()
    return IterationRequest(root=ws.root, config=ws.config, item=ledger.get(item_id), base="0" * 40, ledger=ledger)


def agent_yaml(command: str, extra: str = "") -> str:
    return HARNESS_YAML + f"agent:\n  command: {command}\n" + extra


def nothing_written(repo: Path) -> bool:
    return not (repo / ".git" / "harness").exists() and not (repo / "plans").exists()


@pytest.mark.parametrize("field", ["RED", "Regression", "Acceptance"])
def test_a_selector_with_unbalanced_quotes_names_the_field_and_the_ledger_line(make_repo, field) -> None:
    ledger = LEDGER.replace("- Exit-Criteria: mul multiplies", f'- {field}: tests/test_mul.py -k "unclosed')
    repo = make_project(make_repo, ledger=ledger)
    with pytest.raises(HarnessError) as raised:
        preflight(request_for(repo), use_agent=False)
    line = ledger.splitlines().index(f'- {field}: tests/test_mul.py -k "unclosed') + 1
    message = str(raised.value)
    assert message.startswith(f"docs/fix_plan.md:{line}: item CALC-001, `- {field}:` selector")
    assert "balance its quotes" in message
    assert nothing_written(repo)


def test_a_sound_item_without_an_agent_passes(make_repo) -> None:
    repo = make_project(make_repo)
    preflight(request_for(repo), use_agent=False)
    assert nothing_written(repo)


def test_the_agent_is_not_checked_when_no_agent_runs(make_repo) -> None:
    repo = make_project(make_repo, extra={"harness.yaml": agent_yaml("[no-such-agent-f1]")})
    preflight(request_for(repo), use_agent=False)


def test_an_agent_that_is_not_on_path_names_agent_command(make_repo) -> None:
    repo = make_project(make_repo, extra={"harness.yaml": agent_yaml("[no-such-agent-f1, -p]")})
    with pytest.raises(HarnessError, match=r"'no-such-agent-f1' is not on PATH; fix `agent.command` in harness.yaml"):
        preflight(request_for(repo), use_agent=True)


def test_an_agent_given_as_a_path_must_exist_and_be_executable(make_repo, tmp_path) -> None:
    script = tmp_path / "agent.sh"
    repo = make_project(make_repo, extra={"harness.yaml": agent_yaml(f"[{script}]")})
    with pytest.raises(HarnessError, match=f"{script} does not exist"):
        preflight(request_for(repo), use_agent=True)
    script.write_text("#!/bin/sh\nexit 0\n")
    with pytest.raises(HarnessError, match="is not executable"):
        preflight(request_for(repo), use_agent=True)
    script.chmod(0o755)
    preflight(request_for(repo), use_agent=True)


def test_a_relative_agent_path_is_taken_from_the_repository_root(make_repo) -> None:
    repo = make_project(make_repo, extra={"harness.yaml": agent_yaml("[./tools/agent.sh]")})
    with pytest.raises(HarnessError, match=r"tools/agent.sh does not exist"):
        preflight(request_for(repo), use_agent=True)
    (repo / "tools").mkdir()
    (repo / "tools" / "agent.sh").write_text("#!/bin/sh\n")
    (repo / "tools" / "agent.sh").chmod(0o755)
    preflight(request_for(repo), use_agent=True)


def test_no_agent_configured_is_an_error_when_an_agent_would_run(make_repo) -> None:
    repo = make_project(make_repo)
    with pytest.raises(HarnessError, match="set `agent.command` in harness.yaml"):
        preflight(request_for(repo), use_agent=True)


def test_a_missing_prompt_template_names_agent_prompt_template(make_repo) -> None:
    repo = make_project(make_repo, extra={"harness.yaml": agent_yaml('["{python}", "-c", "pass"]',
                                                                      "  prompt_template: prompts/missing.md.j2\n")})
    with pytest.raises(HarnessError, match=r"prompts/missing.md.j2 does not exist; fix `agent.prompt_template`"):
        preflight(request_for(repo), use_agent=True)


@pytest.mark.parametrize(("template", "expected"), [
    ("Work on {{ item.id }\n", r"line 1: unexpected '}'"),
    ("Work on {{ item.no_such_key }}\n", r"no_such_key"),
    ("{% if phase == 'green' %}{{ not_in_the_context }}{% endif %}\n", r"not_in_the_context"),
])
def test_a_prompt_template_that_does_not_render_for_a_phase_is_an_error(make_repo, template, expected) -> None:
    yaml = agent_yaml('["{python}", "-c", "pass"]', "  prompt_template: prompt.md.j2\n  phases: [red, green]\n")
    repo = make_project(make_repo, extra={"harness.yaml": yaml, "prompt.md.j2": template})
    with pytest.raises(HarnessError, match=expected):
        preflight(request_for(repo), use_agent=True)


def test_acceptance_selectors_need_an_existing_holdout_dir(make_repo, tmp_path) -> None:
    ledger = LEDGER.replace("- Exit-Criteria: mul multiplies", "- Acceptance: tests/acceptance/test_mul_more.py")
    repo = make_project(make_repo, ledger=ledger,
                        extra={"harness.yaml": HARNESS_YAML + f"holdout:\n  dir: {tmp_path / 'holdout'}\n"})
    with pytest.raises(HarnessError, match="holdout.dir .* is not a folder"):
        preflight(request_for(repo), use_agent=False)
    (tmp_path / "holdout").mkdir()
    preflight(request_for(repo), use_agent=False)


def test_the_lint_gate_needs_its_program(make_repo) -> None:
    yaml = with_gates(HARNESS_YAML, "  lint:\n    command: [no-such-linter-f1, check, .]\n")
    repo = make_project(make_repo, extra={"harness.yaml": yaml})
    with pytest.raises(HarnessError, match=r"'no-such-linter-f1' is not on PATH; fix `gates.lint.command`"):
        preflight(request_for(repo), use_agent=False)


def test_the_lint_gate_with_the_harness_python_passes(make_repo) -> None:
    yaml = with_gates(HARNESS_YAML, '  lint:\n    command: ["{python}", -m, ruff, check, .]\n')
    repo = make_project(make_repo, extra={"harness.yaml": yaml})
    preflight(request_for(repo), use_agent=False)


@pytest.mark.parametrize(("line", "expected"), [
    ("- Allow: test-removed, tests-renamed", "names tests-renamed, which the integrity gate does not find"),
    ("- Mutation: sometimes", "`Mutation: sometimes` is not one of required, off"),
])
def test_allow_and_mutation_values_are_checked(make_repo, line, expected) -> None:
    repo = make_project(make_repo, ledger=LEDGER.replace("- Exit-Criteria: mul multiplies", line))
    with pytest.raises(HarnessError, match=expected):
        preflight(request_for(repo), use_agent=False)


def test_program_problem_looks_up_bare_names_on_the_given_path(tmp_path) -> None:
    tool = tmp_path / "tool-f1"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    assert program_problem("tool-f1", tmp_path, env_path=str(tmp_path)) is None
    assert program_problem("tool-f1", tmp_path, env_path=os.devnull) == "'tool-f1' is not on PATH"
