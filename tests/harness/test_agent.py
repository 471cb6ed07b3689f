from __future__ import annotations

import json
import os
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from harness.agent import AgentRun, run_agent
from harness.config import AgentConfig
from harness.ledger import Item, parse_ledger
from harness.proc import process_alive
from harness.prompt import AgentError, build_prompt_context, github_slug, markdown_section, render_prompt

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


# --- the prompt ------------------------------------------------------------------------------------


LEDGER = """\
# Fix Plan

## [DATA-1] Bridge accepts the diffraction key
- Status: in_progress
- Initiative: STUDY-7
- Spec: docs/specs/data.md#keys-and-shapes
- RED: tests/test_bridge.py::test_accepts_diffraction
- Regression: tests/test_bridge.py -k memmap
- Exit-Criteria: both keys load

The bridge must accept `diffraction` as well as `diff3d`.
{attempts}"""

SPEC = """\
# Data spec

## Keys and shapes
`diffraction` is (N, H, W) float32 amplitudes.

### Legacy keys
`diff3d` is accepted too.

## Units
NOT IN THE EXCERPT.
"""

FINDINGS = """\
# Findings

## FIND-001 npz memmap pitfall (DATA-1)
`np.load` with mmap_mode on an npz reads everything.

### FIND-001 details
Use the zip offset.

## FIND-002 unrelated
Mentions DATA-10, DATA-1b, DATA-1.2, OLD-DATA-1 and XDATA-1 only.

## Table of small findings
| ID | Finding |
|---|---|
| FIND-003 | STUDY-7 doses must be log-spaced |
| FIND-004 | nothing relevant |

## Notes
- FIND-005: the spec data.md has a typo in the units
- FIND-006: another thing
"""


def make_item(tmp_path: Path, attempts: str = "") -> tuple[Item, str]:
    text = LEDGER.format(attempts=attempts)
    (tmp_path / "docs" / "specs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "docs" / "fix_plan.md").write_text(text)
    return parse_ledger(text).get("DATA-1"), text


def write(tmp_path: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_prompt_has_item_spec_section_findings_selectors_and_rules(tmp_path: Path) -> None:
    item, text = make_item(tmp_path)
    write(tmp_path, {"docs/specs/data.md": SPEC, "docs/findings.md": FINDINGS})
    context = build_prompt_context(repo_root=tmp_path, item=item, ledger_text=text)
    prompt = render_prompt(context)
    assert "## Item [DATA-1] Bridge accepts the diffraction key" in prompt
    assert "The bridge must accept `diffraction` as well as `diff3d`." in prompt
    assert "- Exit-Criteria: both keys load" in prompt
    # The spec section, its subsection included, and nothing after it.
    assert "`diffraction` is (N, H, W) float32 amplitudes." in prompt
    assert "`diff3d` is accepted too." in prompt
    assert "NOT IN THE EXCERPT" not in prompt
    # Findings: by id (heading, with its subsection), by initiative (a table row), by spec file (a list item).
    assert "FIND-001 npz memmap pitfall" in prompt and "Use the zip offset." in prompt
    assert "| FIND-003 | STUDY-7 doses must be log-spaced |" in prompt and "| ID | Finding |" in prompt
    assert "FIND-005: the spec data.md has a typo" in prompt
    for unrelated in ("FIND-002", "FIND-004", "FIND-006"):
        assert unrelated not in prompt
    assert "- RED: `tests/test_bridge.py::test_accepts_diffraction`" in prompt
    assert "- Regression: `tests/test_bridge.py -k memmap`" in prompt
    assert "Write the failing test first" in prompt
    assert "Do not edit the ledger (docs/fix_plan.md)" in prompt and "plans/active" in prompt
    assert "Do not commit" in prompt and "the harness runs the tests itself" in prompt
    assert "first attempt" in prompt
    assert context["item_text"].startswith("## [DATA-1]") and "diff3d" in context["item_text"]


def test_prompt_gives_the_previous_attempts_reason_and_summary(tmp_path: Path) -> None:
    evidence = "plans/active/STUDY-7/reports/2025-11-06T084500Z/bridge/analysis/summary.md"
    item, _ = make_item(tmp_path, attempts=(
        "\n### Attempts History\n"
        "- 2025-11-06T08:45:00Z · #1 · FAILED at red · 3f2a1bc · " + evidence + "\n"))
    folder = tmp_path / "plans/active/STUDY-7/reports/2025-11-06T084500Z/bridge"
    write(tmp_path, {evidence: "# [DATA-1] summary\nRED at base: test_accepts_diffraction PASSED\n"})
    (folder / "attempt.json").write_text(json.dumps({
        "failed_stage": "red", "reason": "RED not proven: tests/test_bridge.py passes without the change"}))
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "Attempt #1" in prompt and "FAILED at red" in prompt
    assert "RED not proven: tests/test_bridge.py passes without the change" in prompt
    assert "RED at base: test_accepts_diffraction PASSED" in prompt
    assert "first attempt" not in prompt
    # A summary handed in by the caller replaces the file; None leaves the previous attempt out.
    given = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, previous_summary="IN MEMORY"))
    assert "IN MEMORY" in given and "RED at base" not in given
    none = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, previous_summary=None))
    assert "first attempt" in none


def test_previous_attempt_with_missing_evidence_is_said_not_crashed(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path, attempts=(
        "\n### Attempts History\n"
        "- 2025-11-06T08:45:00Z · #1 · FAILED at green · 3f2a1bc · plans/gone/summary.md\n"))
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "FAILED at green" in prompt and "plans/gone/summary.md is not in the working tree" in prompt


def test_missing_spec_file_and_missing_anchor_are_said(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path)
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "the spec file docs/specs/data.md does not exist" in prompt
    assert "no docs/findings.md in this repository" in prompt
    write(tmp_path, {"docs/specs/data.md": "# Data\n\n## Other\ntext\n"})
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "has no heading with anchor #keys-and-shapes" in prompt and "#other" in prompt


def test_spec_without_anchor_is_the_whole_file_truncated(tmp_path: Path) -> None:
    text = LEDGER.format(attempts="").replace("docs/specs/data.md#keys-and-shapes", "docs/specs/big.md")
    item = parse_ledger(text).get("DATA-1")
    write(tmp_path, {"docs/specs/big.md": "# Big\n" + "".join(f"line {n}\n" for n in range(5000))})
    prompt = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "line 0\n" in prompt and "line 4999" not in prompt
    assert "more characters not shown: read docs/specs/big.md itself" in prompt
    assert len(prompt) < 20_000


def test_phases_and_chore_mode_change_the_instructions(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path)
    red = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, phase="red"))
    green = render_prompt(build_prompt_context(repo_root=tmp_path, item=item, phase="green"))
    plain = render_prompt(build_prompt_context(repo_root=tmp_path, item=item))
    assert "RED phase: write the failing test(s) only" in red and "GREEN phase" not in red
    assert "proven that the RED test(s) fail" in green and "Do not weaken the tests" in green
    assert "RED phase" not in plain and "GREEN phase" not in plain
    chore = render_prompt(build_prompt_context(repo_root=tmp_path, item=item), mode="chore")
    assert "no failing test is required" in chore and "Write the failing test first" not in chore
    assert "Do not commit" in chore
    with pytest.raises(AgentError, match="phase 'blue'"):
        build_prompt_context(repo_root=tmp_path, item=item, phase="blue")


def test_custom_template_path_is_used_and_errors_are_clear(tmp_path: Path) -> None:
    item, _ = make_item(tmp_path)
    write(tmp_path, {"prompts/mine.md.j2": "CUSTOM {{ item.id }} {{ selectors.red | join(',') }} "
                                           "{{ 'first' if previous is none else 'again' }}\n"})
    context = build_prompt_context(repo_root=tmp_path, item=item)
    assert render_prompt(context, template_path="prompts/mine.md.j2") == (
        "CUSTOM DATA-1 tests/test_bridge.py::test_accepts_diffraction first\n")
    with pytest.raises(AgentError, match="agent.prompt_template"):
        render_prompt(context, template_path="prompts/absent.md.j2")
    write(tmp_path, {"prompts/bad.md.j2": "{{ no_such_key }}\n"})
    with pytest.raises(AgentError, match="no_such_key.*the prompt context has: .*selectors"):
        render_prompt(context, template_path="prompts/bad.md.j2")


def test_github_slugs_and_sections() -> None:
    assert github_slug("Keys and shapes") == "keys-and-shapes"
    assert github_slug("`np.load` & [mmap](http://x) (v2)!") == "npload--mmap-v2"
    text = "# A\n## Setup\none\n```\n## not a heading\n```\n## Setup\ntwo\n# B\n"
    assert markdown_section(text, "setup") == "## Setup\none\n```\n## not a heading\n```"
    assert markdown_section(text, "setup-1") == "## Setup\ntwo"
    assert markdown_section(text, "a").endswith("two") and markdown_section(text, "nope") is None
