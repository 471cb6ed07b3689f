"""`harness loop --workers N`: up to N ledger items at once, each in its own worktree, merged one at a time.

The pool runs in the main thread of the harness that holds the repository lock. Each round it
blocks exhausted items, then starts workers (harness.parallel.worker) for the items that may start
(harness.parallel.ready: actionable, no dependency relation to a running item, not leased elsewhere),
each after taking the item's lease. Worker threads prove their change in their worktrees; a worker that
is done waits in the merge queue without holding a slot (so up to N agents and proofs run at once, and
free slots are refilled before each landing), and the main thread lands the queue one worker at a time
(harness.parallel.landing: merge onto the current head, gates on the merged tree, one commit), then
removes the worker. A failed attempt puts the item back in the queue, retried from the new head until
`max_attempts` blocks it. An item waiting to land counts as running: nothing related to it starts.

With `push` and `leases.enabled` (several machines on one remote) the remote decides: the branch is followed
before each round of starts and each landing, an item's remote lease is claimed before its worker starts and
kept alive by a heartbeat, and each landing is pushed with that lease's release (harness.parallel.remote.pooled).

Stop conditions are those of the serial loop: nothing left to start and nothing running (exit 0);
`--iterations N` attempts started (0 if the last landed attempt was GREEN, else 1); K failed attempts in a
row or the time budget spent (exit 1); an item that fails preflight (harness.iteration.preflight: a selector
that does not parse, a missing agent or prompt template; checked before its lease is taken) is not started
and not counted, and stops the loop with exit 4 and what to fix. After a stop no new worker starts and the
running ones finish and land. On Ctrl-C or SIGTERM (an exception in the main thread) every worker is
stopped, its process groups ended, and its attempt recorded as aborted with its work saved
(harness.parallel.recovery).
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from harness.clock import utc_now
from harness.config import judging_settings
from harness.errors import ExitCode, HarnessError
from harness.gitops import head_sha, working_changes
from harness.iteration.pick import block_exhausted, publish
from harness.iteration.preflight import preflight
from harness.iteration.records import IterationRequest, IterationResult
from harness.ledger import Item, Ledger, ensure_plain_names, load_ledger
from harness.ledger.selection import select_next
from harness.parallel import lease as leases
from harness.parallel.events import Console, SummaryRow, stage_times
from harness.parallel.landing import land
from harness.parallel.ready import startable
from harness.parallel.recovery import WorkerRecovery, dismantle, recover_worker, recover_workers
from harness.parallel.remote.held import leases_enabled
from harness.parallel.remote.pooled import PoolLeases
from harness.parallel.worker import WorkerDone, WorkerJob, start_worker, worker_thread
from harness.proc import kill_process_group
from harness.proof.stage_records import MergeDetail
from harness.workspace import Workspace

POLL_S = 0.5
STOP_GRACE_S = 60.0


@dataclass(frozen=True)
class Limits:
    """When the loop stops starting attempts; `iterations` None: until nothing is actionable."""

    iterations: int | None = None
    max_failures: int = 3
    budget_minutes: float | None = None


@dataclass(frozen=True)
class _Running:
    """A worker thread and what it takes to stop it: its stop flag and the process groups it started."""

    job: WorkerJob
    thread: threading.Thread
    cancel: threading.Event
    groups: list[int]


class WorkerPool:
    def __init__(self, ws: Workspace, *, workers: int, limits: Limits, console: Console,
                 rows: list[SummaryRow], now: Callable[[], datetime] = utc_now) -> None:
        self.ws, self.workers, self.limits, self.console, self.rows, self.now = \
            ws, workers, limits, console, rows, now
        self.holder = leases.Holder.this_process()
        self.results: queue.Queue[WorkerDone] = queue.Queue()
        self.running: dict[str, _Running] = {}  # threads at work (agent, proof)
        self.landing: list[WorkerDone] = []  # the merge queue: finished workers, landed one at a time
        self.refused: dict[str, str] = {}  # items whose lease someone else holds, and why
        self.changed = True  # since the last look at the ledger: a worker finished or landed
        self.started = 0
        self.failures_in_a_row = 0
        self.error: tuple[int, str] | None = None  # an item failed preflight: start nothing more
        # Several machines on one remote: its branch and leases decide (harness.parallel.remote.pooled).
        self.remote = PoolLeases(ws, self.holder, note=console.note, now=now) if leases_enabled(ws) else None

    def run(self) -> tuple[int, str]:
        """Run until a stop condition; (exit code, why). On any exception every worker is stopped and
        recovered before it propagates."""
        check_can_start(self.ws)
        try:
            return self._loop()
        except BaseException:
            self.stop_all()
            raise

    def _loop(self) -> tuple[int, str]:
        began = time.monotonic()
        stop: tuple[int, str] | None = None
        while True:
            if stop is None:
                stop = self._limit_reached(began)
            self._collect(timeout_s=0)
            # Free slots are refilled before a landing: new agents work while the merge queue runs gates.
            # Only a start, a finished worker or a landing can make another item startable.
            if stop is None and len(self.running) < self.workers and self.changed:
                self.changed = False
                idle = self._fill()
                if idle is not None and not self.running and not self.landing:
                    stop = (ExitCode.OK, idle)
                stop = stop or self.error
            if self.landing:
                broke = self._finish(self.landing.pop(0))
                self.changed = True
                stop = stop or broke
                continue
            if not self.running:
                if stop is None and self.changed:
                    continue  # a refused lease: the next item in line may start
                return self._final(stop or (ExitCode.OK, "nothing left to run"))
            self._collect(timeout_s=POLL_S)

    def _collect(self, *, timeout_s: float) -> None:
        """Move finished workers into the merge queue (waiting up to `timeout_s` for the first)."""
        try:
            done = self.results.get(timeout=timeout_s) if timeout_s else self.results.get_nowait()
        except queue.Empty:
            return
        while True:
            self.running.pop(done.job.request.item.id).thread.join()
            self.landing.append(done)
            self.changed = True
            try:
                done = self.results.get_nowait()
            except queue.Empty:
                return

    def _busy(self) -> tuple[str, ...]:
        return (*self.running, *(done.job.request.item.id for done in self.landing))

    def _limit_reached(self, began: float) -> tuple[int, str] | None:
        limits = self.limits
        if limits.iterations is not None and self.started >= limits.iterations:
            return ExitCode.OK, f"ran {self.started} iteration(s)"
        if limits.budget_minutes is not None and time.monotonic() - began >= limits.budget_minutes * 60:
            return ExitCode.REFUSED, f"time budget of {limits.budget_minutes:g} min spent"
        return None

    def _final(self, stop: tuple[int, str]) -> tuple[int, str]:
        code, why = stop
        if why.startswith("ran ") and self.rows:  # --iterations: as the serial loop, by the last outcome
            code = ExitCode.OK if self.rows[-1].outcome == "GREEN" else ExitCode.REFUSED
        return code, why

    # --- starting -----------------------------------------------------------------------------------

    def _fill(self) -> str | None:
        """Start workers on free slots; returns why nothing could start when nothing did, else None."""
        held_remotely: dict[str, str] = {}
        if self.remote is not None:
            try:
                self.remote.follow()
                held_remotely = self.remote.others()
            except HarnessError as exc:  # the remote's ledger is the truth: nothing starts without it
                self.error = (exc.exit_code, str(exc))
                self.console.note(f"nothing more is started: {exc}")
                return None
        ws = replace(self.ws, config=judging_settings(self.ws.repo, head_sha(self.ws.repo), self.ws.config).config)
        cfg = ws.config  # the head's harness.yaml: max_attempts and the ledger's path (harness.config.judging)
        ledger = load_ledger(ws.ledger_path)
        selection = select_next(ledger, max_attempts=cfg.max_attempts)
        to_block = tuple(b for b in selection.to_block if b[0] not in self._busy())
        if to_block:
            ledger = block_exhausted(ws, ledger, to_block, progress=self.console.note)
        busy = self._busy()
        elsewhere = {held.item_id: f"{held.item_id} ({held.holder.describe()})"
                     for held in leases.all_leases(ws.repo, skip=busy) if held.holder != self.holder}
        elsewhere.update({i: why for i, why in held_remotely.items() if i not in elsewhere and i not in busy})
        elsewhere.update({item_id: why for item_id, why in self.refused.items() if item_id not in elsewhere})
        free = self.workers - len(self.running)
        if self.limits.iterations is not None:
            free = min(free, self.limits.iterations - self.started)
        items = startable(ledger, max_attempts=cfg.max_attempts, running=busy, unavailable=tuple(elsewhere),
                          limit=free)
        started_any = False
        for item in items:
            if self.error is not None:
                break
            started_any = self._start(item, ledger) or started_any
        if self.error is not None:
            return None
        if started_any or self.running or self.landing or self.changed:
            return None
        if elsewhere and select_next(ledger, max_attempts=cfg.max_attempts).item is not None:
            held = "; ".join(why for _, why in sorted(elsewhere.items()))
            return f"nothing left for this harness: the actionable items are leased by others: {held}"
        return f"nothing actionable in {cfg.ledger}: {selection.reason}"

    def _free_name(self) -> str:
        taken = {run.job.name for run in self.running.values()}
        return next(f"w{n}" for n in range(1, self.workers + 1) if f"w{n}" not in taken)

    def _start(self, item: Item, ledger: Ledger) -> bool:
        ws = self.ws
        ensure_plain_names(item)
        try:
            base = head_sha(ws.repo)  # judged as start_worker will judge it: under the head's harness.yaml
            preflight(IterationRequest(root=ws.root, config=judging_settings(ws.repo, base, ws.config).config,
                                       item=item, base=base, ledger=ledger), use_agent=True)
        except HarnessError as exc:  # not started, not counted: the stop says what to fix
            self.error = (exc.exit_code, f"[{item.id}] cannot start: {exc}")
            self.console.note(f"[{item.id}] not started: {exc}")
            return False
        # With remote leases the remote one guards the item; the local one marks this pool's worker.
        remote = ws.config.push.remote if ws.config.push and self.remote is None else None
        try:
            lease = leases.acquire(ws.repo, item.id, self.holder, identity=ws.config.commit.identity,
                                   remote=remote)
        except leases.LeaseRefused as exc:
            self.refused[item.id] = str(exc)  # not asked again in this run
            self.changed = True  # the next item in line may take the slot
            self.console.note(f"{exc}; left to it")
            return False
        trailers: tuple[tuple[str, str], ...] = ()
        if self.remote is not None:
            claimed = self._claim(item, lease)
            if claimed is None:
                return False
            item, ledger, trailers = claimed
        name = self._free_name()
        try:
            job = start_worker(ws, name=name, item=item, ledger=ledger, lease=lease, now=self.now)
            job = replace(job, request=replace(job.request, trailers=trailers))
        except HarnessError as exc:
            why = f"the worker could not start: {exc}"
            recovery = recover_worker(ws, item.id, self.holder, reason=why)
            if self.remote is not None:
                self.remote.give_back(item.id)
            self._aborted(name, item.id, why, recovery)
            return False
        cancel, groups = threading.Event(), []
        thread = threading.Thread(target=worker_thread, args=(job, cancel, groups, self.results),
                                  name=f"harness-{name}-{item.id}", daemon=True)
        run = _Running(job, thread, cancel, groups)
        self.running[item.id] = run
        self.started += 1
        run.thread.start()
        rel = job.place.worktree.relative_to(ws.root) if ws.root in job.place.worktree.parents \
            else job.place.worktree
        self.console.event("started", name, item.id, f"attempt #{job.attempt.number} from "
                           f"{job.request.base[:10]} in {rel}", attempt=job.attempt.number,
                           base=job.request.base, worktree=str(job.place.worktree), branch=job.place.branch)
        return True

    def _claim(self, item: Item, lease: leases.Lease) -> tuple[Item, Ledger, tuple[tuple[str, str], ...]] | None:
        """Claim the item's remote lease (the branch followed again): the item and ledger as the remote has
        them now and the commit's takeover trailer, or None when another holder has it (the local lease is
        given back and the item left to it)."""
        assert self.remote is not None
        ws = self.ws
        try:
            self.remote.take(item.id, max_attempts=judging_settings(ws.repo, head_sha(ws.repo),
                                                                    ws.config).config.max_attempts)
        except HarnessError as exc:
            leases.release(ws.repo, lease)
            self.refused[item.id] = str(exc)
            self.changed = True
            self.console.note(f"{exc}; left to it")
            return None
        ledger = load_ledger(ws.ledger_path)
        fresh = next(i for i in ledger.items if i.id == item.id)
        return fresh, ledger, self.remote.trailers.get(item.id, ())

    # --- finishing ----------------------------------------------------------------------------------

    def _finish(self, done: WorkerDone) -> tuple[int, str] | None:
        """Land (or recover) one finished worker; returns the circuit breaker's stop when it trips."""
        job = done.job
        item_id = job.request.item.id
        if done.proof is None:
            why = f"the worker stopped with an error: {done.error}" if done.error else "the worker was stopped"
            recovery = recover_worker(self.ws, item_id, self.holder, reason=why)
            if self.remote is not None:
                self.remote.give_back(item_id)
            self._aborted(job.name, item_id, why, recovery)
        else:
            self._land(done)
        max_failures = self.limits.max_failures
        if self.failures_in_a_row >= max_failures:
            last = self.rows[-1]
            return ExitCode.REFUSED, (f"circuit breaker: {self.failures_in_a_row} failed attempts in a row "
                                  f"(--max-failures {max_failures}); last: [{last.item}] {last.reason}")
        return None

    def _land(self, done: WorkerDone) -> None:
        job, ws = done.job, self.ws
        item_id, name = job.request.item.id, job.name
        assert done.proof is not None
        agent_s, proof_s, _ = stage_times(done.proof.stages)
        if done.proof.succeeded:
            self.console.event("proven", name, item_id, f"agent {agent_s:.1f} s, proof {proof_s:.1f} s",
                               agent_s=round(agent_s, 3), proof_s=round(proof_s, 3))

        def merging(onto: str) -> None:
            self.console.event("merging", name, item_id, f"onto {onto[:10]}", onto=onto)

        onto = self.remote.before_landing() if self.remote is not None else None
        result = land(ws, done, on_merging=merging)
        for problem in dismantle(ws, job.place, self.holder):
            self.console.note(problem)
        self._landed(name, result)
        if self.remote is not None and onto is not None:
            published = self.remote.publish(result, onto)
            if published.lost is not None:  # another harness owns the item now: not this attempt's outcome
                self.rows[-1] = replace(self.rows[-1], outcome="LEASE LOST", reason=published.lost)
            return
        pushed = publish(ws, result, progress=self.console.note)
        if pushed is not None:
            self.console.note(f"push: {pushed.message}")

    def _landed(self, name: str, result: IterationResult) -> None:
        agent_s, proof_s, merge_s = stage_times(result.stages)
        onto = next((s.detail.onto for s in result.stages if isinstance(s.detail, MergeDetail)), None)
        data = {"attempt": result.attempt, "outcome": result.outcome, "commit": result.commit,
                "evidence": str(result.evidence_dir), "saved_ref": result.saved_ref, "onto": onto,
                "agent_s": round(agent_s, 3), "proof_s": round(proof_s, 3), "merge_s": round(merge_s, 3)}
        if result.succeeded:
            self.failures_in_a_row = 0
            text = f"GREEN as {(result.commit or '')[:10]}" + (f" onto {onto[:10]}" if onto else "") + \
                f" (merge {merge_s:.1f} s)"
            self.console.event("merged", name, result.item_id, text, **data)
        else:
            self.failures_in_a_row += 1
            text = f"{result.outcome}: {result.reason}"
            if result.saved_ref:
                text += f"; the change is saved on {result.saved_ref}"
            self.console.event("failed", name, result.item_id, text, **data, reason=result.reason)
        self.rows.append(SummaryRow(result.item_id, name, result.attempt, round(agent_s, 3), round(proof_s, 3),
                                    round(merge_s, 3), result.outcome, result.reason))

    def _aborted(self, name: str, item_id: str, why: str, recovery: WorkerRecovery | None) -> None:
        self.failures_in_a_row += 1
        self.changed = True  # an attempt line more in the ledger
        outcome = f"ABORTED at {recovery.stage}" if recovery else "ABORTED"
        saved = recovery.saved_ref if recovery else None
        text = f"{outcome}: {why}" + (f"; its work is saved on {saved}" if saved else "")
        self.console.event("failed", name, item_id, text, outcome=outcome, reason=why, saved_ref=saved,
                           attempt=recovery.attempt if recovery else None)
        self.rows.append(SummaryRow(item_id, name, recovery.attempt if recovery else 0, 0.0, 0.0, 0.0,
                                    outcome, why))

    # --- stopping -----------------------------------------------------------------------------------

    def stop_all(self) -> list[WorkerRecovery]:
        """Stop every worker (before its next stage, its commands ended), then recover them all."""
        for run in self.running.values():
            run.cancel.set()
        deadline = time.monotonic() + STOP_GRACE_S
        while any(run.thread.is_alive() for run in self.running.values()) and time.monotonic() < deadline:
            for run in self.running.values():
                for pgid in list(run.groups):
                    kill_process_group(pgid, grace_s=1.0)
                run.thread.join(0.1)
        self.running.clear()
        if self.remote is not None:
            self.remote.give_all_back()
        self.landing.clear()  # their journals are still there: recovered below like the others
        recovered = recover_workers(self.ws, self.holder)
        for recovery in recovered:
            self.console.note(recovery.describe())
        return recovered


def check_can_start(ws: Workspace) -> None:
    """Workers need an agent, and a clean main checkout: merges land there."""
    if not ws.config.agent.command:
        raise HarnessError("no agent is configured: set `agent.command` in harness.yaml; parallel workers "
                           "each run the agent in a worktree of their own")
    dirty = working_changes(ws.repo)
    if dirty:
        raise HarnessError("the working tree is not clean (" + ", ".join(c.path for c in dirty[:5])
                           + (" ..." if len(dirty) > 5 else "") + "): with --workers every item starts from "
                           "HEAD in a worktree of its own and its merge lands in this checkout; commit or stash "
                           "the changes first")
