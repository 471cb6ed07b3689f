"""What one pytest run produced, as immutable records: one folded result per test, and the run.

A test's setup, call and teardown are folded into the one outcome pytest itself would count
(harness.pytest_run.events does the folding); a collection error is a result too, in phase `collect`.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path


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
class ProjectHook:
    """A hook implementation pytest ran with, whose code lies in the project's tree: `file` (relative to the
    run's directory) and `line` where its function starts, and the plugin that registered it (a conftest.py's
    path, or a module's name)."""

    hook: str
    file: str
    line: int
    function: str
    plugin: str


def count_text(counts: Mapping[str, int], *, none: str = "no results") -> str:
    """`3 passed, 1 failed` from outcome (or status) -> number, in the mapping's order; `none` if empty."""
    return ", ".join(f"{n} {outcome}" for outcome, n in counts.items()) or none


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
    # why the record and the exit disagree (harness.pytest_run.events.record_problems): no verdict trusts
    # such a run
    record_problems: tuple[str, ...] = ()
    project_hooks: tuple[ProjectHook, ...] = ()  # the project's hook implementations, once collection ended

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

    def untrusted_reason(self) -> str:
        """Why no verdict can rest on this run (its first record problem, and how many more); "" if none."""
        if not self.record_problems:
            return ""
        more = f" (+{len(self.record_problems) - 1} more)" if len(self.record_problems) > 1 else ""
        return f"the run's record cannot be trusted: {self.record_problems[0]}{more}"

    def summary(self) -> str:
        return f"{count_text(self.counts())}; exit {self.returncode} ({self.exit_meaning}) in {self.duration_s:.1f}s"

    def log_tail(self, n_lines: int = 40) -> str:
        return read_tail(self.log_path, n_lines)


def read_tail(path: Path, n_lines: int) -> str:
    """The last `n_lines` lines of a log, read from its end (a log may be large)."""
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
