"""The planner's settings (`planner:` in harness.yaml), read by harness.config.load.

    planner     {command, shell, timeout_s, env, prompt_template, require_acceptance}, or absent (null): the
                command `harness plan` runs to propose ledger items (README, "The planner")

The planner is an operator setting, as `agent` is (harness.config.judging): it proposes items, it proves
nothing, so the working tree's harness.yaml names it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from harness.config.reader import Reader
from harness.errors import ConfigError

PLANNER_KEYS = ("command", "shell", "timeout_s", "env", "prompt_template", "require_acceptance")


@dataclass(frozen=True)
class PlannerConfig:
    """The external planner. With `shell: true`, `command` is a single string handed to /bin/sh -c.
    `require_acceptance`: every item a plan adds or edits must name an `- Acceptance:` selector."""

    command: tuple[str, ...]
    shell: bool = False
    timeout_s: int = 1800
    prompt_template: str | None = None
    require_acceptance: bool = False
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def parse_planner(r: Reader, value: Any) -> PlannerConfig:
    """`planner:` -> PlannerConfig; ConfigError naming the key otherwise."""
    m = r.section(value, "planner", PLANNER_KEYS)
    if "command" not in m or m["command"] is None:
        raise ConfigError(f"{r.source}: `planner` needs a `command`: an argv list such as "
                          "[claude, -p, --dangerously-skip-permissions] (or remove `planner` / set it to null)")
    d = PlannerConfig(command=("",))
    shell = r.boolean(m.get("shell", d.shell), "planner.shell")
    command = m["command"]
    if shell and isinstance(command, str):
        argv = (r.nonempty_str(command, "planner.command"),)
    else:
        argv = r.argv(command, "planner.command")
        if shell and len(argv) != 1:
            raise ConfigError(f"{r.source}: `planner.command`: with `planner.shell: true` give one command string "
                              f"for /bin/sh -c, got {len(argv)} items {list(argv)!r}")
    return PlannerConfig(
        command=argv,
        shell=shell,
        timeout_s=r.integer(m.get("timeout_s", d.timeout_s), "planner.timeout_s"),
        env=MappingProxyType(r.str_map(m.get("env", {}), "planner.env")),
        prompt_template=r.optional(m.get("prompt_template"), "planner.prompt_template", r.rel_path),
        require_acceptance=r.boolean(m.get("require_acceptance", d.require_acceptance),
                                     "planner.require_acceptance"),
    )
