"""Every subprocess of the harness starts here (git through gitpython aside, which gitops owns).

One runner with one set of promises, so pytest, the agent, the lint command and network git calls behave
alike:
- the command runs in its own process group (`start_new_session`), so a timeout or Ctrl-C ends its
  children too, and processes it leaves behind in its group are ended when it returns;
- stdout and stderr are merged, read line by line by a thread (a full pipe never blocks the command),
  written to the log file as they come, and optionally echoed to the console and kept in memory;
- stdin is empty, or bytes fed by a thread (a command that never reads its stdin cannot block a timeout);
- the harness's own remarks (a timeout, processes it had to end) are appended to the log as `[harness]`
  lines after the command's last output;
- a thread may watch the groups it starts (`watching_groups`): a parallel worker records them, so that the
  commands of a worker that is stopped, or whose harness died, can be ended;
- threads that work together (the overlapping stages of one proof) share a `CommandScope`: its `stop` ends
  the commands still running in it and refuses new ones there, when one stage fails or the iteration is
  interrupted, and leaves the commands of other scopes (another parallel worker's proof) alone. Commands
  started in a scope's threads are also reported to the watcher of the thread that made the scope.
"""
from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from harness.errors import HarnessError

KILL_GRACE_S = 5.0
# How long to wait for the output pipe to close once the command's group is gone. Only a process that
# left the group (setsid) can hold it open longer, and the harness must not hang on it.
DRAIN_TIMEOUT_S = 5.0
_watchers = threading.local()  # per thread: the callback of `watching_groups`
_scopes = threading.local()  # per thread: the CommandScope it runs in (`CommandScope.entered`)
TimeoutExpired = subprocess.TimeoutExpired
HAS_PIDFD = hasattr(os, "pidfd_open")
# `run(start=...)`: given the write end of the output pipe, start the command another way (a fork of
# harness.pytest_run.warm's server) and return a handle like a Popen (pid leading its own group, args,
# wait(timeout), returncode, stdin None), or None to start it here as usual.
Start = Callable[[int], "subprocess.Popen | None"]


class StartError(HarnessError):
    """The command could not be started at all (not found, not executable, no such directory).

    `not_found`: the program itself does not exist, as opposed to existing but refusing to start.
    """

    def __init__(self, argv: Sequence[str], cwd: Path, reason: str, *, not_found: bool = False) -> None:
        self.argv, self.cwd, self.reason, self.not_found = tuple(argv), cwd, reason, not_found
        super().__init__(f"cannot start {argv[0]!r} in {cwd}: {reason}")


@dataclass(frozen=True)
class Finished:
    """A finished command. `returncode` is negative (minus the signal) when it was killed."""

    argv: tuple[str, ...]
    cwd: Path
    returncode: int
    timed_out: bool
    duration_s: float
    pgid: int
    output: str | None  # merged stdout+stderr, when `capture` was asked for
    notes: tuple[str, ...]  # what the harness had to do: a timeout, processes left behind

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


class _Sink:
    """Where output lines go: the log, the console, memory. Thread-safe; notes go through it too."""

    def __init__(self, log: IO[bytes] | None, echo: bool, capture: bool) -> None:
        self.log, self.echo = log, echo
        self.memory = io.BytesIO() if capture else None
        self.lock = threading.Lock()

    def write(self, raw: bytes) -> None:
        with self.lock:
            if self.log is not None and not self.log.closed:
                self.log.write(raw)
                self.log.flush()
            if self.memory is not None:
                self.memory.write(raw)
        if self.echo:
            try:
                sys.stdout.write(raw.decode("utf-8", errors="replace"))
                sys.stdout.flush()
            except (OSError, ValueError):
                # A console that cannot take the text must not stop the draining: a full pipe would block
                # the command. The log still gets everything.
                self.echo = False

    def pump(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(stream.readline, b""):
                self.write(raw)
        except (OSError, ValueError):
            pass  # the pipe or the log was closed under us: the run is over either way
        finally:
            stream.close()


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        stream.write(data)
    except OSError:
        pass  # the command exited (or closed stdin) without reading all of it: its choice
    finally:
        with contextlib.suppress(OSError):
            stream.close()


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    log_path: Path | str | None = None,
    capture: bool = False,
    echo: bool = False,
    stdin: bytes | None = None,
    on_start: Callable[[int], None] | None = None,
    kill_grace_s: float = KILL_GRACE_S,
    label: str | None = None,
    start: Start | None = None,
) -> Finished:
    """Run `argv` in `cwd` in its own process group and wait for it (at most `timeout_s`).

    `env` is the whole environment (None: the harness's own). `on_start(pgid)` is called right after the
    start (the journal records the group so a restarted harness can end an orphan). On timeout, or when
    this call is interrupted (Ctrl-C), the whole group is terminated (TERM, `kill_grace_s`, KILL).
    `label` names the command in the harness's notes ("the agent timed out ...", "processes left in the
    agent's group ..."); without it they say "its group". `start` (see Start) starts it another way, with
    the same promises.
    Raises StartError when the command cannot be started.
    """
    argv = tuple(str(part) for part in argv)
    if not argv:
        raise ValueError("run() needs a command: argv is empty")
    cwd = Path(cwd)
    if not cwd.is_dir():
        raise StartError(argv, cwd, "no such directory")
    scope: CommandScope | None = getattr(_scopes, "scope", None)
    if scope is not None and scope.stopping:
        raise StartError(argv, cwd, "the harness is stopping these commands (a stage failed or it was "
                         "interrupted), so no new command starts")
    subject, group = (f"{label} ", f"{label}'s group") if label else ("", "its group")
    log_cm: contextlib.AbstractContextManager[IO[bytes] | None] = contextlib.nullcontext()
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log_cm = open(log_path, "wb")  # noqa: SIM115 - closed by the with below
    started = time.monotonic()
    with log_cm as log:
        sink = _Sink(log, echo, capture)
        child = _started_elsewhere(start, stdin) if start is not None else None
        if child is None:
            child = _popen(argv, cwd, env, stdin)
        pgid = child.pid  # start_new_session: the command leads a new group whose id is its pid
        if scope is not None:
            scope.add(pgid)
        assert child.stdout is not None
        reader = threading.Thread(target=sink.pump, args=(child.stdout,), daemon=True)
        reader.start()
        if child.stdin is not None:
            threading.Thread(target=_feed, args=(child.stdin, stdin), daemon=True).start()
        timed_out = False
        notes: list[str] = []
        try:
            watcher = getattr(_watchers, "callback", None)
            if watcher is not None:
                watcher(pgid)
            if on_start is not None:
                on_start(pgid)
            try:
                wait_for(child, timeout_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                how = kill_process_group(pgid, kill_grace_s)
                child.wait()
                notes.append(f"{subject}timed out after {timeout_s:g} s; its process group {pgid} was {how}")
        except BaseException:
            kill_process_group(pgid, kill_grace_s)
            child.wait()
            raise
        finally:
            # Left running, such processes would hold files or ports, or change the tree being proven.
            if not timed_out and kill_process_group(pgid, kill_grace_s) != "gone":
                notes.append(f"processes left in {group} {pgid} were ended")
            reader.join(DRAIN_TIMEOUT_S)
            if reader.is_alive():
                notes.append(f"output is still held open by a process outside {group}; stopped reading it")
            for note in notes:  # after the drain, so they follow the command's last output
                sink.write(f"[harness] {note}\n".encode())
            if scope is not None:
                scope.discard(pgid)
    output = None
    if sink.memory is not None:
        output = sink.memory.getvalue().decode("utf-8", errors="replace")
    return Finished(argv, cwd, child.returncode, timed_out, round(time.monotonic() - started, 3), pgid, output,
                    tuple(notes))


def _popen(argv: tuple[str, ...], cwd: Path, env: Mapping[str, str] | None, stdin: bytes | None) -> subprocess.Popen:
    try:
        return subprocess.Popen(
            argv, cwd=cwd, env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    except FileNotFoundError:
        raise StartError(argv, cwd, "the program was not found (install it, put it on PATH or give "
                         "its full path)", not_found=True) from None
    except OSError as exc:
        raise StartError(argv, cwd, str(exc.strerror or exc)) from None


def _started_elsewhere(start: Start, stdin: bytes | None) -> subprocess.Popen | None:
    """`start`'s handle with its output pipe attached as `stdout`, or None (then Popen starts it)."""
    if stdin is not None:
        return None
    read_end, write_end = os.pipe()
    try:
        child = start(write_end)
    finally:
        os.close(write_end)
    if child is None:
        os.close(read_end)
        return None
    child.stdout = os.fdopen(read_end, "rb")
    return child


def spawn(argv: Sequence[str], *, env: Mapping[str, str], pass_fds: Sequence[int] = ()) -> subprocess.Popen:
    """Start a long-lived helper process of the harness (its own session, no stdin or output) and return at
    once; the caller owns it and ends it. Raises OSError when it cannot start."""
    return subprocess.Popen(tuple(argv), env=dict(env), pass_fds=tuple(pass_fds), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_pid(pid: int, timeout_s: float | None) -> bool:
    """Wait until process `pid` (any process, not only a child of this one) has exited, at most `timeout_s`
    (None: no limit); True when it has. Needs a pidfd (HAS_PIDFD)."""
    pidfd = os.pidfd_open(pid)
    try:
        watch = select.poll()
        watch.register(pidfd, select.POLLIN)
        if timeout_s is None:
            while not watch.poll():
                pass
            return True
        deadline = time.monotonic() + timeout_s
        while not watch.poll(max(0, round((deadline - time.monotonic()) * 1000))):
            if time.monotonic() >= deadline:
                return False
        return True
    finally:
        os.close(pidfd)


def wait_for(child: subprocess.Popen, timeout_s: float | None) -> int:
    """`child.wait(timeout=timeout_s)`, woken by the kernel when the child exits.

    With a timeout, `Popen.wait` polls, sleeping up to 50 ms between looks: every command it waits for ends,
    on average, 25 ms late for the harness, and a proof waits for 5 to 8 pytest runs. A pidfd (Linux 5.3 and
    later) becomes readable the moment the process exits, so the wait sleeps in `poll` until then or the
    timeout. Where there is no pidfd (another OS, an old kernel, a sandbox that refuses it), it is
    `Popen.wait`. Raises subprocess.TimeoutExpired like `Popen.wait`.
    """
    if timeout_s is None:
        return child.wait()
    try:
        exited = wait_pid(child.pid, timeout_s)
    except (AttributeError, OSError):  # no pidfd here, or the child is already reaped
        return child.wait(timeout=timeout_s)
    if not exited:
        raise subprocess.TimeoutExpired(child.args, timeout_s)
    return child.wait()


@contextlib.contextmanager
def watching_groups(callback: Callable[[int], None]) -> Iterator[None]:
    """Call `callback(pgid)` for each process group `run` starts in this thread while the block runs."""
    previous = getattr(_watchers, "callback", None)
    _watchers.callback = callback
    try:
        yield
    finally:
        _watchers.callback = previous


class CommandScope:
    """The commands that threads working together start (the stages of one proof), to be ended together.

    Made in one thread; each thread that runs commands for it enters it (`entered`), which also hands it
    the maker's `watching_groups` callback. `stop` is for an error or an interruption: it ends the groups
    still running in the scope and refuses new commands there; other scopes' commands go on."""

    def __init__(self) -> None:
        self._groups: set[int] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: Callable[[int], None] | None = getattr(_watchers, "callback", None)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def running(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(sorted(self._groups))

    def add(self, pgid: int) -> None:
        with self._lock:
            self._groups.add(pgid)

    def discard(self, pgid: int) -> None:
        with self._lock:
            self._groups.discard(pgid)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Commands this thread starts while the block runs belong to the scope."""
        previous = getattr(_scopes, "scope", None)
        _scopes.scope = self
        try:
            if self._watcher is not None:
                with watching_groups(self._watcher):
                    yield
            else:
                yield
        finally:
            _scopes.scope = previous

    def stop(self, grace_s: float = KILL_GRACE_S) -> int:
        """Refuse new commands in the scope and end the process group of each one still running (their
        `run` calls return as for a killed command); returns how many were signalled."""
        self._stopping.set()
        ended = 0
        for pgid in self.running:
            if kill_process_group(pgid, grace_s) != "gone":
                ended += 1
        return ended


# --- processes and groups ------------------------------------------------------------------------------


def _proc_state(pid: int) -> str | None:
    """The one-letter state from /proc/<pid>/stat (None where /proc is unavailable or pid gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    return stat[stat.rfind(")") + 2 :].split(" ", 1)[0]


def process_alive(pid: int) -> bool:
    """Whether `pid` is a running process (a zombie, dead but not yet reaped, counts as dead)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    return _proc_state(pid) != "Z"


def group_alive(pgid: int) -> bool:
    """Whether any live (non-zombie) process is in group `pgid`."""
    try:
        os.killpg(pgid, 0)  # cheap, and the common answer at a command's end: nothing left at all
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process is in it; it may still be a zombie
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # Zombies (exited, not yet reaped) answer signals too: only /proc tells them from the living.
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split(" ")
        if len(fields) > 2 and fields[2] == str(pgid) and fields[0] != "Z":
            return True
    return False


def kill_process_group(pgid: int, grace_s: float = KILL_GRACE_S) -> str:
    """SIGTERM the process group, then SIGKILL what is left after `grace_s`.

    Returns "gone" (nothing to signal), "terminated" or "killed".
    """
    if pgid <= 1 or pgid == os.getpgrp():
        raise ValueError(f"refusing to signal process group {pgid}: it is init or the harness's own group")
    # Zombies (exited, not yet reaped) still receive signals without error, so ask /proc who is alive.
    if not group_alive(pgid):
        return "gone"
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return "gone"
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not group_alive(pgid):
            return "terminated"
        time.sleep(0.05)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return "terminated"
    return "killed"
