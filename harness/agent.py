"""The agent: its run as an external command (its prompt is rendered by harness.prompt).

The agent is any command (`agent.command` in harness.yaml). It gets the prompt on stdin, or in a file when
an argv element holds `{prompt_file}`. Its output (stdout and stderr merged) is streamed line by line to
the console and to a log. It runs in its own process group, so a timeout ends its children too. Nothing
the agent says is evidence: the harness proves RED and GREEN itself afterwards.
"""
from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.atomic import atomic_write_text
from harness.config import PYTHON_PLACEHOLDER, AgentConfig
from harness.proc import kill_process_group
from harness.prompt import AgentError

PROMPT_FILE_PLACEHOLDER = "{prompt_file}"
KILL_GRACE_S = 5.0
# How long to wait for the output pipe to close once the agent's group is gone. Only a process that left
# the group (setsid) can hold it open longer, and the harness must not hang on it.
DRAIN_TIMEOUT_S = 5.0

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


def agent_argv(config: AgentConfig, prompt_file: Path) -> tuple[list[str], bool]:
    """(argv to start, whether the prompt goes by file). `{python}` is this interpreter; with `shell: true`
    `{prompt_file}` becomes "$HARNESS_PROMPT_FILE", so no path is ever pasted into a shell script."""
    if not config.command:
        raise AgentError("no agent is configured: set `agent.command` in harness.yaml to an argv list, "
                         "e.g. [claude, -p, --dangerously-skip-permissions] or [codex, exec, -]")
    if config.shell:
        if len(config.command) != 1:
            raise AgentError("with `agent.shell: true`, `agent.command` must be one string for /bin/sh -c, "
                             f"got {list(config.command)!r}")
        script = config.command[0]
        return ["/bin/sh", "-c", script.replace(PROMPT_FILE_PLACEHOLDER, '"$HARNESS_PROMPT_FILE"')], (
            PROMPT_FILE_PLACEHOLDER in script)
    by_file = any(PROMPT_FILE_PLACEHOLDER in part for part in config.command)
    argv = [part.replace(PROMPT_FILE_PLACEHOLDER, str(prompt_file)).replace(PYTHON_PLACEHOLDER,
                                                                            sys.executable)
            for part in config.command]
    return argv, by_file


def _pump(stream: IO[bytes], log: IO[bytes], lock: threading.Lock, echo: bool) -> None:
    try:
        for raw in iter(stream.readline, b""):
            with lock:
                if log.closed:
                    return
                log.write(raw)
                log.flush()
            if echo:
                try:
                    sys.stdout.write(raw.decode("utf-8", errors="replace"))
                    sys.stdout.flush()
                except (OSError, ValueError):
                    # A console that cannot take the text must not stop the draining: a full pipe
                    # would block the agent. The log still gets everything.
                    echo = False
    except (OSError, ValueError):
        pass  # the pipe or the log was closed under us: the run is over either way
    finally:
        stream.close()


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
    except OSError:
        pass  # the agent exited (or closed stdin) without reading all of the prompt: its choice
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def _note(log: IO[bytes], lock: threading.Lock, text: str, echo: bool) -> None:
    line = f"[harness] {text}\n"
    with lock:
        log.write(line.encode("utf-8"))
        log.flush()
    if echo:
        sys.stdout.write(line)
        sys.stdout.flush()


def run_agent(
    *,
    config: AgentConfig,
    prompt: str,
    cwd: Path,
    log_path: Path,
    env_extra: Mapping[str, str],
    on_start: Callable[[int], None] | None = None,
    echo: bool = True,
    prompt_path: Path | None = None,
    kill_grace_s: float = KILL_GRACE_S,
) -> AgentRun:
    """Run the agent in `cwd` in its own process group and wait for it (at most `config.timeout_s`).

    The prompt is written to `prompt_path` (default `<log stem>.prompt.md` beside the log; its path is in
    $HARNESS_PROMPT_FILE) and goes to stdin unless the command takes it by `{prompt_file}`. `on_start(pgid)`
    is called right after the start. On timeout, or when this function is interrupted, the whole group
    is terminated (TERM, `kill_grace_s`, KILL); processes the agent leaves behind in its group are ended too.
    """
    cwd = Path(cwd)
    if not cwd.is_dir():
        raise AgentError(f"cannot start the agent in {cwd}: no such directory")
    log_path = Path(log_path)
    prompt_file = Path(prompt_path) if prompt_path is not None else log_path.with_name(
        f"{log_path.stem}.prompt.md")
    argv, by_file = agent_argv(config, prompt_file)
    atomic_write_text(prompt_file, prompt)
    env = {**os.environ, **{str(k): str(v) for k, v in env_extra.items()},
           "HARNESS_PROMPT_FILE": str(prompt_file)}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    started = time.monotonic()
    with open(log_path, "wb") as log:
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL if by_file else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise AgentError(f"the agent command {argv[0]!r} was not found; check `agent.command` in "
                             f"harness.yaml ({list(config.command or ())!r}): install the program, put it on "
                             "PATH or give its full path") from None
        except OSError as exc:
            raise AgentError(f"the agent command {argv[0]!r} could not be started ({exc.strerror or exc}); "
                             "check `agent.command` in harness.yaml") from None
        pgid = proc.pid  # start_new_session: the agent leads a new group whose id is its pid
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, log, lock, echo), daemon=True)
        reader.start()
        if proc.stdin is not None:
            # A thread, so that an agent that does not read its stdin cannot block the timeout.
            threading.Thread(target=_feed, args=(proc.stdin, prompt.encode("utf-8")), daemon=True).start()
        timed_out = False
        notes: list[str] = []
        try:
            if on_start is not None:
                on_start(pgid)
            try:
                proc.wait(timeout=config.timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                how = kill_process_group(pgid, kill_grace_s)
                proc.wait()
                notes.append(f"the agent timed out after {config.timeout_s} s; its process group {pgid} "
                             f"was {how}")
        except BaseException:
            kill_process_group(pgid, kill_grace_s)
            proc.wait()
            raise
        finally:
            # Left running, such processes would change the tree while the harness proves it.
            if not timed_out and kill_process_group(pgid, kill_grace_s) != "gone":
                notes.append(f"processes left in the agent's group {pgid} were ended")
            reader.join(DRAIN_TIMEOUT_S)
            if reader.is_alive():
                notes.append("output is still held open by a process outside the agent's group; "
                             "stopped reading it")
            for note in notes:  # after the drain, so they follow the agent's last output
                _note(log, lock, note, echo)
    return AgentRun(tuple(argv), proc.returncode, timed_out, round(time.monotonic() - started, 3),
                    log_path, pgid)
