"""Stages run in order or at once: the outcome is the in-order one either way; `auto` runs them at once
only where the machine has the cores for it, and the evidence says which was used."""
from __future__ import annotations

import itertools
import json
import os
import sys
import threading
import time
from pathlib import Path

import pytest

from harness import proc
from harness.main import main
from harness.proof.stage_records import StageResult
from harness.proof.stage_runner import (
    MIN_CORES_AT_ONCE,
    StagePlan,
    cgroup_cpu_limit,
    run_plan,
    stages_at_once,
    usable_cores,
)
from tests.conftest import git
from tests.harness.project import (
    MUL_IMPL,
    MUL_TEST,
    apply_change,
    make_project,
)


class Log:
    def __init__(self) -> None:
        self.started: list[str] = []
        self.ended: list[str] = []
        self.lock = threading.Lock()
        self.active: set[str] = set()
        self.overlaps: set[frozenset[str]] = set()

    def stage(self, name: str, ok: bool = True, seconds: float = 0.05) -> StageResult:
        with self.lock:
            self.overlaps.update(frozenset({name, other}) for other in self.active)
            self.active.add(name)
        time.sleep(seconds)
        with self.lock:
            self.active.discard(name)
        return StageResult(name, ok, f"{name}: {'ok' if ok else 'failed'}")


def plans(log: Log, fail: str | None = None) -> list[StagePlan]:
    def make(name: str, tree: str | None, after: tuple[str, ...]) -> StagePlan:
        return StagePlan(name, lambda: log.stage(name, ok=name != fail), tree=tree, after=after)
    return [make("collect", "green", ()), make("red", None, ("collect",)), make("green", "green", ("collect",)),
            make("mutation", None, ("green",)), make("full_suite", "green", ("green",))]


def run(log: Log, concurrent: bool, fail: str | None = None) -> list[StageResult]:
    return run_plan(plans(log, fail), concurrent=concurrent, on_start=log.started.append,
                    on_end=lambda r: log.ended.append(r.name))


@pytest.mark.parametrize("concurrent", [False, True])
def test_every_stage_runs_and_results_come_in_order(concurrent: bool) -> None:
    log = Log()
    results = run(log, concurrent)
    assert [r.name for r in results] == ["collect", "red", "green", "mutation", "full_suite"]
    assert all(r.wall_s >= 0.04 for r in results)
    assert results[0].start_s < results[1].start_s
    assert log.started[0] == "collect" and sorted(log.ended) == sorted(log.started)


def test_concurrent_stages_overlap_only_across_trees() -> None:
    log = Log()
    run(log, concurrent=True)
    assert frozenset({"red", "green"}) in log.overlaps  # RED's worktree and the green tree
    assert frozenset({"mutation", "full_suite"}) in log.overlaps
    assert frozenset({"green", "full_suite"}) not in log.overlaps  # the same tree: never at once
    assert not any("collect" in pair for pair in log.overlaps)  # everything waits for collect


def test_in_order_runs_never_overlap_and_span_the_sum() -> None:
    log = Log()
    results = run(log, concurrent=False)
    assert log.overlaps == set()
    for earlier, later in itertools.pairwise(results):
        assert later.start_s >= earlier.start_s + earlier.wall_s - 0.01


@pytest.mark.parametrize("concurrent", [False, True])
def test_no_stage_starts_after_an_earlier_one_failed(concurrent: bool) -> None:
    log = Log()
    results = run(log, concurrent, fail="green")
    names = [r.name for r in results]
    assert "mutation" not in names and "full_suite" not in names
    first_failure = next(r for r in results if not r.ok)
    assert first_failure.name == "green"


def test_a_stage_that_started_before_an_earlier_failure_is_still_reported() -> None:
    log = Log()
    slow_red = [p if p.name != "red" else StagePlan("red", lambda: log.stage("red", ok=False, seconds=0.3),
                                                     tree=None, after=("collect",)) for p in plans(log)]
    results = run_plan(slow_red, concurrent=True, on_start=log.started.append, on_end=lambda r: None)
    names = [r.name for r in results]
    assert names[:3] == ["collect", "red", "green"]  # green ran beside red; red failed later
    assert next(r for r in results if not r.ok).name == "red"


def test_an_exception_ends_the_other_stages_commands_and_goes_on(tmp_path: Path) -> None:
    started = threading.Event()

    def sleeper() -> StageResult:
        started.set()
        done = proc.run([sys.executable, "-c", "import time; time.sleep(60)"], cwd=tmp_path, timeout_s=120)
        return StageResult("red", done.ok, f"exit {done.returncode}")

    def broken() -> StageResult:
        started.wait(10)
        time.sleep(0.3)
        raise RuntimeError("boom")

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="boom"):
        run_plan([StagePlan("red", sleeper, tree=None), StagePlan("green", broken)], concurrent=True,
                 on_start=lambda n: None, on_end=lambda r: None)
    assert time.monotonic() - t0 < 30  # the sleeping command was ended, not waited for
    done = proc.run([sys.executable, "-c", "pass"], cwd=tmp_path)  # and commands start again afterwards
    assert done.ok


@pytest.mark.parametrize(("cores", "at_once"), [(1, False), (2, False), (3, False), (4, True), (64, True)])
def test_auto_runs_stages_at_once_only_with_enough_cores(cores: int, at_once: bool) -> None:
    assert MIN_CORES_AT_ONCE == 4
    assert stages_at_once("auto", cores) is at_once


def test_true_and_false_force_the_schedule_on_any_machine() -> None:
    for cores in (1, 2, 4, 64):
        assert stages_at_once(True, cores) is True and stages_at_once(False, cores) is False


def test_a_cgroup_quota_caps_the_cores_and_no_quota_leaves_them() -> None:
    assert cgroup_cpu_limit("200000 100000\n") == 2
    assert cgroup_cpu_limit("150000 100000") == 2  # 1.5 cores: a second one is partly usable
    assert cgroup_cpu_limit("50000 100000") == 1
    for text in ("max 100000\n", "", "garbage", "x 100000", "0 100000"):
        assert cgroup_cpu_limit(text) is None, text
    assert 1 <= usable_cores() <= len(os.sched_getaffinity(0))


def test_the_evidence_says_whether_stages_ran_at_once_and_from_what(make_repo) -> None:
    repo = make_project(make_repo)  # harness.yaml leaves concurrent_stages at its default
    apply_change(repo, {"tests/test_mul.py": MUL_TEST, "pkg/calc.py": MUL_IMPL})
    assert main(["run", "-C", str(repo), "--no-agent", "CALC-001"]) == 0
    evidence = repo / git(repo, "log", "-1", "--format=%(trailers:key=Harness-Evidence,valueonly)").strip()
    timing = json.loads((evidence / "attempt.json").read_text())["timing"]
    cores = usable_cores()
    assert (timing["concurrent_stages"], timing["concurrent_stages_setting"], timing["cores"]) == (
        cores >= MIN_CORES_AT_ONCE, "auto", cores)
    summary = (evidence / "analysis" / "summary.md").read_text()
    schedule = "stages in different trees ran at once" if cores >= MIN_CORES_AT_ONCE else "one stage at a time"
    assert f"({schedule}; `concurrent_stages: auto`, {cores} usable cores)" in summary


def test_an_exception_in_one_proof_leaves_another_proofs_commands_running(tmp_path: Path) -> None:
    """Parallel workers prove at the same time: one worker's failing stage ends its own commands only."""
    other_started = threading.Event()
    other: list[StageResult] = []

    def slow_but_fine() -> StageResult:
        other_started.set()
        done = proc.run([sys.executable, "-c", "import time; time.sleep(2)"], cwd=tmp_path, timeout_s=60)
        return StageResult("green", done.ok, f"exit {done.returncode}")

    def other_proof() -> None:
        other.extend(run_plan([StagePlan("green", slow_but_fine)], concurrent=True, on_start=lambda n: None,
                              on_end=lambda r: None))

    def broken() -> StageResult:
        other_started.wait(10)
        time.sleep(0.3)
        raise RuntimeError("boom")

    thread = threading.Thread(target=other_proof)
    thread.start()
    with pytest.raises(RuntimeError, match="boom"):
        run_plan([StagePlan("green", broken)], concurrent=True, on_start=lambda n: None, on_end=lambda r: None)
    thread.join(30)
    assert [(r.name, r.ok, r.reason) for r in other] == [("green", True, "exit 0")]


def test_commands_of_concurrent_stages_reach_the_callers_group_watcher(tmp_path: Path) -> None:
    """A parallel worker records every process group its proof starts, in whichever thread a stage runs."""
    seen: list[int] = []
    pgids: list[int] = []

    def stage(name: str) -> StagePlan:
        def go() -> StageResult:
            pgids.append(proc.run([sys.executable, "-c", "pass"], cwd=tmp_path).pgid)
            return StageResult(name, True, "ok")
        return StagePlan(name, go, tree=name)

    with proc.watching_groups(seen.append):
        run_plan([stage("red"), stage("green")], concurrent=True, on_start=lambda n: None, on_end=lambda r: None)
    assert sorted(seen) == sorted(pgids) and len(pgids) == 2
