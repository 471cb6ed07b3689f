"""Running an iteration's stages: in order, or at once where they do not share a tree.

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

import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace

from harness import proc
from harness.proof.stage_records import StageResult

GREEN_TREE = "green"


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
