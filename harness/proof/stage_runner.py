"""Running an iteration's stages: in order, or at once where they do not share a tree.

Whether they run at once is `concurrent_stages` in harness.yaml: true or false force it; `auto` (the
default, `stages_at_once`) runs them at once only where this process may use at least `MIN_CORES_AT_ONCE`
cores. On 2 cores at the lowest load measured (benchmarks/RESULTS.md, bench_harness stages), an iteration
took 12.4 s with its stages at once against 10.8 s one after another: the full suite's xdist workers and
mutation's copies each want every core, so overlapping them adds contention (about 7% more CPU time), and
what overlap saves (RED beside GREEN, regression beside the suite) needs cores that are otherwise idle.
Where other jobs load a small machine, stages at once finish sooner only by taking a larger share of it.

Each stage names the tree its tests run in (`green`: the working tree, or the worktree at `head`; None:
temporary trees of its own, such as RED's worktree at the base or the copies of mutation and
acceptance) and the stages that must have passed before it starts. With `concurrent`, a stage starts as
soon as those have passed and its tree is free; stages on the same tree never overlap, because a test
suite may write into its tree.

Either way the outcome is what running them one after another would give: no stage starts once a stage
earlier in the order has failed, the results are listed in the order, and the first failure in that
order is the one the iteration reports. A stage that started before an earlier one failed still
finishes and is reported (its evidence exists). If a stage raises, or the harness is interrupted, every
command the stages still run is ended (a harness.proc.CommandScope) before the exception goes on; the
commands of other proofs running at the same time (parallel workers) go on.
"""
from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

from harness import proc
from harness.config.gates import AUTO
from harness.proof.stage_records import StageResult

GREEN_TREE = "green"
MIN_CORES_AT_ONCE = 4
_CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def stages_at_once(setting: bool | str, cores: int) -> bool:
    """Whether the stages run at once: `setting` when it is true or false; for `auto`, only with at least
    MIN_CORES_AT_ONCE usable `cores` (the module docstring says why)."""
    if setting == AUTO:
        return cores >= MIN_CORES_AT_ONCE
    return bool(setting)


def cgroup_cpu_limit(cpu_max: str) -> int | None:
    """The cores a cgroup v2 `cpu.max` ("<quota> <period>", or "max <period>") allows, rounded up; None
    when it sets no limit or cannot be read."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


@cache
def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity, capped by a container's cgroup CPU quota.
    Read once per process, so every iteration of a run (and its record) sees the same count."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        limit = cgroup_cpu_limit(_CGROUP_CPU_MAX.read_text())
    except OSError:
        limit = None
    return max(1, min(cores, limit or cores))


@dataclass(frozen=True)
class StagePlan:
    name: str
    run: Callable[[], StageResult]
    tree: str | None = GREEN_TREE
    after: tuple[str, ...] = ()


class _Timer:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock, self.zero = clock, clock()

    def run(self, plan: StagePlan) -> StageResult:
        started = self.clock()
        result = plan.run()
        ended = self.clock()
        return replace(result, start_s=round(started - self.zero, 3), wall_s=round(ended - started, 3),
                       duration_s=result.duration_s or round(ended - started, 3))


def run_plan(plans: Sequence[StagePlan], *, concurrent: bool, on_start: Callable[[str], None],
             on_end: Callable[[StageResult], None], clock: Callable[[], float] = time.monotonic
             ) -> list[StageResult]:
    """Run the plans (see the module docstring); returns the results of the stages that ran, in order."""
    order = {plan.name: i for i, plan in enumerate(plans)}
    timer = _Timer(clock)
    results: dict[str, StageResult] = {}
    if not concurrent:
        for plan in plans:
            if any(not r.ok for r in results.values()):
                break
            on_start(plan.name)
            results[plan.name] = timer.run(plan)
            on_end(results[plan.name])
        return [results[p.name] for p in plans if p.name in results]

    pending = list(plans)
    running: dict[Future[StageResult], StagePlan] = {}
    busy: set[str] = set()
    scope = proc.CommandScope()  # this proof's commands, in whichever pool thread they run

    def run_in_scope(plan: StagePlan) -> StageResult:
        with scope.entered():
            return timer.run(plan)

    def ready(plan: StagePlan) -> bool | None:
        """True: start it now; False: not yet; None: it will never start."""
        if any(not r.ok and order[name] < order[plan.name] for name, r in results.items()):
            return None
        after = [name for name in plan.after if name in order]
        if any(name in results and not results[name].ok for name in after):
            return None
        if any(name not in results for name in after):
            return False
        return plan.tree is None or plan.tree not in busy

    with ThreadPoolExecutor(max_workers=max(1, len(plans)), thread_name_prefix="stage") as pool:
        try:
            while pending or running:
                for plan in list(pending):
                    verdict = ready(plan)
                    if verdict is None:
                        pending.remove(plan)
                    elif verdict:
                        pending.remove(plan)
                        if plan.tree is not None:
                            busy.add(plan.tree)
                        on_start(plan.name)
                        running[pool.submit(run_in_scope, plan)] = plan
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: order[running[f].name]):
                    plan = running.pop(future)
                    busy.discard(plan.tree or "")
                    results[plan.name] = future.result()
                    on_end(results[plan.name])
        except BaseException:
            scope.stop()  # the other stages' commands; their threads then return at once
            wait(running)
            raise
    return [results[p.name] for p in plans if p.name in results]
