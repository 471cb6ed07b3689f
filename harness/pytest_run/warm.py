"""Warm pytest starts: the harness's side of harness/pytest_run/warm_server.py.

`python -m pytest` with this interpreter (the default `pytest.command`) is started as a fork of a server
that has imported pytest already, instead of a new interpreter: the same run for about a third of the
CPU time (benchmarks/bench_warm.py: 0.36x, the server's start included). What the child is, and what makes the server refuse a run (which then
starts cold), is said in warm_server.py. `pytest.warm_start: false` in harness.yaml turns it off.

`starter(argv, cwd, env)` is what harness.proc.run takes as `start`: None when the run cannot be warm
(another command, no pidfd here), else a WarmStart that forks the child and returns a handle that behaves
like the `subprocess.Popen` proc.run waits for and ends (pid, process group, wait, returncode), or None
when the server refused the run or could not start (then proc.run starts it cold); its `how` says which.
Servers are kept per interpreter-start environment for the life of the harness process and closed at its
exit; one that dies is replaced at the next run.
"""
from __future__ import annotations

import atexit
import json
import os
import socket
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path

from harness import proc

SERVER_MODULE = "_harness_warm_server"
MAX_MESSAGE = 1 << 16
START_TIMEOUT_S = 60.0
# Read by the interpreter only when it starts (or shaping what it loads then): a server serves the runs
# whose values match its own. PYTHONPATH and PYTHONDONTWRITEBYTECODE are applied per run by the child.
_PER_RUN = {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "PYTHONBREAKPOINT"}
_START_NAMES = {"HOME", "LANG", "LANGUAGE", "TMPDIR"}


def startup_key(env: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The part of `env` an interpreter reads when it starts: runs that differ in it need another server."""
    return tuple(sorted((name, value) for name, value in env.items()
                        if (name.startswith("PYTHON") and name not in _PER_RUN) or name.startswith("LC_")
                        or name in _START_NAMES))


def pytest_args(argv: Sequence[str]) -> tuple[str, ...] | None:
    """The pytest arguments of `argv` when it is this interpreter's `-m pytest`, else None."""
    if len(argv) >= 3 and argv[0] == sys.executable and argv[1] == "-m" and argv[2] == "pytest":
        return tuple(argv[3:])
    return None


class RunLost(OSError):
    """The server died between forking a run and reaping it: the run ended, but its exit status went with
    the server. The caller reruns the command as a new interpreter (runner._run_logged)."""


class WarmChild:
    """A pytest run forked by the server: what proc.run needs of a `subprocess.Popen`."""

    def __init__(self, server: _Server, pid: int, argv: Sequence[str]) -> None:
        self._server = server
        self.pid = pid
        self.args = tuple(argv)
        self.returncode: int | None = None
        self.stdin = None

    def wait(self, timeout: float | None = None) -> int:
        """The run's exit code (negative: the signal that ended it), once it has ended."""
        if self.returncode is None:
            if not proc.wait_pid(self.pid, timeout):
                raise proc.TimeoutExpired(self.args, timeout)
            try:
                self.returncode = self._server.reap(self.pid)
            except (OSError, ValueError, KeyError) as exc:
                _discard(self._server)
                raise RunLost(f"the warm pytest server (pid {self._server.pid}) died before it reaped run "
                              f"{self.pid} ({exc}); the run's exit status is lost") from None
        return self.returncode


class _Server:
    """One server process and its socket; requests from several threads are taken one at a time."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._lock = threading.Lock()
        self._folder = tempfile.TemporaryDirectory(prefix="harness-warm-")
        script = Path(self._folder.name) / f"{SERVER_MODULE}.py"
        script.write_text(resources.files("harness.pytest_run").joinpath("warm_server.py").read_text(encoding="utf-8"),
                          encoding="utf-8")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        server_env = {name: value for name, value in env.items() if name != "PYTHONPATH"}
        try:
            self._process = proc.spawn((sys.executable, str(script), str(theirs.fileno())), env=server_env,
                                       pass_fds=(theirs.fileno(),))
        finally:
            theirs.close()
        self._sock = ours
        self._sock.settimeout(START_TIMEOUT_S)
        try:
            self.pid = int(self._receive()["ready"])
        except (OSError, ValueError, KeyError) as exc:
            self.close()
            raise OSError(f"the warm pytest server did not start: {exc}") from None
        self._sock.settimeout(None)

    def _receive(self) -> dict:
        raw = self._sock.recv(MAX_MESSAGE)
        if not raw:
            raise OSError("the warm pytest server closed its socket")
        return json.loads(raw)

    def start(self, args: Sequence[str], cwd: Path, env: Mapping[str, str], out_fd: int) -> int | str:
        """Fork the run: its pid, or the server's reason to refuse it."""
        message = json.dumps({"op": "run", "args": list(args), "cwd": str(cwd), "env": dict(env)}).encode()
        with self._lock:
            socket.send_fds(self._sock, [message], [out_fd])
            answer = self._receive()
        return int(answer["pid"]) if "pid" in answer else str(answer["cold"])

    def reap(self, pid: int) -> int:
        with self._lock:
            self._sock.send(json.dumps({"op": "reap", "pid": pid}).encode())
            status = int(self._receive()["status"])
        return os.waitstatus_to_exitcode(status)

    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        self._sock.close()
        try:
            self._process.wait(timeout=5)
        except proc.TimeoutExpired:
            proc.kill_process_group(self._process.pid, 1.0)
            self._process.wait()
        self._folder.cleanup()


_servers: dict[tuple[tuple[str, str], ...], _Server] = {}
_failed: set[tuple[tuple[str, str], ...]] = set()
_registry_lock = threading.Lock()


def _server_for(env: Mapping[str, str]) -> _Server | None:
    key = startup_key(env)
    with _registry_lock:
        server = _servers.get(key)
        if server is not None and server.alive():
            return server
        if key in _failed:
            return None
        if server is not None:
            server.close()
        try:
            server = _servers[key] = _Server(env)
        except OSError:
            _servers.pop(key, None)
            _failed.add(key)
            return None
        return server


def _discard(server: _Server) -> None:
    """Forget a server that stopped answering (the next run starts a new one)."""
    with _registry_lock:
        for key, known in list(_servers.items()):
            if known is server:
                del _servers[key]
    server.close()


class WarmStart:
    """proc.run's `start` for one run; `how` says afterwards how the run started, for its evidence."""

    def __init__(self, args: Sequence[str], argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        self._args, self._argv, self._cwd, self._env = tuple(args), tuple(argv), cwd, env
        self.how = "started cold"

    def __call__(self, out_fd: int) -> WarmChild | None:
        for _attempt in range(2):  # a server that died since the last run is replaced once
            server = _server_for(self._env)
            if server is None:
                self.how = "started cold: the warm pytest server could not start"
                return None
            try:
                answer = server.start(self._args, self._cwd, self._env, out_fd)
            except (OSError, ValueError, KeyError):
                _discard(server)
                continue
            if isinstance(answer, str):
                self.how = f"started cold: {answer}"
                return None
            self.how = f"forked by the warm pytest server (pid {server.pid}; harness/pytest_run/warm_server.py)"
            return WarmChild(server, answer, self._argv)
        self.how = "started cold: the warm pytest server stopped answering twice"
        return None


def starter(argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> WarmStart | None:
    """How proc.run may start `argv` warm in `cwd` with the whole environment `env`, or None (start cold:
    another command than this interpreter's `-m pytest`, or no pidfd here)."""
    args = pytest_args(argv)
    if args is None or not proc.HAS_PIDFD:
        return None
    return WarmStart(args, argv, cwd, env)


@atexit.register
def close_all() -> None:
    """Close every server (each exits when its socket closes)."""
    with _registry_lock:
        for server in _servers.values():
            server.close()
        _servers.clear()
