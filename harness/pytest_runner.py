"""Run pytest on any repository in a subprocess and return an immutable record of what happened.

The harness never imports the project under test. Each run writes its evidence into `out_dir`:
`{name}.command.txt` (argv and cwd), `{name}.log` (stdout+stderr), `{name}.junit.xml` (pytest's own
report, kept as evidence) and `{name}.results.json` (one folded result per node id, from the
recorder plugin in `harness/_pytest_recorder.py`, which is what the verdicts read).
"""
from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from harness.errors import SelectorError

RECORDER_MODULE = "_harness_pytest_recorder"
RECORDER_OUTPUT_ENV = "HARNESS_PYTEST_RECORDER_OUT"
# Roots whose modules the recorder hides in the pytest process (see _pytest_recorder._IsolatingFinder).
ISOLATE_ENV = "HARNESS_ISOLATE_FROM"
DEFAULT_COMMAND: tuple[str, ...] = (sys.executable, "-m", "pytest")
MESSAGE_LIMIT = 300
MAX_ERROR_LINES = 20

EXIT_MEANINGS = {
    0: "ok",
    1: "tests failed",
    2: "interrupted or collection errors",
    3: "internal error",
    4: "usage error",
    5: "no tests collected",
}
# Set by an outer pytest (e.g. the harness's own suite under xdist); the project's tests may branch on them.
_INHERITED_PYTEST_VARS = (
    ISOLATE_ENV,
    "PYTEST_XDIST_WORKER",
    "PYTEST_XDIST_WORKER_COUNT",
    "PYTEST_XDIST_TESTRUNUID",
    "PYTEST_CURRENT_TEST",
    RECORDER_OUTPUT_ENV,
)
# pytest's own error lines (usage errors, argparse, internal errors, conftest imports); "ERROR: " with its
# space, so that a test's captured "ERROR:root:..." log line is not taken for one.
_ERROR_LINE = re.compile(r"^(ERROR: |INTERNALERROR>|[\w.-]+: error: |ImportError while loading conftest)")


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    XFAILED = "xfailed"
    XPASSED = "xpassed"


class Phase(StrEnum):
    COLLECT = "collect"
    SETUP = "setup"
    CALL = "call"
    TEARDOWN = "teardown"


FAILING = frozenset({Outcome.FAILED, Outcome.ERROR})


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


@dataclass(frozen=True)
class TestResult:
    """One test, its setup/call/teardown folded into one outcome the way pytest counts it."""

    __test__ = False  # not a test class, despite the name

    nodeid: str
    outcome: Outcome
    phase: Phase
    exc_type: str | None
    failure_kind: str | None  # "assertion" | "error" when failing, else None
    message: str
    duration_s: float

    @property
    def failing(self) -> bool:
        return self.outcome in FAILING

    def describe(self) -> str:
        """One line for a summary: node id, outcome, and why."""
        detail = []
        if self.failure_kind:
            detail.append(self.failure_kind if self.phase == Phase.CALL else f"{self.failure_kind} in {self.phase}")
        if self.exc_type and not self.message.startswith(self.exc_type):
            detail.append(self.exc_type)
        head = f"{self.nodeid} {self.outcome}"
        if detail:
            head += f" ({', '.join(detail)})"
        return f"{head}: {self.message}" if self.message else head


@dataclass(frozen=True)
class PytestRun:
    """What one pytest subprocess did. Paths point at the evidence files in the run's out_dir."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    returncode: int
    exit_meaning: str
    duration_s: float
    timed_out: bool
    results: tuple[TestResult, ...]
    collected: tuple[str, ...]
    log_path: Path
    junit_path: Path
    results_path: Path
    timeout_s: float | None = None
    session_finished: bool = False  # the recorder saw pytest's sessionfinish
    error_lines: tuple[str, ...] = ()  # pytest's ERROR:/INTERNALERROR lines from the log, in order

    def counts(self) -> dict[str, int]:
        """Outcome -> number of results, in a fixed order, outcomes with no result left out."""
        counts = {outcome.value: 0 for outcome in Outcome}
        for result in self.results:
            counts[result.outcome.value] += 1
        return {outcome: n for outcome, n in counts.items() if n}

    def failing(self) -> tuple[TestResult, ...]:
        return tuple(result for result in self.results if result.failing)

    def nodeids_with(self, outcome: str) -> tuple[str, ...]:
        return tuple(result.nodeid for result in self.results if result.outcome == outcome)

    def collection_errors(self) -> tuple[TestResult, ...]:
        return tuple(r for r in self.results if r.phase == Phase.COLLECT and r.outcome == Outcome.ERROR)

    def not_run(self) -> tuple[str, ...]:
        """Collected node ids with no result (the run stopped early, e.g. -x, a timeout, an interrupt)."""
        seen = {result.nodeid for result in self.results}
        return tuple(nodeid for nodeid in self.collected if nodeid not in seen)

    def usage_error(self) -> str:
        """The most telling of pytest's error lines, or the exit meaning when there is none."""
        for line in self.error_lines:
            if not line.startswith("ERROR: usage:"):
                return line
        return self.error_lines[0] if self.error_lines else f"pytest exited {self.returncode} ({self.exit_meaning})"

    def summary(self) -> str:
        counts = ", ".join(f"{n} {outcome}" for outcome, n in self.counts().items()) or "no results"
        return f"{counts}; exit {self.returncode} ({self.exit_meaning}) in {self.duration_s:.1f}s"

    def log_tail(self, n_lines: int = 40) -> str:
        return _tail(self.log_path, n_lines)


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
) -> PytestRun:
    """Run pytest with `args` in `cwd` and record it under `out_dir` as `{name}.*`.

    argv = command + extra_args + recorder args + args. `command` defaults to `python -m pytest` for
    the harness's own python; "{python}" inside a configured command is replaced by it. `env` holds
    variables added to (or overriding) the harness's environment. On timeout the whole process group
    is killed and the run is returned with `timed_out=True` and its log kept.
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
            resources.files("harness").joinpath("_pytest_recorder.py").read_text(encoding="utf-8"),
            encoding="utf-8",
        )
        events_path = plugin_dir / "events.jsonl"
        child_env = _child_env(env, plugin_dir, events_path)
        _write_atomic(out_dir / f"{name}.command.txt", _command_text(argv, cwd, env, plugin_dir))
        returncode, timed_out, duration_s = _run_in_group(argv, cwd, child_env, log_path, timeout_s)
        events = _read_events(events_path, log_path, argv, returncode, timed_out)

    collected, results, finished = _fold_events(events)
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
        duration_s=duration_s,
        timed_out=timed_out,
        results=results,
        collected=collected,
        log_path=log_path,
        junit_path=junit_path,
        results_path=results_path,
        timeout_s=timeout_s,
        session_finished=finished,
        error_lines=_error_lines(log_path),
    )
    _write_atomic(results_path, json.dumps(_results_document(run, events), indent=2) + "\n")
    return run


def _child_env(env: Mapping[str, str] | None, plugin_dir: Path, events_path: Path) -> dict[str, str]:
    child = {k: v for k, v in os.environ.items() if k not in _INHERITED_PYTEST_VARS}
    child.update(env or {})
    pythonpath = child.get("PYTHONPATH")
    child["PYTHONPATH"] = f"{plugin_dir}{os.pathsep}{pythonpath}" if pythonpath else str(plugin_dir)
    child["PYTHONDONTWRITEBYTECODE"] = "1"
    child[RECORDER_OUTPUT_ENV] = str(events_path)
    return child


def _command_text(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None, plugin_dir: Path) -> str:
    lines = [
        f"cd {shlex.quote(str(cwd))}",
        shlex.join(argv),
        "",
        f"# environment: PYTHONDONTWRITEBYTECODE=1, PYTHONPATH starts with {plugin_dir}, which held",
        f"# harness/_pytest_recorder.py as {RECORDER_MODULE}.py (deleted after the run)",
    ]
    if env:
        lines.append(f"# variables set by the caller (values not recorded): {', '.join(sorted(env))}")
    return "\n".join(lines) + "\n"


def _run_in_group(
    argv: Sequence[str], cwd: Path, env: dict[str, str], log_path: Path, timeout_s: float | None
) -> tuple[int, bool, float]:
    """Run argv in its own process group, output to the log; return (returncode, timed_out, seconds)."""
    partial = log_path.with_name(log_path.name + ".partial")
    timed_out = False
    start = time.monotonic()
    with open(partial, "wb") as log:
        try:
            proc = subprocess.Popen(
                list(argv), cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise SelectorError(
                f"cannot start pytest command {shlex.join(argv[:3])} ...: {exc.strerror or exc}; "
                "check the configured pytest command"
            ) from None
        try:
            returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            returncode = proc.wait()
        finally:
            if proc.returncode is None:  # interrupted (e.g. Ctrl-C in the harness): leave nothing behind
                _kill_group(proc.pid)
                proc.wait()
        # Children a test left running would outlive the run and hold files or ports of the next one.
        _kill_group(proc.pid)
    duration_s = time.monotonic() - start
    os.replace(partial, log_path)
    return returncode, timed_out, duration_s


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


def _read_events(
    events_path: Path, log_path: Path, argv: Sequence[str], returncode: int, timed_out: bool
) -> list[dict[str, Any]]:
    """The recorder's events; raise when pytest evidently never got as far as loading the recorder."""
    if not events_path.exists():
        # pytest reports usage errors, conftest import errors and internal errors before plugins
        # are configured; those runs are still meaningful (the verdicts quote the log).
        if timed_out or returncode in (2, 3, 4):
            return []
        raise SelectorError(
            f"pytest did not start or did not load the harness recorder (exit {returncode}) for "
            f"{shlex.join(argv)}; is pytest installed for that python?\n--- log tail ---\n{_tail(log_path, 30)}"
        )
    text = events_path.read_text(encoding="utf-8", errors="replace")
    lines = text.splitlines()
    events: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            if index == len(lines) - 1 and not text.endswith("\n"):
                break  # the process died mid-write; everything before it is intact
            raise SelectorError(
                f"the harness recorder wrote an unreadable line {index + 1} ({line[:80]!r}) for "
                f"{shlex.join(argv)}\n--- log tail ---\n{_tail(log_path, 30)}"
            ) from None
        if isinstance(event, dict):
            events.append(event)
    return events


@dataclass(frozen=True)
class _PhaseReport:
    when: str
    outcome: str
    wasxfail: str | None
    exc_type: str | None
    is_assertion: bool
    message: str
    duration_s: float


def _fold_events(events: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, ...], tuple[TestResult, ...], bool]:
    """Recorder events -> (collected node ids, one result per node id in first-seen order, finished)."""
    collected: dict[str, None] = {}
    collect_results: dict[str, TestResult] = {}
    phases: dict[str, list[_PhaseReport]] = {}
    finished = False
    for event in events:
        kind = event.get("event")
        if kind == "collected":
            collected.update((str(nodeid), None) for nodeid in event.get("nodeids", ()))
        elif kind == "collectreport":
            collect_results[str(event["nodeid"])] = _collect_result(event)
        elif kind == "report":
            phases.setdefault(str(event["nodeid"]), []).append(
                _PhaseReport(
                    when=str(event.get("when")),
                    outcome=str(event.get("outcome")),
                    wasxfail=event.get("wasxfail"),
                    exc_type=event.get("exc_type"),
                    is_assertion=bool(event.get("is_assertion")),
                    message=str(event.get("message") or ""),
                    duration_s=float(event.get("duration_s") or 0.0),
                )
            )
        elif kind == "finished":
            finished = True
    results = [*collect_results.values(), *(_fold_phases(nodeid, reports) for nodeid, reports in phases.items())]
    return tuple(collected), tuple(results), finished


def _collect_result(event: Mapping[str, Any]) -> TestResult:
    failed = event.get("outcome") == "failed"
    return TestResult(
        nodeid=str(event["nodeid"]),
        outcome=Outcome.ERROR if failed else Outcome.SKIPPED,
        phase=Phase.COLLECT,
        exc_type=event.get("exc_type") if failed else None,
        failure_kind="error" if failed else None,
        message=_clip(str(event.get("message") or "")),
        duration_s=0.0,
    )


def _fold_phases(nodeid: str, reports: Sequence[_PhaseReport]) -> TestResult:
    """Fold one test's setup/call/teardown reports into the single outcome pytest would count."""
    by_when = {report.when: report for report in reports}
    setup, call, teardown = by_when.get("setup"), by_when.get("call"), by_when.get("teardown")
    duration_s = sum(report.duration_s for report in reports)

    def result(outcome: Outcome, phase: Phase, report: _PhaseReport | None, message: str | None = None) -> TestResult:
        failing = outcome in FAILING
        exc_type = report.exc_type if report is not None and outcome not in (Outcome.SKIPPED, Outcome.PASSED) else None
        kind = None
        if failing:
            kind = "assertion" if report is not None and report.is_assertion else "error"
        text = message if message is not None else (report.message if report is not None else "")
        return TestResult(nodeid, outcome, phase, exc_type, kind, _clip(text), duration_s)

    if setup is None or (setup.outcome == "passed" and call is None):
        folded = result(Outcome.ERROR, Phase.CALL, None, "did not finish (the run stopped inside this test)")
    elif setup.outcome == "failed":
        folded = result(Outcome.ERROR, Phase.SETUP, setup)
    elif setup.outcome == "skipped":
        folded = result(Outcome.XFAILED if setup.wasxfail is not None else Outcome.SKIPPED, Phase.SETUP, setup)
    else:
        assert call is not None
        if call.outcome == "failed":
            outcome = Outcome.FAILED
        elif call.outcome == "skipped":
            outcome = Outcome.XFAILED if call.wasxfail is not None else Outcome.SKIPPED
        else:
            outcome = Outcome.XPASSED if call.wasxfail is not None else Outcome.PASSED
        folded = result(outcome, Phase.CALL, call)
    if teardown is not None and teardown.outcome == "failed" and not folded.failing:
        folded = result(Outcome.ERROR, Phase.TEARDOWN, teardown)
    return folded


def _clip(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= MESSAGE_LIMIT else line[: MESSAGE_LIMIT - 3] + "..."


def _error_lines(log_path: Path) -> tuple[str, ...]:
    """pytest's own error lines, in order; a conftest ImportError gets its exception appended, and of
    an internal error's traceback only the last line (the exception) is kept."""
    found: list[str] = []
    last_internal = None
    conftest_index = None
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for raw in log:
            line = raw.rstrip("\n")
            if line.startswith("INTERNALERROR>"):
                last_internal = line
            elif _ERROR_LINE.match(line):
                if len(found) < MAX_ERROR_LINES:
                    found.append(_clip(line))
                conftest_index = len(found) - 1 if line.startswith("ImportError while loading conftest") else None
            elif conftest_index is not None and line.startswith("E "):
                head = found[conftest_index].split(" -> ")[0].rstrip(".")
                found[conftest_index] = _clip(f"{head} -> {line[1:].strip()}")
            elif not line.strip():
                conftest_index = None
    if last_internal is not None:
        found.append(_clip(last_internal))
    return tuple(found)


def _tail(path: Path, n_lines: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 4096 - 1024 * max(n_lines, 0)))  # enough for typical lines, not the whole log
            data = handle.read()
    except OSError as exc:
        return f"(log {path} unreadable: {exc.strerror or exc})"
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-n_lines:]) if n_lines > 0 else ""


def _results_document(run: PytestRun, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    phases: dict[str, list[Mapping[str, Any]]] = {}
    for event in events:
        if event.get("event") == "report":
            phases.setdefault(str(event["nodeid"]), []).append(
                {k: v for k, v in event.items() if k not in ("event", "nodeid")}
            )
    return {
        "format": 1,
        "name": run.name,
        "command": list(run.command),
        "cwd": str(run.cwd),
        "returncode": run.returncode,
        "exit_meaning": run.exit_meaning,
        "timed_out": run.timed_out,
        "session_finished": run.session_finished,
        "duration_s": round(run.duration_s, 3),
        "counts": run.counts(),
        "collected": list(run.collected),
        "results": {
            r.nodeid: {
                "outcome": r.outcome.value,
                "phase": r.phase.value,
                "exc_type": r.exc_type,
                "failure_kind": r.failure_kind,
                "message": r.message,
                "duration_s": round(r.duration_s, 6),
                "phases": phases.get(r.nodeid, []),
            }
            for r in run.results
        },
    }


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
