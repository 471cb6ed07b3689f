"""The one subprocess runner: process groups, timeouts, logs, stdin, leftovers, interrupts."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import proc
from harness.proc import StartError, group_alive, kill_process_group, process_alive, run, wait_for


def test_output_goes_to_the_log_and_memory_in_order(tmp_path: Path) -> None:
    log = tmp_path / "out" / "cmd.log"
    done = run([sys.executable, "-c", "import sys; print('one'); print('two', file=sys.stderr); print('three')"],
               cwd=tmp_path, log_path=log, capture=True)
    assert done.ok and done.returncode == 0 and not done.timed_out and done.notes == ()
    assert done.output == log.read_text() == "one\ntwo\nthree\n"
    assert done.argv[0] == sys.executable and done.duration_s > 0


def test_stdin_is_fed_and_the_environment_is_the_one_given(tmp_path: Path) -> None:
    script = "import os, sys; print(sys.stdin.read().upper(), os.environ.get('ONLY'), os.environ.get('HOME'))"
    done = run([sys.executable, "-c", script], cwd=tmp_path, env={"ONLY": "this"}, stdin=b"prompt", capture=True)
    assert done.output == "PROMPT this None\n"
    empty = run([sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"], cwd=tmp_path, capture=True)
    assert empty.output == "''\n"


def test_a_timeout_ends_the_whole_group_and_says_so_in_the_log(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (f"import subprocess, sys, time; c = subprocess.Popen(['sleep', '60']); "
              f"open({str(pid_file)!r}, 'w').write(str(c.pid)); print('started', flush=True); time.sleep(60)")
    groups: list[int] = []
    done = run([sys.executable, "-c", script], cwd=tmp_path, timeout_s=2, log_path=tmp_path / "t.log",
               on_start=groups.append, kill_grace_s=1)
    assert done.timed_out and not done.ok and done.returncode < 0 and groups == [done.pgid]
    assert not process_alive(int(pid_file.read_text()))
    log = (tmp_path / "t.log").read_text()
    assert log.startswith("started\n") and "[harness] timed out after 2 s" in log


def test_processes_left_in_the_group_are_ended(tmp_path: Path) -> None:
    pid_file = tmp_path / "orphan.pid"
    script = (f"import subprocess; c = subprocess.Popen(['sleep', '60'], stdout=subprocess.DEVNULL); "
              f"open({str(pid_file)!r}, 'w').write(str(c.pid))")
    done = run([sys.executable, "-c", script], cwd=tmp_path, capture=True, kill_grace_s=1)
    assert done.returncode == 0 and not process_alive(int(pid_file.read_text()))
    assert any("left in its group" in note for note in done.notes)


def test_a_label_names_the_command_in_the_notes(tmp_path: Path) -> None:
    script = ("import subprocess, time; subprocess.Popen(['sleep', '60'], stdout=subprocess.DEVNULL); "
              "time.sleep(float(__import__('sys').argv[1]))")
    slow = run([sys.executable, "-c", script, "60"], cwd=tmp_path, timeout_s=1, capture=True, kill_grace_s=1,
               label="the linter")
    assert slow.notes == (f"the linter timed out after 1 s; its process group {slow.pgid} was terminated",)
    quick = run([sys.executable, "-c", script, "0"], cwd=tmp_path, capture=True, kill_grace_s=1,
                label="the linter")
    assert quick.notes == (f"processes left in the linter's group {quick.pgid} were ended",)
    assert quick.output == f"[harness] {quick.notes[0]}\n"


def test_an_interrupt_ends_the_group_and_propagates(tmp_path: Path) -> None:
    groups: list[int] = []

    def interrupted(pgid: int) -> None:  # as if Ctrl-C arrived while the command runs
        groups.append(pgid)
        assert group_alive(pgid)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(["sh", "-c", "sleep 60 & sleep 60; wait"], cwd=tmp_path, on_start=interrupted, kill_grace_s=1)
    assert groups and not group_alive(groups[0])


def test_wait_for_returns_the_exit_code_of_a_reaped_child_and_times_out_like_popen_wait() -> None:
    done = subprocess.Popen([sys.executable, "-c", "raise SystemExit(7)"])
    assert wait_for(done, 30) == 7 and done.returncode == 7
    assert wait_for(done, 30) == 7  # already reaped: no pidfd to open, Popen knows the code

    slow = subprocess.Popen(["sleep", "60"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_for(slow, 0.2)
        assert slow.poll() is None  # a timeout leaves it running, for the caller to end
    finally:
        slow.kill()
    assert wait_for(slow, None) == -signal.SIGKILL


def test_a_signal_during_wait_for_does_not_end_the_wait_early() -> None:
    """poll() interrupted by a signal whose handler returns is retried (PEP 475): the wait goes on until the
    child exits, and the code is the child's, not a timeout."""
    previous = signal.signal(signal.SIGALRM, lambda *_: None)
    signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)
    try:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5); raise SystemExit(3)"])
        assert wait_for(child, 30) == 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_command_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StartError, match="'no-such-program-xyz' in .*: the program was not found") as missing:
        run(["no-such-program-xyz"], cwd=tmp_path)
    assert missing.value.not_found
    (tmp_path / "not-executable").write_text("#!/bin/sh\n")
    with pytest.raises(StartError, match="[Pp]ermission denied") as refused:
        run([str(tmp_path / "not-executable")], cwd=tmp_path)
    assert not refused.value.not_found
    with pytest.raises(StartError, match="no such directory"):
        run(["true"], cwd=tmp_path / "missing")


def test_process_alive(tmp_path: Path) -> None:
    assert process_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    pid = proc.pid
    deadline = time.monotonic() + 10
    while process_alive(pid) and time.monotonic() < deadline:  # exits, stays a zombie until reaped
        time.sleep(0.01)
    assert not process_alive(pid)
    proc.wait()
    assert not process_alive(pid) and not process_alive(0) and not process_alive(-5)


def test_group_alive_tells_a_running_group_from_an_empty_one_and_from_one_of_zombies() -> None:
    running = subprocess.Popen(["sleep", "60"], start_new_session=True)
    exited = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    try:
        assert group_alive(running.pid)
        deadline = time.monotonic() + 10
        while process_alive(exited.pid) and time.monotonic() < deadline:  # a zombie until it is reaped
            time.sleep(0.01)
        assert not group_alive(exited.pid)  # its only process is a zombie
        exited.wait()
        assert not group_alive(exited.pid)  # no process at all
    finally:
        running.kill()
        running.wait()
    assert not group_alive(running.pid)


def _group_pids(pgid: int) -> list[int]:
    out = subprocess.run(["ps", "-eo", "pid=,pgid=,stat="], capture_output=True, text=True, check=True).stdout
    rows = (line.split() for line in out.splitlines())
    return [int(pid) for pid, group, state in rows if int(group) == pgid and "Z" not in state]


def test_kill_process_group_terminates_children_too() -> None:
    proc = subprocess.Popen(
        ["sh", "-c", "sleep 60 & sleep 60 & echo ready; wait"], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    assert len(_group_pids(proc.pid)) == 3
    assert kill_process_group(proc.pid, grace_s=5) == "terminated"
    proc.wait()
    proc.stdout.close()
    assert _group_pids(proc.pid) == []
    assert kill_process_group(proc.pid) == "gone"


def test_kill_process_group_escalates_to_sigkill() -> None:
    stubborn = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", stubborn], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    assert kill_process_group(proc.pid, grace_s=0.3) == "killed"
    assert proc.wait(timeout=5) == -signal.SIGKILL
    proc.stdout.close()


def test_kill_process_group_refuses_own_group_and_init() -> None:
    for pgid in (os.getpgrp(), 1, 0):
        with pytest.raises(ValueError, match="refusing"):
            kill_process_group(pgid)


def test_a_thread_watching_its_groups_sees_each_one_it_starts_and_only_those(tmp_path: Path) -> None:
    import threading

    from harness.proc import watching_groups

    seen: list[int] = []
    other: list[int] = []
    with watching_groups(seen.append):
        first = run([sys.executable, "-c", "pass"], cwd=tmp_path)
        thread = threading.Thread(target=lambda: other.append(run([sys.executable, "-c", "pass"], cwd=tmp_path).pgid))
        thread.start()
        thread.join()
        second = run([sys.executable, "-c", "pass"], cwd=tmp_path)
    after = run([sys.executable, "-c", "pass"], cwd=tmp_path)
    assert seen == [first.pgid, second.pgid]  # not the other thread's, not after the block
    assert other and after.pgid not in seen


def test_a_scope_stop_ends_its_commands_in_other_threads_refuses_new_ones_and_spares_other_scopes(
        tmp_path: Path) -> None:
    mine, theirs = proc.CommandScope(), proc.CommandScope()
    results: dict[str, proc.Finished] = {}

    def sleep_in(scope: proc.CommandScope, name: str, seconds: float) -> None:
        with scope.entered():
            results[name] = proc.run([sys.executable, "-c", f"import time; time.sleep({seconds})"], cwd=tmp_path,
                                     timeout_s=120)

    threads = [threading.Thread(target=sleep_in, args=(mine, "mine", 60)),
               threading.Thread(target=sleep_in, args=(theirs, "theirs", 2))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while not (mine.running and theirs.running) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mine.stop(grace_s=2) == 1
    for thread in threads:
        thread.join(30)
    assert results["mine"].returncode < 0 and not results["mine"].timed_out
    assert results["theirs"].ok  # another scope's command ran to its end
    with mine.entered(), pytest.raises(StartError, match="stopping"):
        proc.run([sys.executable, "-c", "pass"], cwd=tmp_path)
    assert proc.run([sys.executable, "-c", "pass"], cwd=tmp_path).ok  # outside the stopped scope
    assert mine.running == () and theirs.running == ()
