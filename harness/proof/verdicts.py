"""Verdicts over finished pytest runs: collect, RED, GREEN, regression, and full suite vs known failures.

Pure functions of a `PytestRun` (no I/O except `load_known_failures`). Each returns a frozen record
with `ok` and a one-line `reason` for the summary, plus the tests the reason is about.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from harness.errors import SelectorError
from harness.pytest_run.results import Outcome, PytestRun, TestResult, count_text
from harness.pytest_run.runner import Selector

# How a selected test that did not fail reads in "RED not proven: <selector> ... without the change".
_NOT_FAILING_WORDS = {
    Outcome.PASSED: "passes",
    Outcome.XPASSED: "passes (as an xpass)",
    Outcome.SKIPPED: "is skipped",
    Outcome.XFAILED: "xfails",
}


class Gate(StrEnum):
    COLLECT = "collect"
    RED = "red"
    GREEN = "green"
    REGRESSION = "regression"


@dataclass(frozen=True)
class Verdict:
    """A gate's judgement on one selector's run.

    `tests` holds the results the reason is about: for RED the failing tests that prove it, for GREEN
    and regression the tests that broke it, for collect the collection errors.
    """

    gate: Gate
    selector: str
    ok: bool
    reason: str
    tests: tuple[TestResult, ...] = ()
    counts: tuple[tuple[str, int], ...] = ()

    def details(self) -> tuple[str, ...]:
        """One summary line per test in `tests`."""
        return tuple(result.describe() for result in self.tests)


@dataclass(frozen=True)
class FullSuiteVerdict:
    """The full suite against the known-failures list.

    new_failures: failing node ids (collection errors included) not in the list; tolerated: listed
    and failing; now_passing: listed but passed (remove them from the list); not_seen: listed but
    neither failing nor passing in this run (renamed, deleted, skipped, or not reached).
    """

    ok: bool
    reason: str
    completed: bool
    new_failures: tuple[str, ...]
    tolerated: tuple[str, ...]
    now_passing: tuple[str, ...]
    not_seen: tuple[str, ...] = ()
    new_failure_results: tuple[TestResult, ...] = ()
    counts: tuple[tuple[str, int], ...] = ()

    def details(self) -> tuple[str, ...]:
        return tuple(result.describe() for result in self.new_failure_results)


def _counts(run: PytestRun) -> tuple[tuple[str, int], ...]:
    return tuple(run.counts().items())


def _ran(run: PytestRun) -> str:
    return count_text(run.counts(), none="no tests ran")


def _exit_text(run: PytestRun) -> str:
    """`exit N (meaning)`, with pytest's own error line when the log has one."""
    text = f"exit {run.returncode} ({run.exit_meaning})"
    return f"{text}: {run.usage_error()}" if run.error_lines else text


def _first_and_more(results: tuple[TestResult, ...]) -> str:
    more = f" (+{len(results) - 1} more)" if len(results) > 1 else ""
    return f"{results[0].describe()}{more}"


def _did_not_run(selector: Selector, run: PytestRun, gate: Gate, prefix: str) -> Verdict | None:
    """A verdict when the run cannot be judged at all (timeout, usage or internal error), else None."""
    if run.timed_out:
        return Verdict(gate, selector.raw, False, f"{prefix}{selector.raw} {run.exit_meaning}",
                       run.failing(), _counts(run))
    if run.returncode in (3, 4) or run.returncode < 0:
        return Verdict(gate, selector.raw, False,
                       f"{prefix}{selector.raw} could not run, {_exit_text(run)}", run.failing(), _counts(run))
    if run.record_problems:
        return Verdict(gate, selector.raw, False, f"{prefix}{selector.raw}: {run.untrusted_reason()}",
                       run.failing(), _counts(run))
    return None


def collect_verdict(selector: Selector, run: PytestRun) -> Verdict:
    """ok when the selector collects at least one test and nothing fails to collect."""
    stopped = _did_not_run(selector, run, Gate.COLLECT, "collect: ")
    if stopped is not None:
        return stopped
    errors = run.collection_errors()
    if errors:
        return Verdict(Gate.COLLECT, selector.raw, False,
                       f"collect: {selector.raw} has a collection error: {_first_and_more(errors)}", errors)
    if not run.collected:
        skipped = run.nodeids_with(Outcome.SKIPPED)
        why = f" ({skipped[0]} is skipped at collection)" if skipped else ""
        return Verdict(Gate.COLLECT, selector.raw, False, f"selector matches no tests: {selector.raw}{why}",
                       tuple(r for r in run.results if r.outcome == Outcome.SKIPPED))
    if run.returncode not in (0, 1, 5):
        return Verdict(Gate.COLLECT, selector.raw, False,
                       f"collect: {selector.raw} {_exit_text(run)}")
    n = len(run.collected)
    return Verdict(Gate.COLLECT, selector.raw, True,
                   f"collect: {selector.raw} selects {n} test{'s' if n != 1 else ''}")


def red_verdict(selector: Selector, run: PytestRun) -> Verdict:
    """Proven when at least one selected test fails or errors (collection errors count) without the change.

    A selected module that cannot even be imported at base (the test imports a name the change adds) makes
    pytest exit 4 for a node-id selector; that is an error of the selected test, so it proves RED.
    """
    errors = run.collection_errors()
    if errors and not run.timed_out and run.returncode in (1, 2, 4) and not run.record_problems:
        return Verdict(Gate.RED, selector.raw, True,
                       f"RED proven: the selected module fails to collect without the change; "
                       f"{_first_and_more(errors)}", errors, _counts(run))
    stopped = _did_not_run(selector, run, Gate.RED, "RED not proven: ")
    if stopped is not None:
        return stopped
    failing = run.failing()
    if failing:
        total = len(run.results)
        return Verdict(Gate.RED, selector.raw, True,
                       f"RED proven: {len(failing)} of {total} selected fail without the change; "
                       f"{_first_and_more(failing)}", failing, _counts(run))
    if run.returncode == 2:
        return Verdict(Gate.RED, selector.raw, False,
                       f"RED not proven: {selector.raw} was interrupted, {_exit_text(run)}", (), _counts(run))
    words = [_NOT_FAILING_WORDS[outcome] for outcome in Outcome if outcome in _NOT_FAILING_WORDS
             and run.nodeids_with(outcome)]
    how = " / ".join(words) if words else "selects nothing"
    return Verdict(Gate.RED, selector.raw, False, f"RED not proven: {selector.raw} {how} without the change",
                   tuple(r for r in run.results if r.outcome != Outcome.PASSED), _counts(run))


def green_verdict(selector: Selector, run: PytestRun) -> Verdict:
    """ok only when at least one test ran and every selected test passed (skips and xfails are not passes)."""
    stopped = _did_not_run(selector, run, Gate.GREEN, "GREEN not proven: ")
    if stopped is not None:
        return stopped
    offenders = tuple(r for r in run.results if r.outcome != Outcome.PASSED)
    if offenders:
        return Verdict(Gate.GREEN, selector.raw, False,
                       f"GREEN not proven: {selector.raw}: {_first_and_more(offenders)}", offenders, _counts(run))
    not_run = run.not_run()
    if not_run:
        return Verdict(Gate.GREEN, selector.raw, False,
                       f"GREEN not proven: {selector.raw}: {len(not_run)} selected test(s) did not run "
                       f"(first: {not_run[0]}); exit {run.returncode} ({run.exit_meaning})", (), _counts(run))
    if not run.results:
        return Verdict(Gate.GREEN, selector.raw, False, f"GREEN not proven: {selector.raw} selects nothing")
    if run.returncode != 0:
        return Verdict(Gate.GREEN, selector.raw, False,
                       f"GREEN not proven: {selector.raw}: pytest {_exit_text(run)}", (), _counts(run))
    n = len(run.results)
    return Verdict(Gate.GREEN, selector.raw, True, f"GREEN: {selector.raw}: all {n} selected pass", (), _counts(run))


def regression_verdict(selector: Selector, run: PytestRun) -> Verdict:
    """ok when at least one test passed and none failed or errored; skips and xfails are tolerated."""
    stopped = _did_not_run(selector, run, Gate.REGRESSION, "regression: ")
    if stopped is not None:
        return stopped
    failing = run.failing()
    if failing:
        return Verdict(Gate.REGRESSION, selector.raw, False,
                       f"regression: {selector.raw}: {len(failing)} failing; {_first_and_more(failing)}",
                       failing, _counts(run))
    if not run.nodeids_with(Outcome.PASSED):
        return Verdict(Gate.REGRESSION, selector.raw, False,
                       f"regression: {selector.raw} has no passing test ({_ran(run)}; "
                       f"{_exit_text(run)})", (), _counts(run))
    if run.returncode != 0:
        return Verdict(Gate.REGRESSION, selector.raw, False,
                       f"regression: {selector.raw}: pytest {_exit_text(run)}", (), _counts(run))
    return Verdict(Gate.REGRESSION, selector.raw, True, f"regression: {selector.raw}: {_ran(run)}",
                   (), _counts(run))


def load_known_failures(path: Path | str) -> frozenset[str]:
    """Node ids, one per line; blank lines and lines starting with `#` are ignored; no file, no ids."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return frozenset()
    except (OSError, UnicodeDecodeError) as exc:
        raise SelectorError(
            f"cannot read the known-failures file {path}: {exc}; it must be UTF-8 text, one node id per line"
        ) from None
    return frozenset(
        stripped for line in text.splitlines() if (stripped := line.strip()) and not stripped.startswith("#")
    )


def full_suite_verdict(run: PytestRun, known: Iterable[str]) -> FullSuiteVerdict:
    """Failing node ids must all be known failures, and the run must have completed."""
    known = frozenset(known)
    failing = run.failing()
    new = tuple(r for r in failing if r.nodeid not in known)
    failing_ids = {r.nodeid for r in failing}
    passed_ids = set(run.nodeids_with(Outcome.PASSED))
    tolerated = tuple(r.nodeid for r in failing if r.nodeid in known)
    now_passing = tuple(sorted(known & passed_ids))
    not_seen = tuple(sorted(known - failing_ids - passed_ids))

    if run.timed_out:
        completed, why = False, f"full suite did not complete: {run.exit_meaning}"
    elif run.record_problems:
        completed, why = False, f"full suite: {run.untrusted_reason()}"
    elif run.returncode in (0, 1) or (run.returncode == 2 and run.collection_errors()):
        completed, why = True, ""
    else:
        completed, why = False, f"full suite did not complete: {_exit_text(run)}"
    ok = completed and not new
    if not completed:
        reason = why
    elif new:
        reason = f"full suite: {len(new)} new failure{'s' if len(new) != 1 else ''}; {_first_and_more(new)}"
    else:
        extras = [f"{len(tolerated)} known failure(s) tolerated"] if tolerated else []
        if now_passing:
            extras.append(f"{len(now_passing)} known failure(s) now pass (remove them from the list)")
        reason = "; ".join([f"full suite: {_ran(run)}", *extras])
    return FullSuiteVerdict(
        ok=ok, reason=reason, completed=completed, new_failures=tuple(r.nodeid for r in new),
        tolerated=tolerated, now_passing=now_passing, not_seen=not_seen, new_failure_results=new,
        counts=_counts(run),
    )
