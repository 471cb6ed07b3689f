"""The recorder's events, read back and folded into results; pytest's own error lines from its log.

`harness/pytest_run/recorder.py` writes one JSON object per line while pytest runs: `collected` (node ids),
`collectreport` (a collection error or skip), `hooks` (the project's hook implementations, once collection
ended), `report` (one phase of one test, with what the phase raised and what of pytest's machinery was found
replaced), `tampered` (the same, at the session's end) and `finished`. A run killed mid-write leaves at most a torn last line, which is dropped; everything before it
counts. pytest
reports usage errors, conftest import errors and internal errors before plugins are configured, so
those runs leave no events, and their log lines are what explains them.
"""
from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SelectorError
from harness.pytest_run.results import FAILING, Outcome, Phase, ProjectHook, PytestRun, TestResult, read_tail

MESSAGE_LIMIT = 300
MAX_ERROR_LINES = 20
# pytest's own error lines (usage errors, argparse, internal errors, conftest imports); "ERROR: " with its
# space, so that a test's captured "ERROR:root:..." log line is not taken for one.
_ERROR_LINE = re.compile(r"^(ERROR: |INTERNALERROR>|[\w.-]+: error: |ImportError while loading conftest)")


def read_events(
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
            f"{shlex.join(argv)}; is pytest installed for that python?\n--- log tail ---\n{read_tail(log_path, 30)}"
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
                f"{shlex.join(argv)}\n--- log tail ---\n{read_tail(log_path, 30)}"
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


def fold_events(events: Iterable[Mapping[str, Any]]) -> tuple[tuple[str, ...], tuple[TestResult, ...], bool]:
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


def record_problems(events: Sequence[Mapping[str, Any]], collected: Sequence[str], results: Sequence[TestResult], *,
                    returncode: int, timed_out: bool, collect_only: bool) -> tuple[str, ...]:
    """Why the recorder's events and the process's exit do not tell one story; empty when they do.

    The recorder writes `finished` (with the session's exit status) from the last `pytest_sessionfinish`
    implementation to run, so a process that ends before it (`os._exit` in a test, a fixture or a hook,
    `sys.exit` in a hook) leaves none. Judged only for a run that ended by itself after the recorder was
    configured: a run the harness killed (timeout) or a signal ended, and a usage error before plugins
    load, have verdicts of their own (harness.proof.verdicts)."""
    if timed_out or returncode < 0 or not any(e.get("event") == "configured" for e in events):
        return ()
    problems: list[str] = []
    finished = [e for e in events if e.get("event") == "finished"]
    if not finished:
        problems.append(f"the pytest process exited {returncode} before its session finished (os._exit, sys.exit "
                        "in a hook, a crash): what it had not reported never counted")
    elif finished[-1].get("exitstatus") != returncode:
        problems.append(f"pytest's session ended with exit status {finished[-1].get('exitstatus')}, but the "
                        f"process exited {returncode}: code that ran after the session (a hook, an atexit "
                        "handler, os._exit) changed the exit")
    failing = [r for r in results if r.failing]
    if returncode == 0 and failing:
        problems.append(f"pytest exited 0, but {len(failing)} test(s) failed in the record (first: "
                        f"{failing[0].nodeid})")
    if returncode == 1 and not failing:
        problems.append("pytest exited 1 (tests failed), but no test failed in the record: something besides "
                        "the tests failed the run (a plugin, a hook)")
    reported = {r.nodeid for r in results}
    missing = [nodeid for nodeid in collected if nodeid not in reported]
    if returncode == 0 and missing and not collect_only:
        problems.append(f"{len(missing)} collected test(s) never reported (first: {missing[0]}), yet pytest "
                        "exited 0")
    return tuple(problems + _forged(events))


def _rewritten(raw: str, outcome: str, wasxfail: object) -> bool:
    """A report better than what its phase raised: a failure or a skip reported as passed, a failure as a
    plain skip (an xfail is a skip that carries `wasxfail`)."""
    return (raw == "failed" and (outcome == "passed" or (outcome == "skipped" and wasxfail is None))) or (
        raw == "skipped" and outcome == "passed")


def _forged(events: Sequence[Mapping[str, Any]]) -> list[str]:
    """The recorder's own observations: reports better than what their phase raised, and pytest's machinery
    (or a test's function) replaced while the tests ran."""
    problems: list[str] = []
    tampered: dict[str, None] = {}
    for event in events:
        if event.get("event") == "tampered":
            tampered.update((str(name), None) for name in event.get("names") or ())
        if event.get("event") != "report":
            continue
        tampered.update((str(name), None) for name in event.get("tampered") or ())
        raw = event.get("raw")
        if isinstance(raw, list) and raw and _rewritten(str(raw[0]), str(event.get("outcome")), event.get("wasxfail")):
            raised = f"raised {raw[1]}" if len(raw) > 1 and raw[1] else "passed"
            problems.append(f"{event.get('nodeid')}: its {event.get('when')} {raised}, but its report says "
                            f"{event.get('outcome')}: a hook or a patch rewrote the report")
    if tampered:
        names = list(tampered)
        more = f" (+{len(names) - 3} more)" if len(names) > 3 else ""
        problems.append(f"pytest's machinery was replaced while the tests ran: {', '.join(names[:3])}{more}")
    return problems


def project_hooks(events: Iterable[Mapping[str, Any]]) -> tuple[ProjectHook, ...]:
    """The project's hook implementations the recorder listed once collection ended, each once."""
    found: dict[ProjectHook, None] = {}
    for event in events:
        if event.get("event") == "hooks":
            for impl in event.get("impls") or ():
                found[ProjectHook(str(impl.get("hook")), str(impl.get("file")), int(impl.get("line") or 0),
                                  str(impl.get("function")), str(impl.get("plugin")))] = None
    return tuple(found)


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


def error_lines(log_path: Path) -> tuple[str, ...]:
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


def results_document(run: PytestRun, events: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
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
        "record_problems": list(run.record_problems),
        "project_hooks": [{"hook": h.hook, "file": h.file, "line": h.line, "function": h.function,
                           "plugin": h.plugin} for h in run.project_hooks],
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
