"""What the stages of an iteration run with and what they report: typed, immutable records.

A stage is `collect`, `integrity`, `red`, `green`, `acceptance`, `mutation`, `regression`, `full_suite`,
`lint` or an agent turn (`agent`, or `agent_red` and `agent_green` in two-phase mode); a parallel worker's
attempt adds `merge` and `merged-gates`. What only one kind of stage knows sits in its `detail`
record; attempt.json and summary.md are written from these records (harness/iteration/report.py), so
their fields are the evidence contract of docs/specs/evidence.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.agent.sandbox import SandboxView
from harness.gates.records import AcceptanceDetail, IntegrityDetail, MutationDetail
from harness.proof.verdicts import FullSuiteVerdict, Verdict
from harness.pytest_run.results import PytestRun
from harness.pytest_run.runner import Selector


@dataclass(frozen=True)
class SelectorOutcome:
    """One selector's run in one stage and the verdict on it (`ok` and `reason` are the verdict's);
    `reruns`: the same selector run again unchanged to confirm a RED or GREEN proof (`gates.reruns`)."""

    selector: Selector
    run: PytestRun
    ok: bool
    reason: str
    verdict: Verdict | FullSuiteVerdict
    reruns: tuple[PytestRun, ...] = ()


@dataclass(frozen=True)
class FullSuiteDetail:
    """The full suite against the known-failures file: node ids, and the file they were judged by (None:
    none is configured)."""

    new_failures: tuple[str, ...]
    tolerated: tuple[str, ...]
    now_passing: tuple[str, ...]
    known_failures_file: str | None


@dataclass(frozen=True)
class LintDetail:
    """The static-analysis gate: each new finding on one line, and how many the change fixed."""

    new_findings: tuple[str, ...]
    fixed_findings: int


@dataclass(frozen=True)
class AgentTurnDetail:
    """One run of the agent as the harness saw it. `phase`: `single`, `red` or `green`; `preset`: the preset
    whose argv ran (None: `agent.command`'s); `sandbox`: what it could reach (harness.agent.sandbox)."""

    phase: str
    argv: tuple[str, ...]
    exit_code: int
    timed_out: bool
    discarded_edits: tuple[str, ...]
    preset: str | None = None
    sandbox: SandboxView | None = None


@dataclass(frozen=True)
class MergeDetail:
    """A parallel worker's change applied onto the branch's head (`onto`): the merged tree, or the paths in
    conflict (`merged_tree` None)."""

    onto: str
    merged_tree: str | None
    conflicts: tuple[str, ...]


StageDetail = (FullSuiteDetail | LintDetail | AgentTurnDetail | MergeDetail | IntegrityDetail
               | AcceptanceDetail | MutationDetail)


@dataclass(frozen=True)
class StageResult:
    """One stage of the iteration. `skipped`: not required for this item (it holds, and says why).

    `duration_s`: the time its pytest runs took; `wall_s`: from its start to its end, and `start_s`: when
    it started, in seconds after the iteration's first stage started (stages in different trees may
    overlap)."""

    name: str
    ok: bool
    reason: str
    outcomes: tuple[SelectorOutcome, ...] = ()
    duration_s: float = 0.0
    detail: StageDetail | None = None
    skipped: bool = False
    wall_s: float = 0.0
    start_s: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        total: dict[str, int] = {}
        if self.name == "collect":
            return {"collected": sum(len(o.run.collected) for o in self.outcomes)} if self.outcomes else {}
        for outcome in self.outcomes:
            for key, value in outcome.run.counts().items():
                total[key] = total.get(key, 0) + value
        return total


def skipped_stage(name: str, why: str) -> StageResult:
    return StageResult(name, True, f"{name}: {why}", skipped=True)
