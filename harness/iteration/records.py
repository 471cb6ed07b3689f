"""The hand-offs between the steps of one iteration: what to prove, where the attempt writes, what was
proven, what was staged as evidence, and the result."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from harness.config import Config, JudgingSettings
from harness.durability.journal import Journal
from harness.ledger import Item, Ledger
from harness.proof.changes import ChangeSet
from harness.proof.stage_records import StageResult

Progress = Callable[[str], None]


@dataclass(frozen=True)
class IterationRequest:
    """What to prove. `head` None: the change is the working tree; otherwise the commits base..head.
    `config`: the settings the attempt runs under; `judged`: where they came from (harness.config.judging:
    the base commit's harness.yaml), None where the caller gave `config` as it is."""

    root: Path
    config: Config
    item: Item
    base: str
    head: str | None = None
    keep_open: bool = False
    dry_run: bool = False
    ledger: Ledger | None = field(default=None, repr=False)  # the parse the item came from, reused if current
    trailers: tuple[tuple[str, str], ...] = ()  # added to the recording commit's (Harness-Merged-Onto)
    judged: JudgingSettings | None = field(default=None, repr=False)


@dataclass(frozen=True)
class AttemptContext:
    """Where one attempt writes: its number and start, its evidence folder in the tree (claimed, empty
    until the attempt is recorded), the staging folder it is assembled in, and the journal."""

    number: int
    started: datetime
    evidence_dir: Path
    evidence_rel: str
    staging: Path
    journal: Journal = field(repr=False)


@dataclass(frozen=True)
class Proof:
    """What the prove step established: the stages in the order they ran (at least one: the agent's turn
    or RED, run or skipped), and the change set they proved, which is the one to commit. `left_out_ref`:
    where the files the commit leaves out were saved when they do not stay in the working tree (a
    parallel worker's worktree goes away)."""

    stages: tuple[StageResult, ...]
    changeset: ChangeSet
    left_out_ref: str | None = None

    def __post_init__(self) -> None:
        if not self.stages:
            raise ValueError("a proof holds at least one stage")

    @property
    def failed(self) -> StageResult | None:
        """The stage that stopped the iteration (stages after it did not run)."""
        return next((s for s in self.stages if not s.ok), None)

    @property
    def succeeded(self) -> bool:
        return self.failed is None

    @property
    def outcome(self) -> str:
        """As the ledger's attempt line and the commit subject write it."""
        failed = self.failed
        return "GREEN" if failed is None else f"FAILED at {failed.name}"

    @property
    def reason(self) -> str:
        failed = self.failed
        return "all stages passed" if failed is None else failed.reason


@dataclass(frozen=True)
class StagedEvidence:
    """The evidence folder, complete with its SHA256SUMS, still in staging; `record` is attempt.json."""

    folder: Path
    record: dict = field(repr=False)
    saved_ref: str | None


@dataclass(frozen=True)
class IterationResult:
    item_id: str
    attempt: int
    succeeded: bool
    failed_stage: str | None
    reason: str
    evidence_dir: Path
    commit: str | None
    saved_ref: str | None
    stages: tuple[StageResult, ...]
    changeset: ChangeSet
    record: dict = field(repr=False, default_factory=dict)

    @property
    def outcome(self) -> str:
        return "GREEN" if self.succeeded else f"FAILED at {self.failed_stage}"
