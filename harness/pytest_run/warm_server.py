"""The warm pytest server: a process that has imported pytest once and forks one child per pytest run.

A cold `python -m pytest` spends most of its CPU time starting the interpreter and importing pytest (about
0.5 s here), and the tests of a proof usually take a fraction of that. This server imports pytest and its
built-in plugins once, moves those objects out of the garbage collector's sight (`gc.freeze`: a fork child
that collects would otherwise touch, and copy, every page of them), and then, for each run the harness asks
for, forks a child that becomes what `python -m pytest ARGS` started in that directory with that
environment would be: a new session (its own process group), stdin from /dev/null, stdout and stderr into
the descriptor the harness passed, the working directory, the whole environment, `sys.path` as the
interpreter builds it (the directory, then PYTHONPATH, then this interpreter's own path) and pytest's
`__main__` run by runpy, as `-m` does. The child exits like any interpreter: its atexit handlers and threads
are finished by the normal shutdown.

A run the fork could not reproduce is refused with the reason, and the harness starts it cold: a module
this server already imported (pytest, pluggy, a standard module such as `json`) that the run's directory or
PYTHONPATH would shadow. The harness starts one server per interpreter-start environment (the PYTHON*
variables that Python reads only at start, the locale, HOME), so the flags, the encodings and the user
site directory are those a cold start would get.

Like the recorder, this file is run from a copy by path: it depends on the standard library and pytest only
and never imports the harness, so nothing of the harness is in the children's `sys.modules`.

Protocol (harness/pytest_run/warm.py): one SOCK_SEQPACKET socket, one JSON object per message.
  <- {"ready": pid}                                           once, after the imports
  -> {"op": "run", "args": [...], "cwd": ..., "env": {...}}   with one descriptor: the child's stdout
  <- {"pid": pid} | {"cold": reason}                          pid: the child leads its session already
  -> {"op": "reap", "pid": pid}
  <- {"status": wait status}
The server exits when the socket closes.
"""
from __future__ import annotations

import gc
import importlib
import json
import os
import runpy
import socket
import sys

MAX_MESSAGE = 1 << 22


def _preload() -> None:
    import _pytest.config
    import pytest  # noqa: F401

    for name in _pytest.config.default_plugins:
        try:
            importlib.import_module(f"_pytest.{name}")
        except ImportError:
            pass


def _send(sock: socket.socket, message: dict) -> None:
    sock.send(json.dumps(message).encode())


def _shadowed(cwd: str, pythonpath: list[str], preloaded: frozenset[str]) -> str | None:
    """A preloaded top-level module that the run's own path entries would provide instead, or None."""
    for folder in (cwd, *pythonpath):
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for entry in names:
            stem = entry.split(".", 1)[0]
            if stem in preloaded and (entry == stem or entry.endswith((".py", ".pyc", ".so", ".pyd"))):
                return f"{os.path.join(folder, entry)} would shadow the module {stem!r} this server imported"
    return None


def _path_entries(cwd: str, env: dict[str, str]) -> list[str]:
    value = env.get("PYTHONPATH", "")
    return [os.path.abspath(os.path.join(cwd, part)) for part in value.split(os.pathsep) if part]


def _fork(request: dict, out_fd: int, sock: socket.socket, base_path: list[str]) -> int:
    """Fork the child for `request` and return its pid once it leads its own session (parent only)."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_r)
        sock.close()
        os.setsid()
        os.write(ready_w, b"1")
        os.close(ready_w)
        _become(request, out_fd, base_path)
        raise _Child()  # unwinds to the top level, which runs pytest
    os.close(ready_w)
    os.read(ready_r, 1)
    os.close(ready_r)
    return pid


class _Child(BaseException):
    """Raised in a fork child: leave the server's loop for the top level, which runs pytest."""


def _become(request: dict, out_fd: int, base_path: list[str]) -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    os.close(out_fd)
    cwd, env = request["cwd"], request["env"]
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    path: list[str] = []
    for entry in (cwd, *_path_entries(cwd, env), *base_path):
        if entry not in path:
            path.append(entry)
    sys.path[:] = path
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    sys.argv = ["-m", *request["args"]]


def serve(sock: socket.socket) -> None:
    base_path = list(sys.path[1:])  # sys.path[0] is this file's folder
    _preload()
    preloaded = frozenset(name.partition(".")[0] for name in sys.modules) - set(sys.builtin_module_names)
    gc.collect()
    gc.freeze()
    _send(sock, {"ready": os.getpid()})
    while True:
        try:
            raw, fds, _flags, _addr = socket.recv_fds(sock, MAX_MESSAGE, 1)
        except OSError:
            return
        if not raw:
            return
        request = json.loads(raw)
        if request["op"] == "reap":
            _pid, status = os.waitpid(request["pid"], 0)
            _send(sock, {"status": status})
            continue
        out_fd = fds[0]
        reason = _shadowed(request["cwd"], _path_entries(request["cwd"], request["env"]), preloaded)
        if reason is not None:
            os.close(out_fd)
            _send(sock, {"cold": reason})
            continue
        pid = _fork(request, out_fd, sock, base_path)  # raises _Child in the child
        os.close(out_fd)
        _send(sock, {"pid": pid})

if __name__ == "__main__":
    server_socket = socket.socket(fileno=int(sys.argv[1]))
    try:
        serve(server_socket)
    except _Child:
        runpy.run_module("pytest", run_name="__main__", alter_sys=True)
