"""`planner:` in harness.yaml: a frozen record on Config.planner (None when absent), errors that name the key."""
from __future__ import annotations

import dataclasses

import pytest

from harness.config import Config, PlannerConfig, parse_config
from harness.errors import ConfigError


def test_absent_is_none_and_given_is_read() -> None:
    assert parse_config("agent: {timeout_s: 5}").planner is None and Config().planner is None
    assert parse_config("planner: null").planner is None
    planner = parse_config("planner: {command: [claude, -p], timeout_s: 60, prompt_template: prompts/plan.md.j2,"
                           " require_acceptance: true}").planner
    assert planner == PlannerConfig(command=("claude", "-p"), timeout_s=60, prompt_template="prompts/plan.md.j2",
                                    require_acceptance=True)
    assert parse_config("planner: {command: 'plan.sh \"{prompt_file}\"', shell: true}").planner.command == (
        'plan.sh "{prompt_file}"',)
    with pytest.raises(dataclasses.FrozenInstanceError):
        planner.timeout_s = 1  # type: ignore[misc]


@pytest.mark.parametrize(("text", "needle"), [
    ("planner: {}", "`planner` needs a `command`"),
    ("planner: {command: [x], require_acceptence: true}", ("unknown key `planner.require_acceptence`; did you mean "
     "`planner.require_acceptance`?")),
    ("planner: {command: x}", "`planner.command`: expected a list of strings"),
    ("planner: {command: [a, b], shell: true}", "`planner.command`: with `planner.shell: true` give one command"),
    ("planner: {command: [x], timeout_s: 0}", "`planner.timeout_s`: expected an integer >= 1"),
    ("planner: {command: [x], require_acceptance: 'yes'}", "`planner.require_acceptance`: expected true or false"),
    ("planner: {command: [x], prompt_template: /etc/plan.j2}", ("`planner.prompt_template`: '/etc/plan.j2' must be "
     "a path relative to the repository root")),
    ("planer: {command: [x]}", "unknown key `planer`; did you mean `planner`?"),
])
def test_bad_values_name_the_key(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert needle in str(info.value)
