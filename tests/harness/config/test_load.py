from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.config import (
    DEFAULT_CONFIG_YAML,
    AgentConfig,
    Config,
    ExtraSelector,
    LintSettings,
    PushConfig,
    load_config,
    parse_config,
)
from harness.errors import ConfigError


def test_default_yaml_parses_to_the_defaults() -> None:
    assert parse_config(DEFAULT_CONFIG_YAML, "default") == Config()
    # Every top-level key is spelled out in the default file, so `harness init` documents them all.
    for key in ("ledger", "evidence_root", "test_globs", "pytest", "known_failures", "gates", "max_attempts",
                "caps", "ignore", "commit", "agent", "push", "selectors"):
        assert f"\n{key}:" in "\n" + DEFAULT_CONFIG_YAML


def test_missing_file_gives_defaults_and_empty_file_too(tmp_path: Path) -> None:
    assert load_config(tmp_path) == Config()
    (tmp_path / "harness.yaml").write_text("# nothing but a comment\n")
    assert load_config(tmp_path) == Config()


def test_full_config_is_read_into_dataclasses(tmp_path: Path) -> None:
    (tmp_path / "harness.yaml").write_text(
        """
ledger: plan/items.md
evidence_root: ev
test_globs: ["spec/**"]
pytest: {command: [pytest], args: ["-x"], env: {PYTHONPATH: src}, timeout_s: 60}
known_failures: null
gates: {full_suite: false, lint: {command: [ruff, check, .]}}
max_attempts: 5
caps: {changed_file_bytes: 10}
ignore: ["*.log"]
commit: {name: bot, email: bot@example.invalid}
agent: {command: [claude, -p], timeout_s: 10, phases: [red, green], prompt_template: prompts/p.md.j2}
push: {remote: origin, branch: main}
selectors:
  extra: [{selector: "tests/test_a.py::test_b", groups: [smoke]}]
  history: h.jsonl
"""
    )
    c = load_config(tmp_path)
    assert c.ledger == "plan/items.md" and c.evidence_root == "ev" and c.test_globs == ("spec/**",)
    assert c.pytest.command == ("pytest",) and c.pytest.args == ("-x",) and dict(c.pytest.env) == {
        "PYTHONPATH": "src"
    }
    assert c.pytest.timeout_s == 60 and c.known_failures is None
    assert c.gates.full_suite is False and c.gates.collect is True
    assert c.gates.lint == LintSettings(command=("ruff", "check", "."))
    assert c.max_attempts == 5 and c.caps.changed_file_bytes == 10 and c.caps.evidence_file_bytes == 1_000_000
    assert c.ignore == ("*.log",) and c.commit.identity == ("bot", "bot@example.invalid")
    assert c.agent == AgentConfig(
        command=("claude", "-p"), timeout_s=10, phases=("red", "green"), prompt_template="prompts/p.md.j2"
    )
    assert c.push == PushConfig(remote="origin", branch="main")
    assert c.selectors.extra == (ExtraSelector(selector="tests/test_a.py::test_b", groups=("smoke",)),)
    assert c.selectors.history == "h.jsonl"
    assert c.source == str(tmp_path / "harness.yaml")


def test_the_agents_sandbox_settings_take_yamls_bare_on_and_off() -> None:
    agent = parse_config("agent:\n  sandbox: off\n  network: off\n  writable: [~/.codex, state]\n").agent
    assert (agent.sandbox, agent.network, agent.writable) == ("off", False, ("~/.codex", "state"))
    agent = parse_config("agent: {sandbox: bwrap, network: 'on'}").agent
    assert (agent.sandbox, agent.network, agent.writable) == ("bwrap", True, ())
    assert parse_config("agent: {command: [x]}").agent.sandbox == "auto"


def test_python_placeholder_is_the_harness_interpreter() -> None:
    c = parse_config("pytest: {args: [-q]}")
    assert c.pytest.argv() == [sys.executable, "-m", "pytest", "-q"]
    assert c.pytest.argv("/opt/py") == ["/opt/py", "-m", "pytest", "-q"]


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("gates: {ful_suite: false}", ["unknown key `gates.ful_suite`", "did you mean `gates.full_suite`"]),
        ("ledgr: x.md", ["unknown key `ledgr`", "did you mean `ledger`"]),
        ("agent: {command: [a], zzz: 1}", ["unknown key `agent.zzz`", "Allowed keys under `agent`"]),
        ("selectors: {extra: [{selector: a, grops: [x]}]}",
         ["unknown key `selectors.extra[0].grops`", "did you mean `selectors.extra[0].groups`"]),
    ],
)
def test_unknown_keys_are_rejected_with_path_file_and_suggestion(text: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "/repo/harness.yaml")
    message = str(info.value)
    assert message.startswith("/repo/harness.yaml: ")
    for needle in needles:
        assert needle in message


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("max_attempts: three", ["`max_attempts`", "an integer >= 1", "'three'"]),
        ("max_attempts: 0", ["`max_attempts`", ">= 1", "0"]),
        ("max_attempts: true", ["`max_attempts`", "an integer", "True"]),
        ("gates: {collect: 1}", ["`gates.collect`", "true or false", "1"]),
        ("test_globs: tests/**", ["`test_globs`", "a list of strings", "'tests/**'"]),
        ("ignore: [1]", ["`ignore[0]`", "a string", "1"]),
        ("pytest: {command: []}", ["`pytest.command`", "non-empty argv list"]),
        ("pytest: {command: pytest -q}", ["`pytest.command`", "a list of strings", "'pytest -q'"]),
        ("pytest: {env: {DEBUG: 1}}", ["`pytest.env.DEBUG`", "quote numbers"]),
        ("gates: [collect]", ["`gates`", "a mapping"]),
        ("gates: {lint: {}}", ["`gates.lint` needs a `command`"]),
        ("agent: {phases: [blue]}", ["`agent.phases`", "red", "'blue'"]),
        ("agent: {sandbox: firejail}", ["`agent.sandbox`", "auto, bwrap or off", "'firejail'"]),
        ("agent: {sandbox: on}", ["`agent.sandbox`", "auto, bwrap or off", "True"]),
        ("agent: {network: maybe}", ["`agent.network`", "on or off", "'maybe'"]),
        ("agent: {writable: ~/.codex}", ["`agent.writable`", "a list of strings"]),
        ("agent: {command: [a, b], shell: true}", ["`agent.command`", "one command string"]),
        ("push: {remote: origin}", ["`push` needs both", "branch"]),
        ("pytest: {warm_start: sometimes}", ["`pytest.warm_start`", "'sometimes'"]),
        ("- just\n- a list\n", ["<top level>", "a mapping"]),
    ],
)
def test_wrong_types_name_key_expected_and_value(text: str, needles: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "harness.yaml")
    for needle in needles:
        assert needle in str(info.value)


@pytest.mark.parametrize("key", ["ledger", "evidence_root", "known_failures", "selectors.history"])
@pytest.mark.parametrize("bad", ["/etc/passwd", "../outside.md", "docs/../../x"])
def test_paths_must_stay_inside_the_repository(key: str, bad: str) -> None:
    if "." in key:
        section, sub = key.split(".")
        text = f"{section}: {{{sub}: '{bad}'}}"
    else:
        text = f"{key}: '{bad}'"
    with pytest.raises(ConfigError, match="relative to the repository root") as info:
        parse_config(text)
    assert f"`{key}`" in str(info.value)


def test_shell_agent_takes_one_string() -> None:
    c = parse_config("agent: {command: 'my-agent --fast | tee log', shell: true}")
    assert c.agent.command == ("my-agent --fast | tee log",) and c.agent.shell is True


def test_yaml_syntax_error_and_duplicate_key_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("gates: {collect: [", "h.yaml")
    with pytest.raises(ConfigError, match="duplicate key 'ledger'"):
        parse_config("ledger: a.md\nledger: b.md\n", "h.yaml")
    (tmp_path / "harness.yaml").write_bytes(b"ledger: \xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(tmp_path)


def test_config_is_immutable() -> None:
    c = parse_config("pytest: {env: {A: b}}")
    with pytest.raises(AttributeError):
        c.max_attempts = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        c.pytest.env["A"] = "c"  # type: ignore[index]
