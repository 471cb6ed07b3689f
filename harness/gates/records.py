"""What the gates that keep a proof honest report: typed, immutable records read by attribute.

`integrity` (harness/integrity/), `acceptance` (harness/acceptance.py) and `mutation` (harness/mutation/)
each put one of these in their StageResult's `detail`; harness/iteration/attempt_record.py writes them into
attempt.json and summary.md (docs/specs/evidence.md names every field).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntegrityFinding:
    """One way the change weakened the tests. `test` is a pytest node id, or the file itself for what
    applies to a whole file (a configuration file, a helper); `allowed`: lifted by the item's `Allow:`."""

    kind: str
    file: str
    test: str
    detail: str
    allowed: bool = False

    def describe(self) -> str:
        return f"{self.kind}: {self.test}: {self.detail}" + (" (allowed by the item)" if self.allowed else "")


@dataclass(frozen=True)
class IntegrityDetail:
    """Every finding, allowed or not; the kinds the item allows; the files compared with the base."""

    findings: tuple[IntegrityFinding, ...]
    allowed_kinds: tuple[str, ...]
    files_checked: tuple[str, ...]

    @property
    def blocking(self) -> tuple[IntegrityFinding, ...]:
        return tuple(f for f in self.findings if not f.allowed)


@dataclass(frozen=True)
class AcceptanceDetail:
    """Held-out tests as node ids and outcomes only: their source, messages and logs never leave the
    temporary tree they ran in."""

    selectors: tuple[str, ...]
    results: tuple[tuple[str, str], ...]  # (node id, outcome)
    holdout_files: int


@dataclass(frozen=True)
class MutantOutcome:
    """One mutant: where, what it changed, and what the RED selectors' tests did to it.

    `status`: killed (a test failed), timeout (counts as killed), survived (every test passed), or
    not_importable (the mutated code could not be collected: counts as neither)."""

    path: str
    line: int
    operator: str
    original: str
    mutant: str
    status: str
    duration_s: float

    def describe(self) -> str:
        return f"{self.path}:{self.line}: {self.original} -> {self.mutant}"


KILLED_STATUSES = frozenset({"killed", "timeout"})


@dataclass(frozen=True)
class MutationDetail:
    """`score` = killed / (killed + survived), timeouts counted as killed; None when no mutant could be
    scored. `candidates`: mutants found on the changed lines before `max_mutants` chose among them."""

    mutants: tuple[MutantOutcome, ...]
    candidates: int
    min_score: float
    changed_lines: int

    @property
    def killed(self) -> int:
        return sum(1 for m in self.mutants if m.status in KILLED_STATUSES)

    @property
    def survived(self) -> int:
        return sum(1 for m in self.mutants if m.status == "survived")

    @property
    def timed_out(self) -> int:
        return sum(1 for m in self.mutants if m.status == "timeout")

    @property
    def not_importable(self) -> int:
        return sum(1 for m in self.mutants if m.status == "not_importable")

    @property
    def score(self) -> float | None:
        scored = self.killed + self.survived
        return self.killed / scored if scored else None

    @property
    def survivors(self) -> tuple[MutantOutcome, ...]:
        return tuple(m for m in self.mutants if m.status == "survived")
