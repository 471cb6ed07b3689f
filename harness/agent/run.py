"""The agent: its run as an external command (its prompt is rendered by harness.agent.prompt).

The agent is any command (`agent.command` in harness.yaml, or a preset's argv: harness.agent.presets). It
gets the prompt on stdin, or in a file when an argv element holds `{prompt_file}`, and `agent.env` (a
preset's environment) in its environment. Its output (stdout and stderr merged) is streamed line by line to
the console and to a log. It runs in its own process group, so a timeout ends its children too. Nothing
the agent says is evidence: the harness proves RED and GREEN itself afterwards.

The planner (`planner.command`, harness.agent.planner) is run by the same code: `role` names the setting in
messages, so an error about the planner says `planner.command`.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from harness import proc
from harness.agent.presets import PRESETS
from harness.agent.prompt import AgentError
from harness.agent.sandbox import Sandbox
from harness.atomic import atomic_write_text
from harness.config import PYTHON_PLACEHOLDER, AgentConfig

PROMPT_FILE_PLACEHOLDER = "{prompt_file}"


class CommandSettings(Protocol):
    """What running an external role needs from its settings (AgentConfig, PlannerConfig)."""

    @property
    def command(self) -> tuple[str, ...] | None: ...

    @property
    def shell(self) -> bool: ...

    @property
    def timeout_s(self) -> int: ...

    @property
    def env(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class AgentRun:
    """One finished agent run. `exit_code` is negative (minus the signal) when the agent was killed."""

    argv: tuple[str, ...]
    exit_code: int
    timed_out: bool
    duration_s: float
    log_path: Path
    pgid: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


# --- running -----------------------------------------------------------------------------------------


def agent_argv(config: AgentConfig | CommandSettings, prompt_file: Path, *, role: str = "agent"
               ) -> tuple[list[str], bool]:
    """(argv to start, whether the prompt goes by file). `{python}` is this interpreter; with `shell: true`
    `{prompt_file}` becomes "$HARNESS_PROMPT_FILE", so no path is ever pasted into a shell script."""
    if not config.command:
        raise AgentError(f"no {role} is configured: set `{role}.command` in harness.yaml to an argv list, "
                         "e.g. [claude, -p, --dangerously-skip-permissions] or [codex, exec, -]"
                         + (f", or `agent.preset` to one of {', '.join(PRESETS)}" if role == "agent" else ""))
    if config.shell:
        if len(config.command) != 1:
            raise AgentError(f"with `{role}.shell: true`, `{role}.command` must be one string for /bin/sh -c, "
                             f"got {list(config.command)!r}")
        script = config.command[0]
        return ["/bin/sh", "-c", script.replace(PROMPT_FILE_PLACEHOLDER, '"$HARNESS_PROMPT_FILE"')], (
            PROMPT_FILE_PLACEHOLDER in script)
    by_file = any(PROMPT_FILE_PLACEHOLDER in part for part in config.command)
    argv = [part.replace(PROMPT_FILE_PLACEHOLDER, str(prompt_file)).replace(PYTHON_PLACEHOLDER,
                                                                            sys.executable)
            for part in config.command]
    return argv, by_file


def run_agent(
    *,
    config: AgentConfig | CommandSettings,
    prompt: str,
    cwd: Path,
    log_path: Path,
    env_extra: Mapping[str, str],
    on_start: Callable[[int], None] | None = None,
    echo: bool = True,
    prompt_path: Path | None = None,
    kill_grace_s: float = proc.KILL_GRACE_S,
    role: str = "agent",
    sandbox: Sandbox | None = None,
) -> AgentRun:
    """Run the agent in `cwd` in its own process group and wait for it (at most `config.timeout_s`).

    The prompt is written to `prompt_path` (default `<log stem>.prompt.md` beside the log; its path is in
    $HARNESS_PROMPT_FILE) and goes to stdin unless the command takes it by `{prompt_file}`. The environment
    is this process's with `config.env`, then `env_extra`, laid over it. `on_start(pgid)`
    is called right after the start. On timeout, or when this function is interrupted, the whole group
    is terminated (TERM, `kill_grace_s`, KILL); processes the agent leaves behind in its group are ended too.
    `role` ("agent", "planner") names the harness.yaml section in errors.
    With a `sandbox` (harness.agent.sandbox) the agent runs inside it; `AgentRun.argv` is its own argv.
    """
    cwd = Path(cwd)
    if not cwd.is_dir():
        raise AgentError(f"cannot start the {role} in {cwd}: no such directory")
    log_path = Path(log_path)
    prompt_file = Path(prompt_path) if prompt_path is not None else log_path.with_name(
        f"{log_path.stem}.prompt.md")
    argv, by_file = agent_argv(config, prompt_file, role=role)
    atomic_write_text(prompt_file, prompt)
    env = {**os.environ, **config.env, **{str(k): str(v) for k, v in env_extra.items()},
           "HARNESS_PROMPT_FILE": str(prompt_file)}
    try:
        done = proc.run(sandbox.wrap(argv) if sandbox else argv, cwd=cwd, env=env, timeout_s=config.timeout_s,
                        log_path=log_path, echo=echo, stdin=None if by_file else prompt.encode("utf-8"),
                        on_start=on_start, kill_grace_s=kill_grace_s, label=f"the {role}")
    except proc.StartError as exc:
        if exc.not_found:
            raise AgentError(f"the {role} cannot start: {argv[0]!r} was not found; fix `{role}.command` in "
                             f"harness.yaml ({list(config.command or ())!r}): install the program, put it on "
                             "PATH or give its full path") from None
        raise AgentError(f"the {role} command {argv[0]!r} could not be started ({exc.reason}); "
                         f"check `{role}.command` in harness.yaml") from None
    return AgentRun(tuple(argv), done.returncode, done.timed_out, done.duration_s, log_path, done.pgid)
