from __future__ import annotations

import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.agent.prompt import AgentError
from harness.agent.run import AgentRun, run_agent
from harness.config import AgentConfig
from harness.proc import process_alive

ENV = {"HARNESS_ITEM": "DATA-1", "HARNESS_ATTEMPT": "2", "HARNESS_EVIDENCE_DIR": "plans/active/x"}


def script(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return path


def agent(tmp_path: Path, *argv: str, timeout_s: int = 30, **kwargs: object) -> AgentConfig:
    return AgentConfig(command=tuple(argv), timeout_s=timeout_s, **kwargs)


def run(tmp_path: Path, config: AgentConfig, prompt: str = "the prompt", **kwargs: object) -> AgentRun:
    kwargs.setdefault("echo", False)
    return run_agent(config=config, prompt=prompt, cwd=tmp_path, log_path=tmp_path / "out" / "agent.log",
                     env_extra=ENV, **kwargs)


def wait_for(predicate, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


# --- running the agent ---------------------------------------------------------------------------------


def test_prompt_reaches_the_agent_on_stdin_and_env_vars_arrive(tmp_path: Path) -> None:
    echo = script(tmp_path, "agent.py", """
        import os, sys
        data = sys.stdin.read()
        print("got:" + data)
        for key in ("HARNESS_ITEM", "HARNESS_ATTEMPT", "HARNESS_EVIDENCE_DIR"):
            print(key + "=" + os.environ[key])
        print("pgrp=" + str(os.getpgrp()))
        print("cwd=" + os.getcwd())
        """)
    started: list[int] = []
    prompt = "Fix [DATA-1]\nsecond line ünïcode\n"
    result = run(tmp_path, agent(tmp_path, sys.executable, str(echo)), prompt, on_start=started.append)
    log = result.log_path.read_text(encoding="utf-8")
    assert result.exit_code == 0 and result.ok and not result.timed_out
    assert f"got:{prompt}" in log
    assert "HARNESS_ITEM=DATA-1" in log and "HARNESS_ATTEMPT=2" in log
    assert "HARNESS_EVIDENCE_DIR=plans/active/x" in log
    # Its own process group, reported to on_start before it finished.
    assert started == [result.pgid] and f"pgrp={result.pgid}" in log and result.pgid != os.getpgrp()
    assert f"cwd={tmp_path}" in log
    assert result.argv == (sys.executable, str(echo))
    # The prompt is also kept beside the log.
    assert (tmp_path / "out" / "agent.prompt.md").read_text(encoding="utf-8") == prompt


def test_prompt_file_placeholder_gets_a_file_and_stdin_gets_nothing(tmp_path: Path) -> None:
    reader = script(tmp_path, "agent.py", """
        import os, sys
        print("file:" + open(sys.argv[2], encoding="utf-8").read())
        print("stdin:" + repr(sys.stdin.read()))
        print("same:" + str(sys.argv[2] == os.environ["HARNESS_PROMPT_FILE"]))
        print("flag:" + sys.argv[1])
        """)
    config = agent(tmp_path, "{python}", str(reader), "--prompt={prompt_file}", "{prompt_file}")
    result = run(tmp_path, config, "PROMPT BODY")
    log = result.log_path.read_text()
    assert result.exit_code == 0, log
    prompt_file = tmp_path / "out" / "agent.prompt.md"
    assert "file:PROMPT BODY" in log and "stdin:''" in log and "same:True" in log
    assert f"flag:--prompt={prompt_file}" in log
    assert result.argv[0] == sys.executable and result.argv[-1] == str(prompt_file)


def test_output_is_streamed_to_the_log_while_the_agent_runs(tmp_path: Path) -> None:
    marker = tmp_path / "go-on"
    slow = script(tmp_path, "agent.py", f"""
        import sys, time, pathlib
        print("first line", flush=True)
        print("to stderr", file=sys.stderr, flush=True)
        deadline = time.time() + 20
        while not pathlib.Path({str(marker)!r}).exists() and time.time() < deadline:
            time.sleep(0.02)
        print("second line", flush=True)
        """)
    results: list[AgentRun] = []
    worker = threading.Thread(target=lambda: results.append(run(tmp_path, agent(tmp_path, sys.executable,
                                                                                 str(slow)))))
    worker.start()
    log = tmp_path / "out" / "agent.log"
    try:
        seen = wait_for(lambda: log.is_file() and "to stderr" in log.read_text())
        still_running = worker.is_alive()
        text_then = log.read_text() if log.is_file() else ""
    finally:
        marker.touch()
        worker.join(20)
    assert seen and still_running, "the first lines must reach the log before the agent ends"
    assert "first line" in text_then and "second line" not in text_then
    assert results and results[0].exit_code == 0
    final = log.read_text()
    assert final.index("first line") < final.index("second line")


def test_echo_prints_the_output_to_the_console(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    config = agent(tmp_path, sys.executable, "-c", "print('hello from the agent')")
    run(tmp_path, config, echo=True)
    assert "hello from the agent" in capfd.readouterr().out


def test_non_zero_exit_is_recorded(tmp_path: Path) -> None:
    config = agent(tmp_path, sys.executable, "-c", "import sys; print('giving up'); sys.exit(3)")
    result = run(tmp_path, config)
    assert result.exit_code == 3 and not result.timed_out and not result.ok
    assert "giving up" in result.log_path.read_text()


def test_timeout_kills_the_agent_and_its_child(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The child ignores SIGTERM, so only the KILL after the grace period ends it; neither reads stdin,
    # and the prompt is larger than a pipe buffer, so a blocking write would hang the harness.
    stubborn = script(tmp_path, "agent.py", f"""
        import subprocess, sys, time, pathlib
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('child up', flush=True); time.sleep(120)"])
        pathlib.Path({str(pid_file)!r}).write_text(str(child.pid))
        print("agent waiting forever", flush=True)
        time.sleep(120)
        """)
    started = time.monotonic()
    result = run(tmp_path, agent(tmp_path, sys.executable, str(stubborn), timeout_s=1), "x" * 300_000,
                 kill_grace_s=0.5)
    elapsed = time.monotonic() - started
    assert result.timed_out and not result.ok and result.exit_code < 0
    child_pid = int(pid_file.read_text())
    assert wait_for(lambda: not process_alive(child_pid), 5), "the agent's child must be killed too"
    log = result.log_path.read_text()
    assert "agent waiting forever" in log and "child up" in log
    assert "timed out after 1 s" in log and "killed" in log
    assert elapsed < 10


def test_processes_left_behind_after_a_normal_exit_are_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "bg.pid"
    leaver = script(tmp_path, "agent.py", f"""
        import subprocess, sys, pathlib
        bg = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pathlib.Path({str(pid_file)!r}).write_text(str(bg.pid))
        """)
    result = run(tmp_path, agent(tmp_path, sys.executable, str(leaver)), kill_grace_s=0.5)
    assert result.exit_code == 0 and not result.timed_out
    assert wait_for(lambda: not process_alive(int(pid_file.read_text())), 5)
    assert "processes left in the agent's group" in result.log_path.read_text()


def test_shell_only_when_configured(tmp_path: Path) -> None:
    line = 'echo "item=$HARNESS_ITEM" && cat "{prompt_file}" && echo done'
    result = run(tmp_path, AgentConfig(command=(line,), shell=True, timeout_s=30), "via file")
    log = result.log_path.read_text()
    assert result.exit_code == 0, log
    assert "item=DATA-1" in log and "via file" in log and "done" in log
    # Without `shell: true` the same string is one program name, never handed to a shell.
    with pytest.raises(AgentError, match="was not found"):
        run(tmp_path, AgentConfig(command=(line,), shell=False, timeout_s=30))


def test_missing_command_is_an_agent_error_naming_the_config_key(tmp_path: Path) -> None:
    with pytest.raises(AgentError) as info:
        run(tmp_path, agent(tmp_path, "no-such-agent-xyz", "-p"))
    message = str(info.value)
    assert "no-such-agent-xyz" in message and "`agent.command`" in message and "harness.yaml" in message
    with pytest.raises(AgentError, match="no agent is configured"):
        run(tmp_path, AgentConfig())
    with pytest.raises(AgentError, match="no such directory"):
        run_agent(config=agent(tmp_path, "true"), prompt="", cwd=tmp_path / "absent",
                  log_path=tmp_path / "a.log", env_extra={}, echo=False)
