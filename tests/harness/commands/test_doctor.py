"""`harness doctor`: one line per check, what to do for each problem, exit 1 when something required is
missing. The environments are real: programs on a PATH of the test's own (a `git` that reports an old
version and hands everything else to the real git), a repository built by the test."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.main import main
from tests.harness.project import LEDGER

HEALTHY = {"harness.yaml": "commit: {name: Doctor Test, email: doctor@example.invalid}\n",
           "docs/fix_plan.md": LEDGER, "README.md": "x\n"}


def doctor(repo: Path, capsys, *extra: str) -> tuple[int, str]:
    code = main(["doctor", "-C", str(repo), *extra])
    out = capsys.readouterr()
    return code, out.out + out.err


def line_of(text: str, name: str) -> str:
    """The check's line and the fix lines under it."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith(" ") and line.split()[1:2] == [name]:
            block = [line]
            block += [follow for follow in lines[i + 1:i + 3] if follow.startswith(" ")]
            return "\n".join(block)
    raise AssertionError(f"no `{name}` line in:\n{text}")


def program(bin_dir: Path, name: str, body: str) -> Path:
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + textwrap.dedent(body))
    path.chmod(0o755)
    return path


@pytest.fixture
def own_path(tmp_path: Path, monkeypatch) -> Path:
    """A PATH of the test's own in front of the system's programs (git, sh); returns its first folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    git_dir = str(Path(shutil.which("git")).parent)
    monkeypatch.setenv("PATH", f"{bin_dir}:{git_dir}:/usr/bin:/bin")
    return bin_dir


def test_a_healthy_repository_passes_with_one_line_per_check(make_repo, capsys) -> None:
    repo = make_repo(HEALTHY)
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK, text
    for name in ("git", "pytest", "pytest-xdist", "agent", "sandbox", "harness.yaml", "ledger", "chromium"):
        assert line_of(text, name)
    assert line_of(text, "git").startswith("ok ") and "2." in line_of(text, "git")
    assert line_of(text, "harness.yaml").startswith("ok ") and line_of(text, "ledger").startswith("ok ")
    assert "2 items" in line_of(text, "ledger")
    assert line_of(text, "plugins").startswith("info ") and "pytest-xdist" in line_of(text, "plugins")
    # No agent configured: only --no-agent runs; that is not a failure.
    assert line_of(text, "agent").startswith("info ") and "--no-agent" in line_of(text, "agent")
    assert "FAIL" not in text


def test_a_missing_agent_program_fails_naming_it_and_the_fix(make_repo, capsys, own_path) -> None:
    repo = make_repo({**HEALTHY, "harness.yaml": "agent: {command: [no-such-agent-doctor, --go]}\n"})
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED, text
    agent = line_of(text, "agent")
    assert agent.startswith("FAIL ") and "'no-such-agent-doctor' is not on PATH" in agent
    assert "fix `agent.command` in harness.yaml" in agent and "put it on PATH" in agent


def test_a_missing_planner_program_fails_naming_it_and_the_fix(make_repo, capsys, own_path) -> None:
    repo = make_repo({**HEALTHY, "harness.yaml": "planner: {command: [no-such-planner-doctor]}\n"})
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED, text
    planner = line_of(text, "planner")
    assert planner.startswith("FAIL ") and "'no-such-planner-doctor' is not on PATH" in planner
    assert "fix `planner.command` in harness.yaml" in planner
    program(own_path, "no-such-planner-doctor", "exit 0\n")
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK, text
    assert line_of(text, "planner").startswith("ok ")


def test_a_presets_missing_program_names_the_preset_and_how_to_install_it(make_repo, capsys, own_path) -> None:
    repo = make_repo({**HEALTHY, "harness.yaml": "agent: {preset: claude-code}\n"})
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED, text
    agent = line_of(text, "agent")
    assert agent.startswith("FAIL ") and "'claude' is not on PATH" in agent and "preset claude-code" in agent
    assert "npm install -g @anthropic-ai/claude-code" in agent
    # Once the program is there, the line says where it is and how the prompt reaches it.
    claude = program(own_path, "claude", "exit 0\n")
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK, text
    agent = line_of(text, "agent")
    assert agent.startswith("ok ") and str(claude) in agent and "preset claude-code" in agent
    assert "prompt on stdin" in agent


def test_a_git_too_old_for_merge_tree_write_tree_fails_with_the_fix(make_repo, capsys, own_path) -> None:
    real_git = shutil.which("git")
    program(own_path, "git", f"""\
        if [ "$1" = "--version" ]; then echo "git version 2.30.0"; exit 0; fi
        exec {real_git} "$@"
        """)
    repo = make_repo(HEALTHY)
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED, text
    line = line_of(text, "git")
    assert line.startswith("FAIL ") and "git 2.30.0" in line and "merge-tree --write-tree" in line
    assert "upgrade git to 2.38 or later" in line


def test_a_missing_git_fails_with_the_fix(make_repo, capsys, tmp_path, monkeypatch) -> None:
    repo = make_repo(HEALTHY)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED
    assert line_of(text, "git").startswith("FAIL ") and "install git" in line_of(text, "git")


def test_a_harness_started_without_git_on_path_reports_it_instead_of_crashing(make_repo, tmp_path) -> None:
    # A fresh process: gitpython, imported there for the first time, refuses to load without git.
    repo = make_repo(HEALTHY)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "harness", "doctor", "-C", str(repo)], capture_output=True,
                          text=True, env={**os.environ, "PATH": str(empty)}, timeout=120, check=False)
    assert done.returncode == ExitCode.REFUSED, done.stdout + done.stderr
    assert line_of(done.stdout, "git").startswith("FAIL ") and "install git" in line_of(done.stdout, "git")
    assert "internal error" not in done.stderr


def test_a_config_that_does_not_load_and_a_missing_holdout_fail(make_repo, capsys) -> None:
    repo = make_repo({**HEALTHY, "harness.yaml": "gates: {ful_suite: false}\n"})
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED
    config = line_of(text, "harness.yaml")
    assert config.startswith("FAIL ") and "gates.ful_suite" in config and "did you mean" in config
    assert line_of(text, "git").startswith("ok ")  # the checks that need no config still ran
    other = make_repo({**HEALTHY, "harness.yaml": "holdout: {dir: ../no-such-holdout}\n"})
    code, text = doctor(other, capsys)
    assert code == ExitCode.REFUSED
    assert line_of(text, "holdout").startswith("FAIL ") and "no-such-holdout" in line_of(text, "holdout")
    (other.parent / "no-such-holdout").mkdir()
    code, text = doctor(other, capsys)
    assert code == ExitCode.OK and line_of(text, "holdout").startswith("ok ")


def test_a_ledger_that_does_not_parse_fails(make_repo, capsys) -> None:
    repo = make_repo({**HEALTHY, "docs/fix_plan.md": "# Fix Plan\n\n## [A-1] one\n- Status: pending\n\n"
                                                     "## [A-1] again\n- Status: pending\n"})
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED
    assert line_of(text, "ledger").startswith("FAIL ") and "A-1" in line_of(text, "ledger")


def test_an_installed_plugin_that_changes_outcomes_is_a_warning_with_the_why(make_repo, capsys, tmp_path,
                                                                             monkeypatch) -> None:
    site = tmp_path / "site"
    info = site / "pytest_randomly-3.15.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pytest-randomly\nVersion: 3.15.0\n")
    (info / "entry_points.txt").write_text("[pytest11]\nrandomly = pytest_randomly\n")
    monkeypatch.syspath_prepend(str(site))
    repo = make_repo(HEALTHY)
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK, text  # a warning, not a failure
    line = line_of(text, "pytest-randomly")
    assert line.startswith("warn ") and "3.15.0" in line and "order" in line and "-p no:randomly" in line
    # With plugin autoload off (pytest.env), pytest loads it only when asked: no warning.
    off = make_repo({**HEALTHY, "harness.yaml": "pytest: {env: {PYTEST_DISABLE_PLUGIN_AUTOLOAD: '1'}}\n"})
    code, text = doctor(off, capsys)
    assert line_of(text, "pytest-randomly").startswith("info ")


def test_json_gives_every_check_with_status_found_and_fix(make_repo, capsys, own_path) -> None:
    repo = make_repo({**HEALTHY, "harness.yaml": "agent: {command: [no-such-agent-doctor]}\n"})
    code, text = doctor(repo, capsys, "--json")
    assert code == ExitCode.REFUSED
    data = json.loads(text)
    assert data["repo"] == str(repo.resolve()) and data["ok"] is False and data["failures"] == 1
    assert set(data) == {"repo", "ok", "failures", "warnings", "checks"}
    names = [c["name"] for c in data["checks"]]
    assert {"git", "pytest", "pytest-xdist", "agent", "sandbox", "harness.yaml", "ledger", "chromium"} <= set(names)
    for check in data["checks"]:
        assert set(check) == {"name", "status", "found", "fix"} and check["status"] in ("ok", "info", "warn", "fail")
    agent = next(c for c in data["checks"] if c["name"] == "agent")
    assert agent["status"] == "fail" and "no-such-agent-doctor" in agent["found"] and agent["fix"]


def test_outside_a_repository_the_machine_checks_still_run(tmp_path: Path, capsys) -> None:
    code, text = doctor(tmp_path, capsys)
    assert code == ExitCode.REFUSED
    assert line_of(text, "repository").startswith("FAIL ") and "git init" in line_of(text, "repository")
    assert line_of(text, "git").startswith("ok ") and line_of(text, "pytest").startswith("ok ")


def test_an_explicit_command_beside_a_preset_is_what_doctor_reports(make_repo, capsys) -> None:
    repo = make_repo({**HEALTHY, "harness.yaml": 'agent: {preset: aider, command: ["{python}", "-c", "pass"]}\n'})
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK, text
    agent = line_of(text, "agent")
    assert agent.startswith("ok ") and "agent.command, which wins over preset aider" in agent
    assert "prompt on stdin" in agent and "timeout 1800 s" in agent  # the preset's timeout still applies


def test_the_sandbox_line_says_what_agent_sandbox_comes_to_here(make_repo, tmp_path, capsys, monkeypatch) -> None:
    repo = make_repo(HEALTHY)
    fine = program(tmp_path / "bin", "bwrap-fine", '[ "$1" = --version ] && echo "bubblewrap 9.9.0"\nexit 0\n')
    monkeypatch.setenv("HARNESS_BWRAP", str(fine))
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK
    assert line_of(text, "sandbox") == f"ok    sandbox       bwrap 9.9.0 ({fine}, from HARNESS_BWRAP), network on"
    broken = program(tmp_path / "bin", "bwrap-broken", 'echo "bwrap: No permissions to create a new namespace" >&2\n'
                     "exit 1\n")
    monkeypatch.setenv("HARNESS_BWRAP", str(broken))
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK  # auto runs the agent without a sandbox: a warning
    sandbox = line_of(text, "sandbox")
    assert sandbox.startswith("warn ") and "cannot make a sandbox here (bwrap: No permissions" in sandbox
    assert "the agent runs unsandboxed" in sandbox and "apt install bubblewrap" in text
    (repo / "harness.yaml").write_text("agent: {sandbox: bwrap}\n")
    code, text = doctor(repo, capsys)
    assert code == ExitCode.REFUSED and line_of(text, "sandbox").startswith("FAIL ")
    (repo / "harness.yaml").write_text("agent: {sandbox: off}\n")
    code, text = doctor(repo, capsys)
    assert code == ExitCode.OK and line_of(text, "sandbox").startswith("info ") and "`agent.sandbox: off`" in text


