"""Agent presets: each preset's exact argv, how its prompt reaches a real program of the preset's name, its
timeout and environment, an explicit `agent.command` winning, and an unknown preset refused at load."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from harness.agent.presets import PRESETS
from harness.agent.run import agent_argv, run_agent
from harness.config import parse_config
from harness.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]
PROMPT = "Fix [CALC-001]\nsecond line, ünïcode\n"

EXPECTED_ARGV = {
    "claude-code": ["claude", "-p", "--dangerously-skip-permissions"],
    "codex": ["codex", "exec", "--sandbox", "workspace-write", "--color", "never", "-"],
    "aider": ["aider", "--message-file", "{prompt_file}", "--yes-always", "--no-auto-commits",
              "--no-dirty-commits", "--no-gitignore", "--no-check-update", "--no-show-release-notes",
              "--no-analytics", "--no-pretty"],
    "gemini-cli": ["gemini", "--approval-mode", "yolo"],
}
EXPECTED_ENV = {
    "claude-code": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
    "codex": {},
    "aider": {},
    "gemini-cli": {},
}
BY_FILE = {"aider"}


def preset_config(name: str, extra: str = ""):
    return parse_config(f"agent:\n  preset: {name}\n{extra}", "harness.yaml").agent


def fake_program(bin_dir: Path, name: str, record: Path) -> Path:
    """A real executable named like the preset's program: it records its arguments, its stdin, the file
    its `--message-file` names and its environment, then exits 0."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import json, os, sys
        args = sys.argv[1:]
        message_file = args[args.index("--message-file") + 1] if "--message-file" in args else None
        json.dump({{"args": args, "stdin": sys.stdin.read(),
                    "message_file": open(message_file, encoding="utf-8").read() if message_file else None,
                    "env": dict(os.environ)}}, open({str(record)!r}, "w", encoding="utf-8"))
        """))
    path.chmod(0o755)
    return path


def test_the_table_holds_the_four_documented_presets() -> None:
    assert sorted(PRESETS) == sorted(EXPECTED_ARGV)
    for name, preset in PRESETS.items():
        assert preset.name == name and preset.program == EXPECTED_ARGV[name][0]
        assert preset.docs and preset.install and preset.flags  # where each flag's meaning was read


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGV))
def test_each_preset_resolves_to_its_documented_argv(name: str, tmp_path: Path) -> None:
    agent = preset_config(name)
    prompt_file = tmp_path / "agent.prompt.md"
    argv, by_file = agent_argv(agent, prompt_file)
    assert argv == [str(prompt_file) if part == "{prompt_file}" else part for part in EXPECTED_ARGV[name]]
    assert by_file is (name in BY_FILE)
    assert agent.preset == name and agent.command_from_preset
    assert agent.timeout_s == PRESETS[name].timeout_s and dict(agent.env) == EXPECTED_ENV[name]


@pytest.mark.parametrize("name", sorted(EXPECTED_ARGV))
def test_the_prompt_reaches_a_real_program_of_the_presets_name(name: str, tmp_path: Path, monkeypatch) -> None:
    record = tmp_path / "record.json"
    fake_program(tmp_path / "bin", EXPECTED_ARGV[name][0], record)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    work = tmp_path / "work"
    work.mkdir()
    run = run_agent(config=preset_config(name), prompt=PROMPT, cwd=work, log_path=tmp_path / "out" / "agent.log",
                    env_extra={"HARNESS_ITEM": "CALC-001"}, echo=False)
    assert run.ok, run.log_path.read_text()
    seen = json.loads(record.read_text(encoding="utf-8"))
    prompt_file = str(tmp_path / "out" / "agent.prompt.md")
    assert seen["args"] == [prompt_file if part == "{prompt_file}" else part for part in EXPECTED_ARGV[name][1:]]
    if name in BY_FILE:
        assert seen["message_file"] == PROMPT and seen["stdin"] == ""
    else:
        assert seen["stdin"] == PROMPT
    for key, value in EXPECTED_ENV[name].items():
        assert seen["env"][key] == value
    assert seen["env"]["HARNESS_ITEM"] == "CALC-001"


def test_an_explicit_command_wins_over_the_preset_and_each_given_key_wins_over_its_value() -> None:
    agent = preset_config("claude-code", "  command: [my-claude, -p]\n  timeout_s: 60\n"
                                         "  env: {CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '0', EXTRA: x}\n")
    assert agent.command == ("my-claude", "-p") and not agent.command_from_preset and agent.preset == "claude-code"
    assert agent.timeout_s == 60
    assert dict(agent.env) == {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0", "EXTRA": "x"}
    plain = parse_config("agent: {command: [my-agent]}", "harness.yaml").agent
    assert plain.preset is None and not plain.command_from_preset and dict(plain.env) == {}


def test_agent_env_reaches_the_agent_and_the_harness_variables_win(tmp_path: Path) -> None:
    agent = parse_config(f"agent: {{command: [{sys.executable!r}, -c, 'import os; print(os.environ[\"A\"], "
                         f"os.environ[\"HARNESS_ITEM\"])'], env: {{A: from-config, HARNESS_ITEM: nope}}}}",
                         "harness.yaml").agent
    run = run_agent(config=agent, prompt="", cwd=tmp_path, log_path=tmp_path / "a.log",
                    env_extra={"HARNESS_ITEM": "CALC-001"}, echo=False)
    assert run.ok and "from-config CALC-001" in run.log_path.read_text()


@pytest.mark.parametrize(("yaml", "expected"), [
    ("agent: {preset: claud-code}", ["`agent.preset`", "'claud-code'", "claude-code, codex, aider, gemini-cli",
                                     "did you mean `claude-code`"]),
    ("agent: {preset: [codex]}", ["`agent.preset`", "a non-empty string"]),
    ("agent: {preset: codex, shell: true}", ["`agent.shell`", "`agent.command`"]),
    ("agent: {env: {A: 1}}", ["`agent.env.A`", "a string"]),
])
def test_a_bad_preset_is_refused_at_load_naming_the_key_and_the_presets(yaml: str, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(yaml, "harness.yaml")
    for text in expected:
        assert text in str(info.value)


def test_the_readmes_table_shows_each_presets_argv_prompt_timeout_and_environment() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "### Agent presets" in readme
    for preset in PRESETS.values():
        row = next(line for line in readme.splitlines() if line.startswith(f"| `{preset.name}` |"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        via = "file" if "{prompt_file}" in preset.argv else "stdin"
        env = " ".join(f"`{k}={v}`" for k, v in preset.env.items())
        assert cells == [f"`{preset.name}`", f"`{' '.join(preset.argv)}`", via, f"{preset.timeout_s} s", env]


def test_an_iteration_under_a_preset_records_the_preset_and_argv_in_its_evidence(make_repo, tmp_path: Path,
                                                                                   monkeypatch) -> None:
    from harness.main import main
    from tests.harness.project import HARNESS_YAML, MUL_IMPL, MUL_TEST, make_project

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    codex = bin_dir / "codex"
    codex.write_text(f"#!{sys.executable}\nimport sys\nfrom pathlib import Path\nassert sys.stdin.read()\n"
                     f"Path('tests/test_mul.py').write_text({MUL_TEST!r})\nPath('pkg/calc.py').write_text({MUL_IMPL!r})\n")
    codex.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{Path(shutil.which('git')).parent}:/usr/bin:/bin")
    repo = make_project(make_repo, extra={"harness.yaml": HARNESS_YAML + "agent: {preset: codex, timeout_s: 120}\n"})
    assert main(["run", "-C", str(repo), "CALC-001"]) == 0
    record = json.loads(next((repo / "plans/active").rglob("attempt.json")).read_text())
    assert record["outcome"] == "GREEN"
    assert [(t["preset"], t["argv"]) for t in record["agent"]] == [("codex", EXPECTED_ARGV["codex"])]
    stage = next(s for s in record["stages"] if s["name"] == "agent")
    assert stage["preset"] == "codex"
