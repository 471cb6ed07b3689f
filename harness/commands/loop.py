"""`harness loop`: iterations until a stop condition; completion is decided by the ledger and the harness's
own test results, never by anything the agent prints.

With one worker (the default) the iterations run one after another in the working tree. With
`--workers N` (or `workers: N` in harness.yaml) and with `--json`, items run in worktrees of their own and
land one at a time (harness.parallel); `--json` prints that machinery's events as JSON lines.

`--plan-every N` runs the planner (harness.agent.planner.step, its plan applied) before iterations 1, N+1,
2N+1, ...; `--plan-when-empty` runs it when nothing is actionable, and the loop goes on while a plan
makes an item actionable. A refused plan stops the loop (exit 1); plan steps are rows of the summary."""
from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.agent.planner.step import PlanResult, plan_step
from harness.commands._console import say
from harness.commands._shared import repo_lock
from harness.durability.recovery import recover
from harness.errors import ExitCode, HarnessError, Interrupted, NothingActionable
from harness.parallel.events import Console, SummaryRow
from harness.parallel.pool import Limits, WorkerPool
from harness.parallel.remote.leased import LeasedIteration, attempt_and_publish
from harness.workspace import Workspace, open_workspace


@dataclass(frozen=True)
class Row:
    """One summary row: an iteration, or (`plan`) the plan step before iteration `number`."""

    number: int
    item: str
    outcome: str
    seconds: float
    reason: str
    plan: bool = False


@dataclass(frozen=True)
class Planning:
    """When the loop runs the planner: before every `every`-th iteration, and/or when nothing is actionable."""

    every: int | None = None
    when_empty: bool = False

    def due(self, number: int) -> bool:
        return self.every is not None and (number - 1) % self.every == 0


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGTERM behaves like Ctrl-C: the running step stops where it is (subprocess groups are killed)."""
    def handler(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _table(rows: list[Row]) -> str:
    lines = [f"{'#':>3}  {'item':<24} {'outcome':<22} {'time':>7}  reason"]
    lines += [f"{r.number:>3}  {r.item:<24} {r.outcome:<22} {r.seconds:>6.1f}s  {r.reason[:90]}" for r in rows]
    return "\n".join(lines)


def _plan(ws: Workspace, number: int, rows: list[Row]) -> PlanResult:
    """One plan step, applied, before iteration `number`; its row in the summary."""
    t0 = time.monotonic()
    say(f"plan before iteration {number}: running the planner ...")
    result = plan_step(ws, apply=True, progress=say)
    for line in result.problem_lines():
        say(f"plan: {line}")
    outcome = {"applied": "PLANNED", "unchanged": "NO CHANGE", "refused": "REFUSED"}.get(result.outcome,
                                                                                       result.outcome)
    why = result.summary if result.outcome != "refused" else f"{len(result.problems)} problem(s): " + (
        result.problem_lines()[0] if result.problems else "")
    rows.append(Row(number, "(plan)", outcome, time.monotonic() - t0, why, plan=True))
    say(f"plan before iteration {number}: {outcome} ({why})")
    return result


def _loop_body(ws: Workspace, *, iterations: int | None, max_failures: int,
               budget_minutes: float | None, no_agent: bool, allow_dirty: bool,
               rows: list[Row], planning: Planning = Planning()) -> tuple[int, str]:
    started = time.monotonic()
    failures_in_a_row = 0
    number = 0
    while True:
        if iterations is not None and number >= iterations:
            ran = [r for r in rows if not r.plan]
            last_ok = bool(ran) and ran[-1].outcome == "GREEN"
            return (ExitCode.OK if last_ok else ExitCode.REFUSED), f"ran {number} iteration(s)"
        if budget_minutes is not None and time.monotonic() - started >= budget_minutes * 60:
            return ExitCode.REFUSED, f"time budget of {budget_minutes:g} min spent"
        number += 1
        planned = planning.due(number)
        if planned and _plan(ws, number, rows).outcome == "refused":
            return ExitCode.REFUSED, f"the plan before iteration {number} was refused; nothing of it was written"
        t0 = time.monotonic()
        say(f"iteration {number}: selecting ...")
        try:
            done = _attempt(ws, use_agent=not no_agent, allow_dirty=allow_dirty and number == 1)
        except NothingActionable as exc:
            if planned or not planning.when_empty:
                return ExitCode.OK, str(exc) + ("; the plan before it made nothing actionable" if planned else "")
            if _plan(ws, number, rows).outcome == "refused":
                return ExitCode.REFUSED, "nothing was actionable and the plan was refused; nothing of it was written"
            try:
                done = _attempt(ws, use_agent=not no_agent, allow_dirty=allow_dirty and number == 1)
            except NothingActionable as again:
                return ExitCode.OK, f"{again}; the planner's plan made nothing actionable"
        result = done.result
        if done.lost is not None:  # another harness owns the item now: not this harness's failure
            say(f"iteration {number}: [{result.item_id}] LEASE LOST: {done.lost}")
            rows.append(Row(number, result.item_id, "LEASE LOST", time.monotonic() - t0, done.lost))
            continue
        rows.append(Row(number, result.item_id, result.outcome, time.monotonic() - t0, result.reason))
        say(f"iteration {number}: [{result.item_id}] {result.outcome} (evidence {result.evidence_dir})")
        failures_in_a_row = 0 if result.succeeded else failures_in_a_row + 1
        if failures_in_a_row >= max_failures:
            return ExitCode.REFUSED, (f"circuit breaker: {failures_in_a_row} failed iterations in a row "
                                  f"(--max-failures {max_failures}); last: {result.reason}")
        if no_agent:  # without an agent nothing makes the next change: one iteration is all there is
            return (ExitCode.OK if result.succeeded else ExitCode.REFUSED), "--no-agent runs one iteration"


def _attempt(ws: Workspace, *, use_agent: bool, allow_dirty: bool) -> LeasedIteration:
    """One attempt and its push: under a remote lease when leases are enabled (harness.parallel.remote)."""
    done = attempt_and_publish(ws, item_id=None, use_agent=use_agent, allow_dirty=allow_dirty, progress=say)
    for note in done.notes:
        say(f"lease: {note}")
    if done.pushed is not None:
        say(f"push: {done.pushed.message}")
    return done


def loop(*, repo: Path, iterations: int | None = None, until_empty: bool = False, max_failures: int = 3,
         budget_minutes: float | None = None, no_agent: bool = False, allow_dirty: bool = False,
         workers: int | None = None, as_json: bool = False, plan_every: int | None = None,
         plan_when_empty: bool = False) -> int:
    if iterations is not None and iterations < 1:
        raise HarnessError("--iterations must be at least 1")
    if iterations is not None and until_empty:
        raise HarnessError("--iterations and --until-empty exclude each other: without --iterations the loop "
                           "runs until nothing is actionable")
    if max_failures < 1:
        raise HarnessError("--max-failures must be at least 1")
    if workers is not None and workers < 1:
        raise HarnessError("--workers must be at least 1")
    if plan_every is not None and plan_every < 1:
        raise HarnessError("--plan-every must be at least 1")
    ws = open_workspace(repo)
    count = workers if workers is not None else ws.config.workers
    planning = Planning(plan_every, plan_when_empty)
    if planning.every is not None or planning.when_empty:
        _check_planning(ws, workers=count, as_json=as_json, no_agent=no_agent)
    if count > 1 or as_json:
        for flag, given in (("--no-agent", no_agent), ("--allow-dirty", allow_dirty)):
            if given:
                raise HarnessError(f"{flag} works on the change in this working tree, one iteration at a time; "
                                   f"it cannot be combined with --workers {count}{' or --json' if as_json else ''}"
                                   " (workers start from HEAD in worktrees of their own): drop one of them")
        limits = Limits(iterations, max_failures, budget_minutes)
        return _parallel(ws, workers=count, limits=limits, console=Console(as_json=as_json))
    rows: list[Row] = []
    with repo_lock(ws, "harness loop"):
        try:
            with _signals_interrupt():
                code, why = _loop_body(ws, iterations=iterations, max_failures=max_failures,
                                       budget_minutes=budget_minutes, no_agent=no_agent, allow_dirty=allow_dirty,
                                       rows=rows, planning=planning)
        except (Interrupted, KeyboardInterrupt) as exc:
            recovery = recover(ws)  # records the abandoned attempt, saves its work, cleans the tree
            why = f"interrupted ({exc or 'SIGINT'})"
            if recovery:
                why += f"; {recovery.describe()}"
            code = ExitCode.INTERRUPTED
        except HarnessError as exc:  # not the change's fault (its attempt was not recorded); the summary stays
            code, why = exc.exit_code, str(exc)
        except Exception:
            _print_summary(rows, "a bug in the harness (see below)", ExitCode.INTERNAL)
            raise
    _print_summary(rows, why, code)
    return code


def _check_planning(ws: Workspace, *, workers: int, as_json: bool, no_agent: bool) -> None:
    """The plan options need a planner and the serial loop with an agent (HarnessError before anything runs)."""
    if ws.config.planner is None:
        raise HarnessError("--plan-every and --plan-when-empty run the planner, and none is configured: add "
                           "`planner: {command: [...]}` to harness.yaml (README, \"The planner\")")
    if workers > 1 or as_json or no_agent:
        given = "--no-agent" if no_agent else (f"--workers {workers}" if workers > 1 else "--json")
        raise HarnessError(f"--plan-every and --plan-when-empty alternate planning and building in this working "
                           f"tree, one iteration at a time; they cannot be combined with {given}: drop one of them")


def _print_summary(rows: list[Row], why: str, code: int) -> None:
    print()
    if rows:
        print(_table(rows))
    print(f"loop stopped: {why}", file=sys.stderr if code else sys.stdout)


def _parallel(ws: Workspace, *, workers: int, limits: Limits, console: Console) -> int:
    """The loop with workers: the scheduler stops and recovers its workers itself on Ctrl-C or SIGTERM."""
    rows: list[SummaryRow] = []
    with repo_lock(ws, "harness loop"):
        try:
            with _signals_interrupt():
                code, why = WorkerPool(ws, workers=workers, limits=limits, console=console, rows=rows).run()
        except (Interrupted, KeyboardInterrupt) as exc:
            code = ExitCode.INTERRUPTED
            why = (f"interrupted ({exc or 'SIGINT'}); the workers' attempts were recorded as aborted, "
                   "their work saved")
        except HarnessError as exc:  # the pool stopped and recovered its workers first
            code, why = exc.exit_code, str(exc)
    console.summary(rows)
    console.stopped(why, code)
    return code
