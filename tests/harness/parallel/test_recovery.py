"""kill -9 of a harness running workers, at any moment: the next start ends their orphaned commands,
records their attempts as ABORTED, saves their work and removes worktrees, branches and leases."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.errors import ExitCode
from harness.ledger import load_ledger
from harness.main import main
from tests.conftest import git
from tests.harness.parallel.project import (
    assert_nothing_left,
    function_change,
    item,
    parallel_project,
    set_plan,
    worktrees,
)

LEDGER = [item("KA", "add ka", "tests/test_ka.py"), item("KB", "add kb", "tests/test_kb.py")]
FAST = {"KA": {"files": function_change("ka")}, "KB": {"files": function_change("kb", "2")}}
PERSON_ITEM = "\n## [KZ] a person's item for later\n- Status: blocked\n- RED: tests/test_kz.py\n"


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def _wait_for(condition, what: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"never saw {what}: {proc.communicate()[0]}")


@pytest.mark.slow
def test_kill_9_while_agents_run_second_harness_refused_then_recovered_and_the_loop_continues(
        make_repo, tmp_path, capsys) -> None:
    pids = {name: tmp_path / f"{name}.pid" for name in ("KA", "KB")}
    plan = {name: {**FAST[name], "sleep": 300, "child_pid_file": str(pids[name])} for name in pids}
    repo = parallel_project(make_repo, tmp_path, LEDGER, plan, sandbox="off")  # the agents report pids
    proc = subprocess.Popen([sys.executable, "-m", "harness", "loop", "-C", str(repo), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _wait_for(lambda: all(p.exists() and p.read_text() for p in pids.values()), "both agents at work", proc)

    # a second harness is refused while the first holds the repository: it never takes the same item
    assert main(["run", "-C", str(repo), "KA"]) == ExitCode.BUSY
    assert main(["loop", "-C", str(repo), "--workers", "2"]) == ExitCode.BUSY
    assert capsys.readouterr().err.count("another harness") == 2

    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    children = {name: int(p.read_text()) for name, p in pids.items()}
    assert len(worktrees(repo)) == 3 and not any(_gone(pid) for pid in children.values())  # orphans

    set_plan(tmp_path, FAST)
    assert main(["loop", "-C", str(repo), "--workers", "2", "--until-empty"]) == 0
    err = capsys.readouterr().err
    assert "recovered worker [KA] attempt #1: ABORTED at agent" in err and "ended its process group" in err
    time.sleep(0.2)
    assert all(_gone(pid) for pid in children.values())  # the dead harness's agents and their children
    for name, module in (("KA", "ka"), ("KB", "kb")):
        attempts = load_ledger(repo / "docs/fix_plan.md").get(name).attempts
        assert [a.outcome for a in attempts] == ["ABORTED at agent", "GREEN"]
        saved = git(repo, "show", f"refs/harness/aborted/{name}/1:pkg/{module}.py")  # the partial work
        assert saved == FAST[name]["files"][f"pkg/{module}.py"]
        assert git(repo, "rev-parse", f"refs/harness/aborted/{name}/1^").strip().startswith(attempts[0].base_commit)
    assert main(["ledger", "-C", str(repo), "verify"]) == 0
    assert_nothing_left(repo)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["merged-gates", "land", "commit"])
def test_kill_9_while_a_change_lands_is_recovered_without_a_trace_in_the_main_checkout(
        make_repo, tmp_path, capsys, stage: str) -> None:
    plan = {"KA": FAST["KA"], "KB": {**FAST["KB"], "sleep": 2}}
    repo = parallel_project(make_repo, tmp_path, LEDGER, plan)
    head = git(repo, "rev-parse", "HEAD").strip()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "loop", "-C", str(repo), "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HARNESS_CRASH_AT": stage})
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == -signal.SIGKILL, out
    journals = {p.parent.name: json.loads(p.read_text())
                for p in (repo / ".git" / "harness" / "workers").glob("*/journal.json")}
    crashed = next(name for name, entry in journals.items() if entry["stage"] == stage)
    assert git(repo, "rev-parse", "HEAD").strip() == head  # nothing was committed
    if stage == "commit":
        assert git(repo, "status", "--porcelain") != ""  # the landing had written into the main checkout
    ledger_path = repo / "docs/fix_plan.md"
    written = ledger_path.read_text()  # with the landing's uncommitted attempt line at `commit`
    ledger_path.write_text(written.replace("# Fix Plan\n", "# Fix Plan\n\nA person's note.\n", 1) + PERSON_ITEM)

    # any command that takes the lock recovers: here one that then finds no change to prove
    assert main(["run", "-C", str(repo), "--no-agent", crashed]) == ExitCode.ERROR
    assert f"recovered worker [{crashed}] attempt #1: ABORTED at {stage}" in capsys.readouterr().err
    assert_nothing_left(repo)
    recovered = load_ledger(ledger_path)  # the person's edits stay, the landing's line does not
    assert "A person's note." in recovered.text and recovered.get("KZ").status == "blocked"
    assert [a.outcome for a in recovered.get(crashed).attempts] == [f"ABORTED at {stage}"]
    assert main(["loop", "-C", str(repo), "--workers", "2", "--until-empty"]) == 0
    ledger = load_ledger(repo / "docs/fix_plan.md")
    assert [a.outcome for a in ledger.get(crashed).attempts] == [f"ABORTED at {stage}", "GREEN"]
    module = crashed.lower()
    assert git(repo, "show", f"refs/harness/aborted/{crashed}/1:pkg/{module}.py") == \
        FAST[crashed]["files"][f"pkg/{module}.py"]
    assert all(i.status == "done" for i in ledger.items if i.id != "KZ")
    assert main(["ledger", "-C", str(repo), "verify"]) == 0
    assert_nothing_left(repo)


@pytest.mark.slow
def test_sigterm_stops_every_worker_records_their_attempts_and_exits_130(make_repo, tmp_path) -> None:
    pids = {name: tmp_path / f"{name}.pid" for name in ("KA", "KB")}
    plan = {name: {**FAST[name], "sleep": 300, "child_pid_file": str(pids[name])} for name in pids}
    repo = parallel_project(make_repo, tmp_path, LEDGER, plan, sandbox="off")  # the agents report pids
    proc = subprocess.Popen([sys.executable, "-m", "harness", "loop", "-C", str(repo), "--workers", "2", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: all(p.exists() and p.read_text() for p in pids.values()), "both agents at work", proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    events = [json.loads(line) for line in out.splitlines()]
    assert events[-1]["event"] == "stopped" and events[-1]["exit_code"] == 130
    assert sum("recovered worker" in e.get("text", "") for e in events) == 2
    time.sleep(0.2)
    assert all(_gone(int(p.read_text())) for p in pids.values())
    for name, module in (("KA", "ka"), ("KB", "kb")):
        assert [a.outcome for a in load_ledger(repo / "docs/fix_plan.md").get(name).attempts] == ["ABORTED at agent"]
        assert git(repo, "show", f"refs/harness/aborted/{name}/1:pkg/{module}.py") == \
            FAST[name]["files"][f"pkg/{module}.py"]
    assert_nothing_left(repo)


@pytest.mark.slow
def test_kill_9_while_a_worker_has_files_set_aside_saves_them_with_its_work(make_repo, tmp_path, capsys) -> None:
    plan = {"KA": {"files": {**function_change("ka"), "data/ka.bin": "a" * 3000}}}  # over the cap: left out
    repo = parallel_project(make_repo, tmp_path, LEDGER[:1], plan, extra_yaml="caps:\n  changed_file_bytes: 2000\n")
    proc = subprocess.run([sys.executable, "-m", "harness", "loop", "-C", str(repo), "--workers", "2"],
                          capture_output=True, text=True, env={**os.environ, "HARNESS_CRASH_AT": "green"},
                          timeout=300, check=False)
    assert proc.returncode == -signal.SIGKILL, proc.stdout + proc.stderr
    worktree = repo / ".git" / "harness" / "workers" / "KA" / repo.name
    assert (worktree / "pkg/ka.py").exists() and not (worktree / "data/ka.bin").exists()  # set aside

    assert main(["run", "-C", str(repo), "--no-agent", "KA"]) == ExitCode.ERROR  # recovers, then no work here
    assert "recovered worker [KA] attempt #1: ABORTED at green" in capsys.readouterr().err
    assert git(repo, "show", "refs/harness/aborted/KA/1:data/ka.bin") == "a" * 3000  # not lost with the worktree
    assert git(repo, "show", "refs/harness/aborted/KA/1:pkg/ka.py") == plan["KA"]["files"]["pkg/ka.py"]
    assert_nothing_left(repo)
