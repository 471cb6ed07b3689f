"""`harness loop` and the agent stage with real agent subprocesses in real repositories."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.commands.loop import loop
from harness.errors import ExitCode, HarnessError
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.project import (
    HARNESS_YAML,
    MUL_IMPL,
    MUL_TEST,
    head_subject,
    make_project,
    status_porcelain,
)

AGENT = '''\
import json, os, sys, time
from pathlib import Path
plan = json.loads(Path(sys.argv[1]).read_text())
step = plan.get(os.environ["HARNESS_ITEM"], plan.get("*"))
print("agent working on", os.environ["HARNESS_ITEM"], "attempt", os.environ["HARNESS_ATTEMPT"], flush=True)
sys.stdin.read()
for rel, text in step.get("files", {}).items():
    Path(rel).parent.mkdir(parents=True, exist_ok=True)
    Path(rel).write_text(text)
if step.get("child_sleep"):
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    Path(step["child_pid_file"]).write_text(str(child.pid))
if step.get("sleep"):
    time.sleep(step["sleep"])
sys.exit(step.get("exit", 0))
'''

SUB_TEST = "from pkg.calc import sub\n\n\ndef test_sub():\n    assert sub(3, 1) == 2\n"
SUB_IMPL = MUL_IMPL + "\n\ndef sub(a, b):\n    return a - b\n"
THIRD_LEDGER_ITEM = """
## [CALC-003] calc gains neg
- Status: pending
- Priority: 3
- Depends-On: CALC-002
- RED: tests/test_neg.py
"""
NEG_TEST = "from pkg.calc import neg\n\n\ndef test_neg():\n    assert neg(2) == -2\n"
NEG_IMPL = SUB_IMPL + "\n\ndef neg(a):\n    return -a\n"


def agent_project(make_repo, tmp_path: Path, plan: dict, *, timeout_s: int = 60, extra_yaml: str = "",
                  ledger_extra: str = "", sandbox: str = "auto") -> Path:
    """`sandbox="off"` for an agent that reports its child's pid (`child_pid_file`): inside the sandbox's
    pid namespace that number means nothing outside (tests/harness/agent/test_sandbox.py covers how a
    sandbox's processes end)."""
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    yaml = HARNESS_YAML + (f"agent:\n  command: [\"{{python}}\", \"{agent}\", \"{plan_file}\"]\n"
                           f"  timeout_s: {timeout_s}\n  sandbox: {sandbox}\n") + extra_yaml
    from tests.harness.project import LEDGER

    return make_project(make_repo, extra={"harness.yaml": yaml}, ledger=LEDGER + ledger_extra)


def test_loop_over_three_items_with_dependencies_until_empty(make_repo, tmp_path, capsys) -> None:
    plan = {"CALC-001": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL}},
            "CALC-002": {"files": {"tests/test_sub.py": SUB_TEST, "pkg/calc.py": SUB_IMPL}},
            "CALC-003": {"files": {"tests/test_neg.py": NEG_TEST, "pkg/calc.py": NEG_IMPL}}}
    repo = agent_project(make_repo, tmp_path, plan, ledger_extra=THIRD_LEDGER_ITEM)
    assert main(["loop", "-C", str(repo), "--until-empty"]) == 0
    captured = capsys.readouterr()
    assert "nothing actionable" in captured.out
    ledger = load_ledger(repo / "docs/fix_plan.md")
    assert [i.status for i in ledger.items] == ["done", "done", "done"]
    subjects = git(repo, "log", "--format=%s").splitlines()[:3]
    assert subjects == ["[CALC-003] calc gains neg: GREEN", "[CALC-002] calc gains sub: GREEN",
                        "[CALC-001] calc gains mul: GREEN"]
    assert status_porcelain(repo) == ""
    agent_log = next((repo / "plans/active/CALC-INIT/reports").rglob("agent.log")).read_text()
    assert "agent working on CALC-001 attempt 1" in agent_log


def test_circuit_breaker_stops_after_consecutive_failures(make_repo, tmp_path, capsys) -> None:
    plan = {"*": {"files": {"tests/test_mul.py": "def test_mul():\n    assert True\n"}}}
    repo = agent_project(make_repo, tmp_path, plan)
    assert main(["loop", "-C", str(repo), "--max-failures", "2"]) == 1
    err = capsys.readouterr().err
    assert "circuit breaker: 2 failed iterations in a row" in err
    attempts = load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts
    assert [a.outcome for a in attempts] == ["FAILED at red", "FAILED at red"]
    assert git(repo, "show", "refs/harness/failed/CALC-001/2:tests/test_mul.py").startswith("def test_mul")


LEFT_OUT_YAML = "caps:\n  changed_file_bytes: 2000\nignore:\n  - 'scratch/**'\n"


def test_files_left_out_of_the_commit_do_not_stop_the_loop_and_stay_in_the_tree(make_repo, tmp_path, capsys) -> None:
    big, generated = b"\x00" * 5000, "g" * 3000
    plan = {"CALC-001": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL, "out/gen.txt": generated}},
            "CALC-002": {"files": {"tests/test_sub.py": SUB_TEST, "pkg/calc.py": SUB_IMPL}}}
    repo = agent_project(make_repo, tmp_path, plan, extra_yaml=LEFT_OUT_YAML)
    (repo / "data").mkdir()
    (repo / "data/big.bin").write_bytes(big)  # a person's files the commit leaves out: over the cap, ignored
    (repo / "scratch").mkdir()
    (repo / "scratch/notes.md").write_text("a person's scratch notes\n")

    assert main(["loop", "-C", str(repo), "--until-empty"]) == 0
    out = capsys.readouterr().out
    assert "nothing actionable" in out
    assert [i.status for i in load_ledger(repo / "docs/fix_plan.md").items] == ["done", "done"]
    table = out[out.index("  #  item"):]  # the loop's summary
    assert "CALC-001" in table and "CALC-002" in table
    assert out.count("set aside while the stages run: data/big.bin") == 2  # named at each iteration
    assert out.count("set aside while the stages run: out/gen.txt") == 2  # made by the first, kept after
    assert (repo / "data/big.bin").read_bytes() == big
    assert (repo / "scratch/notes.md").read_text() == "a person's scratch notes\n"
    assert (repo / "out/gen.txt").read_text() == generated
    committed = git(repo, "log", "--all", "--format=", "--name-only").split()
    assert not {"data/big.bin", "scratch/notes.md", "out/gen.txt"} & set(committed)
    assert status_porcelain(repo) == "?? data/big.bin\n?? out/gen.txt\n?? scratch/notes.md\n"


def test_an_error_between_iterations_still_prints_the_loops_summary(make_repo, tmp_path, capsys) -> None:
    stray = MUL_TEST + "\n\ndef test_writes_into_the_tree():\n    open('stray.txt', 'w').write('x')\n"
    plan = {"CALC-001": {"files": {"tests/test_mul.py": stray, "pkg/calc.py": MUL_IMPL}},
            "CALC-002": {"files": {"tests/test_sub.py": SUB_TEST, "pkg/calc.py": SUB_IMPL}}}
    repo = agent_project(make_repo, tmp_path, plan)
    assert main(["loop", "-C", str(repo), "--until-empty"]) == ExitCode.ERROR
    captured = capsys.readouterr()
    assert "[CALC-001] GREEN" in captured.out
    assert "  1  CALC-001" in captured.out  # the summary row of the iteration that ran
    assert "loop stopped: the working tree is not clean (stray.txt)" in captured.err


def test_an_error_stops_the_loop_with_its_summary_and_exit_4_and_costs_no_attempt(make_repo, tmp_path,
                                                                                  capsys) -> None:
    plan = {"CALC-001": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL}},
            "CALC-002": {"files": {"tests/test_sub.py": SUB_TEST, "pkg/calc.py": SUB_IMPL}}}
    repo = agent_project(make_repo, tmp_path, plan)
    ledger_path = repo / "docs/fix_plan.md"
    ledger_path.write_text(ledger_path.read_text().replace("- RED: tests/test_sub.py", '- RED: tests/test_sub.py -k "x'))
    git(repo, "commit", "-q", "-am", "CALC-002's selector is broken")

    assert main(["loop", "-C", str(repo)]) == ExitCode.ERROR

    captured = capsys.readouterr()
    table = captured.out[captured.out.index("#  item"):]
    assert "CALC-001" in table and "GREEN" in table  # the summary of what ran before the error
    assert "loop stopped: docs/fix_plan.md:20: item CALC-002, `- RED:` selector" in captured.err
    ledger = load_ledger(ledger_path)
    assert ledger.get("CALC-001").status == "done" and ledger.get("CALC-002").attempts == ()
    assert status_porcelain(repo) == "" and not (repo / ".git/harness/journal.json").exists()
    assert "agent working on CALC-002" not in captured.out  # checked before the agent's turn


def test_iterations_limit_and_budget(make_repo, tmp_path, capsys) -> None:
    plan = {"CALC-001": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL}},
            "CALC-002": {"files": {"tests/test_sub.py": SUB_TEST, "pkg/calc.py": SUB_IMPL}}}
    repo = agent_project(make_repo, tmp_path, plan)
    assert main(["loop", "-C", str(repo), "--iterations", "1"]) == 0  # ran its iteration, which succeeded
    assert "ran 1 iteration(s)" in capsys.readouterr().out
    assert load_ledger(repo / "docs/fix_plan.md").get("CALC-002").status == "pending"
    assert main(["loop", "-C", str(repo), "--budget-minutes", "0"]) == 1
    assert "time budget" in capsys.readouterr().err


def test_iterations_and_until_empty_exclude_each_other_on_every_path(make_repo, tmp_path, capsys) -> None:
    repo = agent_project(make_repo, tmp_path, {})
    with pytest.raises(SystemExit):  # the command line refuses the pair
        main(["loop", "-C", str(repo), "--iterations", "1", "--until-empty"])
    capsys.readouterr()
    for workers in (1, 2):  # and so does the command's function, serial or parallel, before anything runs
        with pytest.raises(HarnessError, match="--iterations and --until-empty exclude each other"):
            loop(repo=repo, iterations=1, until_empty=True, workers=workers)
    assert load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts == ()


def test_agent_timeout_kills_its_whole_process_group(make_repo, tmp_path) -> None:
    pid_file = tmp_path / "child.pid"
    plan = {"*": {"files": {"tests/test_mul.py": MUL_TEST}, "child_sleep": True,
                  "child_pid_file": str(pid_file), "sleep": 300}}
    repo = agent_project(make_repo, tmp_path, plan, timeout_s=2, sandbox="off")
    started = time.monotonic()
    assert main(["run", "-C", str(repo), "CALC-001"]) == ExitCode.REFUSED
    assert time.monotonic() - started < 30
    child = int(pid_file.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    assert head_subject(repo) == "[CALC-001] calc gains mul: FAILED at agent"
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    evidence = repo / item.attempts[-1].evidence
    assert "timed out" in evidence.read_text()
    record = json.loads((evidence.parent.parent / "attempt.json").read_text())
    assert record["agent"][0]["timed_out"] is True
    assert git(repo, "show", "refs/harness/failed/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert status_porcelain(repo) == ""


def test_agent_that_crashes_fails_at_agent_and_its_work_is_saved(make_repo, tmp_path) -> None:
    plan = {"*": {"files": {"tests/test_mul.py": MUL_TEST}, "exit": 3}}
    repo = agent_project(make_repo, tmp_path, plan)
    assert main(["run", "-C", str(repo), "CALC-001"]) == ExitCode.REFUSED
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.attempts[-1].outcome == "FAILED at agent"
    record = json.loads((repo / item.attempts[-1].evidence).parent.parent.joinpath("attempt.json").read_text())
    assert record["agent"][0]["exit_code"] == 3 and "exited with code 3" in record["reason"]
    assert git(repo, "show", "refs/harness/failed/CALC-001/1:tests/test_mul.py") == MUL_TEST


def test_agent_edits_to_the_ledger_are_discarded_and_reported(make_repo, tmp_path, capsys) -> None:
    from tests.harness.project import LEDGER

    forged = LEDGER.replace("- Status: pending\n- Priority: 1", "- Status: done\n- Priority: 1")
    plan = {"*": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL,
                            "docs/fix_plan.md": forged}}}
    repo = agent_project(make_repo, tmp_path, plan)
    assert main(["run", "-C", str(repo), "CALC-001"]) == 0
    assert "the agent edited docs/fix_plan.md" in capsys.readouterr().out
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    summary = (repo / item.attempts[-1].evidence).read_text()
    assert "edit to harness-owned `docs/fix_plan.md` discarded" in summary
    assert item.status == "done" and len(item.attempts) == 1  # set by the harness, from its own proof


def test_dirty_tree_is_refused_unless_allowed(make_repo, tmp_path, capsys) -> None:
    plan = {"*": {"files": {"pkg/calc.py": MUL_IMPL}}}
    repo = agent_project(make_repo, tmp_path, plan)
    (repo / "tests/test_mul.py").write_text(MUL_TEST)
    assert main(["run", "-C", str(repo), "CALC-001"]) == ExitCode.ERROR
    assert "--allow-dirty" in capsys.readouterr().err
    assert main(["run", "-C", str(repo), "CALC-001", "--allow-dirty"]) == 0


def test_two_phase_mode_proves_red_between_the_agent_turns(make_repo, tmp_path) -> None:
    agent = tmp_path / "phased.py"
    agent.write_text(
        "import os, sys\nfrom pathlib import Path\nsys.stdin.read()\n"
        f"if os.environ['HARNESS_PHASE'] == 'red':\n    Path('tests/test_mul.py').write_text({MUL_TEST!r})\n"
        f"else:\n    Path('pkg/calc.py').write_text({MUL_IMPL!r})\n")
    yaml = HARNESS_YAML + f'agent:\n  command: ["{{python}}", "{agent}"]\n  phases: [red, green]\n'
    repo = make_project(make_repo, extra={"harness.yaml": yaml})
    assert main(["run", "-C", str(repo), "CALC-001"]) == 0
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    record = json.loads((repo / item.attempts[-1].evidence).parent.parent.joinpath("attempt.json").read_text())
    names = [s["name"] for s in record["stages"]]
    assert names[:3] == ["agent_red", "red", "agent_green"] and names[-1] == "full_suite"


def _wait_for_stage(repo: Path, stage: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    journal = repo / ".git" / "harness" / "journal.json"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if journal.exists():
            try:
                if json.loads(journal.read_text()).get("stage") == stage:
                    return
            except json.JSONDecodeError:
                pass
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"never reached stage {stage}: {proc.communicate()[0]}")


@pytest.mark.slow
def test_sigterm_stops_the_loop_records_the_attempt_and_exits_130(make_repo, tmp_path) -> None:
    plan = {"*": {"files": {"tests/test_mul.py": MUL_TEST}, "sleep": 300}}
    repo = agent_project(make_repo, tmp_path, plan)
    proc = subprocess.Popen([sys.executable, "-m", "harness", "loop", "-C", str(repo)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for_stage(repo, "agent", proc)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=60)[0]
    assert proc.returncode == 130, out
    assert "interrupted" in out
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.attempts[-1].outcome == "ABORTED at agent"
    assert git(repo, "show", "refs/harness/aborted/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert status_porcelain(repo) == ""


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["agent", "green", "evidence", "commit"])
def test_kill_9_at_each_stage_is_recovered_at_the_next_start(make_repo, tmp_path, stage: str) -> None:
    pid_file = tmp_path / "child.pid"
    plan = {"*": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL},
                  "child_sleep": stage == "agent", "child_pid_file": str(pid_file),
                  "sleep": 300 if stage == "agent" else 0}}
    repo = agent_project(make_repo, tmp_path, plan, sandbox="off" if stage == "agent" else "auto")
    ledger_before = (repo / "docs/fix_plan.md").read_bytes()
    env = {**os.environ} if stage == "agent" else {**os.environ, "HARNESS_CRASH_AT": stage}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "run", "-C", str(repo), "CALC-001"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    if stage == "agent":
        _wait_for_stage(repo, "agent", proc)
        deadline = time.monotonic() + 30
        while not pid_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    if stage != "commit":
        assert (repo / "docs/fix_plan.md").read_bytes() == ledger_before  # never half-written
    # the next start (here `next`, which takes the lock) recovers: the attempt is ABORTED, the work is on a
    # ref, the tree is clean
    assert main(["next", "-C", str(repo)]) == 0
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == ExitCode.ERROR  # nothing left to prove
    item = load_ledger(repo / "docs/fix_plan.md").get("CALC-001")
    assert item.attempts[-1].outcome == f"ABORTED at {stage}"
    assert git(repo, "show", "refs/harness/aborted/CALC-001/1:tests/test_mul.py") == MUL_TEST
    assert status_porcelain(repo) == ""
    if stage == "agent":  # the dead harness's agent (and its child) were ended
        child = int(pid_file.read_text())
        time.sleep(0.2)
        assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]
    assert main(["ledger", "-C", str(repo), "verify"]) == 0
    (tmp_path / "plan.json").write_text(json.dumps({"*": {"files": plan["*"]["files"]}}))
    assert main(["loop", "-C", str(repo), "--iterations", "1"]) == 0  # and the loop continues


def test_selector_history_survives_a_failed_attempt_and_agent_edits_to_it_are_undone(make_repo, tmp_path) -> None:
    plan = {"*": {"files": {"tests/test_mul.py": "def test_mul():\n    assert True\n",
                            "plans/selectors/history.jsonl": '{"forged": true}\n'}}}
    repo = agent_project(make_repo, tmp_path, plan)
    history = repo / "plans/selectors/history.jsonl"
    history.parent.mkdir(parents=True)
    history.write_text('{"selector": "tests/test_calc.py", "status": "passed"}\n')
    before = history.read_text()
    assert main(["run", "-C", str(repo), "CALC-001"]) == 1  # the test passes without the change: no RED
    assert history.read_text() == before  # the agent's edit was taken back, the failure discarded nothing else
    assert "plans/selectors" not in git(repo, "show", "--name-only", "--format=", "HEAD")
    assert status_porcelain(repo) == "?? plans/selectors/history.jsonl\n"


# --- planning and building, alternately (`--plan-every N`, `--plan-when-empty`) ---------------------------

ONE_ITEM_LEDGER = "# Fix Plan\n\n## [CALC-001] calc gains mul\n- Priority: 1\n- RED: tests/test_mul.py::test_mul\n"
PLANNED_SUB = "## [CALC-002] calc gains sub\n- Priority: 2\n- Depends-On: CALC-001\n- RED: tests/test_sub.py\n"


def plan_and_build_project(make_repo, tmp_path: Path, proposals: list[str]) -> Path:
    """One pending item, the test agent of this module, and the scripted planner taking `proposals` in turn."""
    queue = tmp_path / "proposals"
    queue.mkdir(parents=True)
    for number, text in enumerate(proposals, 1):
        (queue / f"{number}.md").write_text(text)
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT)
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps({"CALC-001": {"files": {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL}},
                                     "CALC-002": {"files": {"tests/test_sub.py": SUB_TEST, "pkg/calc.py": SUB_IMPL}}}))
    yaml = (HARNESS_YAML + f'agent:\n  command: ["{{python}}", "{agent}", "{plan_file}"]\n'
            f'planner:\n  command: ["{{python}}", "-m", "harness.demo.scripted_planner", "{queue}"]\n')
    return make_project(make_repo, extra={"harness.yaml": yaml}, ledger=ONE_ITEM_LEDGER)


def test_plan_every_runs_the_planner_before_every_nth_iteration(make_repo, tmp_path, capsys) -> None:
    repo = plan_and_build_project(make_repo, tmp_path, [PLANNED_SUB])  # the second plan proposes nothing

    assert main(["loop", "-C", str(repo), "--plan-every", "1", "--iterations", "2"]) == 0

    subjects = git(repo, "log", "--format=%s").splitlines()[:3]
    assert subjects == ["[CALC-002] calc gains sub: GREEN", "[CALC-001] calc gains mul: GREEN",
                        "plan: add CALC-002"]
    assert git(repo, "log", "-1", "--format=%(trailers:key=Harness-Planner,valueonly)", "HEAD~2").strip().endswith(
        f"scripted_planner {tmp_path / 'proposals'}")
    out = capsys.readouterr().out
    table = out[out.index("  #  item"):]
    assert "  1  (plan)                   PLANNED" in table and "add CALC-002" in table
    assert "  2  (plan)                   NO CHANGE" in table and "  2  CALC-002" in table
    assert status_porcelain(repo) == ""


def test_plan_when_empty_plans_when_nothing_is_actionable_and_stops_when_a_plan_adds_nothing(make_repo, tmp_path,
                                                                                             capsys) -> None:
    repo = plan_and_build_project(make_repo, tmp_path, [PLANNED_SUB])

    assert main(["loop", "-C", str(repo), "--plan-when-empty"]) == 0

    subjects = git(repo, "log", "--format=%s").splitlines()[:3]
    assert subjects == ["[CALC-002] calc gains sub: GREEN", "plan: add CALC-002", "[CALC-001] calc gains mul: GREEN"]
    out = capsys.readouterr().out
    assert "loop stopped: nothing actionable" in out and "the planner's plan made nothing actionable" in out
    table = out[out.index("  #  item"):]
    assert "  2  (plan)                   PLANNED" in table and "  3  (plan)                   NO CHANGE" in table
    assert [i.status for i in load_ledger(repo / "docs/fix_plan.md").items] == ["done", "done"]


def test_a_refused_plan_stops_the_loop_before_anything_is_built(make_repo, tmp_path, capsys) -> None:
    repo = plan_and_build_project(make_repo, tmp_path, [PLANNED_SUB.replace("CALC-001", "CALC-404")])
    head = git(repo, "rev-parse", "HEAD")

    assert main(["loop", "-C", str(repo), "--plan-every", "3"]) == ExitCode.REFUSED

    captured = capsys.readouterr()
    assert "[CALC-002] missing-dependency: depends on [CALC-404]" in captured.out
    assert "loop stopped: the plan before iteration 1 was refused; nothing of it was written" in captured.err
    assert git(repo, "rev-parse", "HEAD") == head and status_porcelain(repo) == ""
    assert load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts == ()


def test_the_plan_options_need_a_planner_and_the_serial_loop(make_repo, tmp_path, capsys) -> None:
    repo = agent_project(make_repo, tmp_path, {})
    assert main(["loop", "-C", str(repo), "--plan-when-empty"]) == ExitCode.ERROR
    assert "none is configured: add `planner: {command: [...]}`" in capsys.readouterr().err
    repo = plan_and_build_project(make_repo, tmp_path / "second", [])
    for extra in (["--workers", "2"], ["--json"], ["--no-agent"]):
        assert main(["loop", "-C", str(repo), "--plan-every", "2", *extra]) == ExitCode.ERROR
        assert f"cannot be combined with {extra[0]}" in capsys.readouterr().err
    assert load_ledger(repo / "docs/fix_plan.md").get("CALC-001").attempts == ()
