"""Run pytest on any repository in a subprocess and return an immutable record of what happened.

The harness never imports the project under test. Each run writes its evidence into `out_dir`:
`{name}.command.txt` (argv and cwd), `{name}.log` (stdout+stderr), `{name}.junit.xml` (pytest's own
report, kept as evidence) and `{name}.results.json` (one folded result per node id, from the
recorder plugin in `harness/pytest_run/recorder.py`, which is what the verdicts read). pytest runs through
harness.proc: its own process group, ended whole on a timeout, and nothing it leaves behind survives it.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from harness import proc
from harness.atomic import atomic_write_text
from harness.config import Config
from harness.errors import SelectorError
from harness.pytest_run import warm
from harness.pytest_run.environment import pytest_environ, removed_variables
from harness.pytest_run.events import (
    error_lines,
    fold_events,
    project_hooks,
    read_events,
    record_problems,
    results_document,
)
from harness.pytest_run.results import PytestRun

RECORDER_MODULE = "_harness_pytest_recorder"
RECORDER_OUTPUT_ENV = "HARNESS_PYTEST_RECORDER_OUT"
# Roots whose modules the recorder hides in the pytest process (see harness.pytest_run.recorder._IsolatingFinder).
ISOLATE_ENV = "HARNESS_ISOLATE_FROM"
DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "pytest")

EXIT_MEANINGS = {
    0: "ok",
    1: "tests failed",
    2: "interrupted or collection errors",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}
@dataclass(frozen=True)
class Selector:
    """A pytest selector as configured: a node id, a path, or a path with pytest args."""

    raw: str
    args: tuple[str, ...]

    @property
    def is_plain(self) -> bool:
        """True when every arg is a node id or a path (no option such as `-k`)."""
        return not any(arg.startswith("-") for arg in self.args)

    def __str__(self) -> str:
        return self.raw


@dataclass(frozen=True)
class PytestSettings:
    """How a pytest run starts: argv prefix (None: this Python's `-m pytest`), extra environment, timeout
    (None: none), whether it may start warm (harness.pytest_run.warm). One type for the iteration's stages
    and the selector commands."""

    command: tuple[str, ...] | None = None
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timeout_s: float | None = None
    warm_start: bool = True

    @classmethod
    def from_config(cls, config: Config) -> PytestSettings:
        return cls(tuple(config.pytest.argv()), MappingProxyType(dict(config.pytest.env)),
                   float(config.pytest.timeout_s), config.pytest.warm_start)

    def isolated_from(self, root: Path) -> PytestSettings:
        """For a run in a temporary worktree: hide the modules of the working tree at `root` (an editable
        install of it would otherwise leak the changed code into the base commit's run)."""
        return replace(self, env=MappingProxyType({**self.env, ISOLATE_ENV: str(root)}))


def parse_selector(raw: str) -> Selector:
    """Split `raw` like a shell would (never running one); reject empty text and unbalanced quotes."""
    if not isinstance(raw, str):
        raise SelectorError(f"selector must be text, got {type(raw).__name__}: {raw!r}")
    try:
        args = tuple(shlex.split(raw))
    except ValueError as exc:
        raise SelectorError(
            f"selector {raw!r} cannot be split into pytest arguments ({exc}); balance its quotes"
        ) from None
    if not args:
        raise SelectorError(f"selector {raw!r} is empty; give a node id, a path, or a path with pytest args")
    return Selector(raw=raw, args=args)


def run_pytest(
    args: Sequence[str],
    *,
    cwd: Path | str,
    out_dir: Path | str,
    name: str,
    command: Sequence[str] | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    collect_only: bool = False,
    warm_start: bool = True,
) -> PytestRun:
    """Run pytest with `args` in `cwd` and record it under `out_dir` as `{name}.*`.

    argv = command + extra_args + recorder args + args. `command` defaults to `python -m pytest` for
    the harness's own python; "{python}" inside a configured command is replaced by it. `env` holds
    variables added to (or overriding) the harness's environment, from which the variables that change
    what pytest selects or how tests end are first removed (harness.pytest_run.environment; their names
    go into `{name}.command.txt`). On timeout the whole process group is killed and the run is
    returned with `timed_out=True` and its log kept. `warm_start`: this interpreter's `-m pytest` may start
    as a fork of a server that imported pytest already (harness.pytest_run.warm); how it started is the
    last line of `{name}.command.txt`.
    Raises SelectorError when pytest could not be started or its recorder left no usable output.
    """
    if isinstance(args, str):
        raise SelectorError(f"run_pytest takes a sequence of arguments, not the string {args!r}; pass Selector.args")
    if not name or name != Path(name).name or name in {".", ".."}:
        raise ValueError(f"run name must be a plain file name, got {name!r}")
    if timeout_s is not None and timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    cwd = Path(cwd).resolve()
    if not cwd.is_dir():
        raise SelectorError(f"cannot run pytest in {cwd}: not a directory")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / f"{name}.log"
    junit_path = out_dir / f"{name}.junit.xml"
    results_path = out_dir / f"{name}.results.json"
    junit_path.unlink(missing_ok=True)  # pytest writes none when killed: an old one must not pass for this run's

    base = tuple(c.replace("{python}", sys.executable) for c in (DEFAULT_COMMAND if command is None else command))
    if not base:
        raise SelectorError("the pytest command is empty; configure e.g. ['{python}', '-m', 'pytest']")
    recorder_args = ["-p", "no:cacheprovider", "-p", RECORDER_MODULE, f"--junitxml={junit_path}"]
    if collect_only:
        recorder_args += ["--collect-only", "-q"]
    argv = (*base, *extra_args, *recorder_args, *args)

    with tempfile.TemporaryDirectory(prefix="harness-pytest-") as tmp:
        plugin_dir = Path(tmp)
        (plugin_dir / f"{RECORDER_MODULE}.py").write_text(
            resources.files("harness.pytest_run").joinpath("recorder.py").read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        events_path = plugin_dir / "events.jsonl"
        child_env = _child_env(env, plugin_dir, events_path)
        command_text = _command_text(argv, cwd, env, plugin_dir, removed_variables(os.environ, env))
        atomic_write_text(out_dir / f"{name}.command.txt", command_text)
        finished, how = _run_logged(argv, cwd, child_env, log_path, timeout_s, warm_start)
        atomic_write_text(out_dir / f"{name}.command.txt", f"{command_text}# {how}\n")
        returncode, timed_out = finished.returncode, finished.timed_out
        events = read_events(events_path, log_path, argv, returncode, timed_out)

    collected, results, session_finished = fold_events(events)
    if timed_out:
        exit_meaning = f"timed out after {timeout_s:g}s (process group killed)"
    elif returncode < 0:
        exit_meaning = f"killed by signal {_signal_name(-returncode)}"
    else:
        exit_meaning = EXIT_MEANINGS.get(returncode, "unknown exit code")
    run = PytestRun(
        name=name,
        command=argv,
        cwd=cwd,
        returncode=returncode,
        exit_meaning=exit_meaning,
        duration_s=finished.duration_s,
        timed_out=timed_out,
        results=results,
        collected=collected,
        log_path=log_path,
        junit_path=junit_path,
        results_path=results_path,
        timeout_s=timeout_s,
        session_finished=session_finished,
        error_lines=error_lines(log_path),
        record_problems=record_problems(events, collected, results, returncode=returncode, timed_out=timed_out,
                                        collect_only=collect_only),
        project_hooks=project_hooks(events),
    )
    atomic_write_text(results_path, json.dumps(results_document(run, events), indent=2) + "\n")
    return run


def _child_env(env: Mapping[str, str] | None, plugin_dir: Path, events_path: Path) -> dict[str, str]:
    child = pytest_environ(os.environ, env)
    pythonpath = child.get("PYTHONPATH")
    child["PYTHONPATH"] = f"{plugin_dir}{os.pathsep}{pythonpath}" if pythonpath else str(plugin_dir)
    child["PYTHONDONTWRITEBYTECODE"] = "1"
    child[RECORDER_OUTPUT_ENV] = str(events_path)
    return child


def _command_text(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None, plugin_dir: Path,
                  removed: Sequence[str]) -> str:
    lines = [
        f"cd {shlex.quote(str(cwd))}",
        shlex.join(argv),
        "",
        f"# environment: PYTHONDONTWRITEBYTECODE=1, PYTHONPATH starts with {plugin_dir}, which held",
        f"# harness/pytest_run/recorder.py as {RECORDER_MODULE}.py (deleted after the run)",
    ]
    if env:
        lines.append(f"# variables set by the caller (values not recorded): {', '.join(sorted(env))}")
    if removed:
        lines.append(f"# removed from the harness's environment (harness/pytest_run/environment.py): "
                     f"{', '.join(removed)}")
    return "\n".join(lines) + "\n"


def _run_logged(
    argv: Sequence[str], cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float | None, warm_start: bool
) -> tuple[proc.Finished, str]:
    """Run argv through harness.proc into `<log>.partial`, renamed to the log once the run is over; with
    how it started (harness.pytest_run.warm: a fork of the warm server, or a new interpreter)."""
    partial = log_path.with_name(log_path.name + ".partial")
    start = warm.starter(argv, cwd, env) if warm_start else None
    try:
        try:
            finished = proc.run(argv, cwd=cwd, env=env, timeout_s=timeout_s, log_path=partial, start=start)
            how = start.how if start is not None else ("started cold (pytest.warm_start: false)" if not warm_start
                                                         else "started cold (a command other than this "
                                                              "interpreter's `-m pytest`)")
        except warm.RunLost as exc:  # the run's outcome is unknown: run it again, as a new interpreter
            finished = proc.run(argv, cwd=cwd, env=env, timeout_s=timeout_s, log_path=partial)
            how = f"forked by the warm pytest server; {exc}, so it was run again as a new interpreter"
    except proc.StartError as exc:
        partial.unlink(missing_ok=True)
        raise SelectorError(
            f"cannot start pytest command {shlex.join(argv[:3])} ...: {exc.reason}; "
            "check the configured pytest command"
        ) from None
    os.replace(partial, log_path)
    return finished, how


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
