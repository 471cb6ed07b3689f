"""Run many selectors in few pytest processes and map the results back to each selector.

Plain selectors (node ids and paths) share one pytest process; a selector with options (`-k`, `-m`, ...)
runs alone, since its options would apply to every other selector in the batch. The recorder plugin
records node ids; a node id belongs to a plain selector when it equals one of the selector's arguments
or starts with it followed by `::`, `[` or `/` (arguments normalised: `./` and trailing slashes
dropped, absolute paths made relative). A collection error belongs to a selector in both directions:
an error in `tests/test_x.py` sinks `tests/test_x.py::test_y`, and one in `tests/sub` sinks `tests`.

A batch that pytest refuses as a whole (exit 4: a node id or file that does not exist, a broken
conftest) is split: the selectors its error lines name run alone and the rest run again as a batch;
when nothing is named, every selector runs alone. A selector that maps to nothing in a finished
batch runs alone too, so "no tests" is always the verdict of a run of that selector by itself.
"""
from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType

from harness.errors import SelectorError
from harness.pytest_run.results import Outcome, Phase, PytestRun, TestResult, count_text
from harness.pytest_run.runner import PytestSettings, Selector, run_pytest

MAX_BATCH_ARGS = 400  # keeps argv (and one failed batch's solo reruns) bounded
MAX_SPLIT_ROUNDS = 6  # pytest names one broken conftest per refusal
BASE_ARGS = ("--continue-on-collection-errors",)  # one broken file must not stop its batch-mates
_MISSING = re.compile(
    r"^ERROR: (?:file or directory not found|not found|found no collectors for):?\s+(.+?)\s*$")
_CONFTEST = re.compile(r"^ImportError while loading conftest '(.+?)'")
_PASSING = frozenset({Outcome.PASSED, Outcome.XPASSED})


class Status(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    NO_TESTS = "no_tests"
    COLLECTED = "collected"  # collect mode only

    @property
    def bad(self) -> bool:
        """What makes `selectors run`/`collect` exit 1."""
        return self in (Status.FAILED, Status.ERROR, Status.NO_TESTS)


DEFAULT_SETTINGS = PytestSettings()  # this Python's pytest, no extra environment, no timeout


@dataclass(frozen=True)
class SelectorResult:
    """One selector's verdict. `nodeids`: the tests that ran (collect mode: were collected)."""

    selector: str
    status: Status
    counts: Mapping[str, int]
    duration_s: float
    failing: tuple[str, ...]
    nodeids: tuple[str, ...]
    run_name: str
    detail: str


@dataclass(frozen=True)
class BatchRun:
    """One pytest process: which selectors it served, why it ran, how it ended."""

    name: str
    selectors: tuple[str, ...]
    why: str
    returncode: int
    exit_meaning: str
    duration_s: float
    log: str
    junit: str | None  # pytest writes none when it refuses its arguments


@dataclass(frozen=True)
class SelectorRun:
    results: tuple[SelectorResult, ...]
    batches: tuple[BatchRun, ...]
    collect_only: bool
    jobs: int

    def bad(self) -> tuple[SelectorResult, ...]:
        return tuple(r for r in self.results if r.status.bad)


# --- mapping (pure) ----------------------------------------------------------------------------------


def normalise_arg(arg: str, cwd: Path | None = None) -> str:
    """`./tests/x.py::t` -> `tests/x.py::t`; `tests/` -> `tests`; `.` -> `` (everything)."""
    path, sep, rest = arg.partition("::")
    if cwd is not None and os.path.isabs(path):
        for base in (Path(cwd), Path(cwd).resolve()):
            try:
                path = Path(path).relative_to(base).as_posix()
                break
            except ValueError:
                continue
    path = posixpath.normpath(path) if path else path
    if path == ".":
        path = ""
    return path + sep + rest


def ancestors(nodeid: str) -> Iterable[str]:
    """Every A such that `nodeid` belongs to A: itself, each prefix cut before `::`, `[` or `/`, and ``."""
    yield nodeid
    for i, ch in enumerate(nodeid):
        if ch in "[/" or (ch == ":" and nodeid.startswith("::", i)):
            yield nodeid[:i]
    yield ""


class SelectorIndex:
    """Normalised selector arguments -> positions of the selectors that hold them."""

    def __init__(self, selectors: Sequence[Selector], cwd: Path | None = None) -> None:
        self._exact: dict[str, set[int]] = {}
        self._within: dict[str, set[int]] = {}  # every ancestor of an argument -> selectors
        for index, selector in enumerate(selectors):
            for arg in selector.args:
                if arg.startswith("-"):
                    continue
                norm = normalise_arg(arg, cwd)
                self._exact.setdefault(norm, set()).add(index)
                for up in ancestors(norm):
                    self._within.setdefault(up, set()).add(index)

    def owners(self, nodeid: str) -> set[int]:
        """Selectors that `nodeid` belongs to."""
        found: set[int] = set()
        for up in ancestors(nodeid):
            found |= self._exact.get(up, set())
        return found

    def related(self, nodeid: str) -> set[int]:
        """Selectors `nodeid` belongs to, or that lie inside `nodeid` (for collection errors)."""
        return self.owners(nodeid) | self._within.get(nodeid, set())


def assign(selectors: Sequence[Selector], run: PytestRun, cwd: Path | None = None
           ) -> tuple[list[list[TestResult]], list[list[str]]]:
    """Per selector (same order): its results and its collected node ids, by the node-id rule."""
    index = SelectorIndex(selectors, cwd)
    results: list[list[TestResult]] = [[] for _ in selectors]
    collected: list[list[str]] = [[] for _ in selectors]
    for result in run.results:
        if result.phase == Phase.COLLECT:
            owners = index.related(normalise_arg(result.nodeid if result.nodeid != "." else ""))
        else:
            owners = index.owners(result.nodeid)
        for i in owners:
            results[i].append(result)
    for nodeid in run.collected:
        for i in index.owners(nodeid):
            collected[i].append(nodeid)
    return results, collected


def classify(raw: str, results: Sequence[TestResult], collected: Sequence[str], run: PytestRun, *,
             collect_only: bool, blame: str | None = None) -> SelectorResult:
    """The verdict on one selector from the results that belong to it (all of them for a solo run).

    `blame`: the error line for which pytest refused a batch because of this selector (exit 4).
    """
    counts: dict[str, int] = {}
    for r in results:
        counts[r.outcome.value] = counts.get(r.outcome.value, 0) + 1
    failing = tuple(r.nodeid for r in results if r.failing)
    ran = {r.nodeid for r in results}
    duration = round(sum(r.duration_s for r in results), 6)

    def verdict(status: Status, detail: str, nodeids: Sequence[str] = ()) -> SelectorResult:
        return SelectorResult(raw, status, MappingProxyType(counts), duration, failing, tuple(nodeids),
                              run.name, detail)

    unique = list(dict.fromkeys(collected))
    if collect_only and unique:
        counts["collected"] = len(unique)
    if failing:
        first = next(r for r in results if r.failing)
        status = Status.FAILED if any(r.outcome == Outcome.FAILED for r in results) else Status.ERROR
        why = f"{len(failing)} failing; first: {first.describe()}"
        if run.timed_out:
            why += f" ({run.exit_meaning})"
        return verdict(status, why,
                       unique if collect_only else [r.nodeid for r in results if r.phase != Phase.COLLECT])
    if collect_only and unique:
        return verdict(Status.COLLECTED, f"{len(unique)} test(s) collected", unique)
    not_run = [n for n in unique if n not in ran]
    if not collect_only and not_run:
        why = run.exit_meaning if run.timed_out or run.returncode not in (0, 1) else "the run stopped early"
        return verdict(Status.ERROR, f"{len(not_run)} test(s) collected but not run ({why})",
                       [r.nodeid for r in results])
    if results:
        nodeids = [r.nodeid for r in results if r.phase != Phase.COLLECT]
        if any(r.outcome in _PASSING for r in results):
            return verdict(Status.PASSED, count_text(counts), nodeids)
        return verdict(Status.SKIPPED, f"nothing passed: {count_text(counts)}", nodeids)
    if run.timed_out:
        return verdict(Status.ERROR, run.exit_meaning)
    if run.returncode == 5:
        return verdict(Status.NO_TESTS, "selects no tests: pytest collected none")
    if run.returncode == 4:
        line = blame if blame is not None else _missing(run)
        if _MISSING.match(line or ""):
            return verdict(Status.NO_TESTS, f"selects no tests: {line}")
        return verdict(Status.ERROR, f"pytest refused it (exit 4): {line or run.usage_error()}")
    if run.returncode in (0, 1):
        return verdict(Status.NO_TESTS, "selects no tests (none of the run's node ids belong to it)")
    return verdict(Status.ERROR, f"pytest exit {run.returncode} ({run.exit_meaning}): {run.usage_error()}")


def _missing(run: PytestRun) -> str:
    return next((line for line in run.error_lines if _MISSING.match(line)), "")


def culprits(selectors: Sequence[Selector], run: PytestRun, cwd: Path) -> dict[int, str]:
    """Selectors that pytest's error lines (or collection errors) blame for refusing a batch -> that line."""
    index = SelectorIndex(selectors, cwd)
    blamed: dict[int, str] = {}

    def blame(positions: set[int], line: str) -> None:
        for i in positions:
            blamed.setdefault(i, line)

    for line in run.error_lines:
        if m := _MISSING.match(line):
            blame(index.related(normalise_arg(m[1], cwd)), line)
        elif m := _CONFTEST.match(line):
            folder = posixpath.dirname(normalise_arg(m[1], cwd))
            blame(index.related(folder), line)
    for result in run.collection_errors():
        blame(index.related(normalise_arg(result.nodeid if result.nodeid != "." else "")), result.describe())
    return blamed


# --- batching and running ----------------------------------------------------------------------------


def plan_batches(selectors: Sequence[Selector], max_args: int = MAX_BATCH_ARGS) -> list[list[int]]:
    """Positions of the selectors per pytest process: plain ones together (in chunks), others alone."""
    batches: list[list[int]] = []
    current: list[int] = []
    n_args = 0
    for i, selector in enumerate(selectors):
        if not selector.is_plain:
            batches.append([i])
            continue
        if current and n_args + len(selector.args) > max_args:
            batches.append(current)
            current, n_args = [], 0
        current.append(i)
        n_args += len(selector.args)
    if current:
        batches.append(current)
    return sorted(batches, key=lambda b: b[0])


class _Runner:
    def __init__(self, selectors: Sequence[Selector], cwd: Path, out_dir: Path, options: PytestSettings,
                 collect_only: bool, jobs: int) -> None:
        self.selectors, self.cwd, self.out_dir = selectors, Path(cwd).resolve(), Path(out_dir)
        self.options, self.collect_only, self.jobs = options, collect_only, jobs
        self.results: dict[int, SelectorResult] = {}
        self.batches: list[BatchRun] = []

    def pytest(self, positions: Sequence[int], why: str, parallel: bool) -> PytestRun:
        args = list(dict.fromkeys(a for i in positions for a in self.selectors[i].args))
        extra = [*BASE_ARGS]
        if parallel and self.jobs > 1 and not self.collect_only:
            extra += ["-p", "xdist", "-n", str(self.jobs)]
        name = f"{len(self.batches) + 1:03d}-{'batch' if len(positions) > 1 else 'solo'}"
        run = run_pytest(args, cwd=self.cwd, out_dir=self.out_dir, name=name, command=self.options.command,
                         extra_args=extra, env=dict(self.options.env), timeout_s=self.options.timeout_s,
                         collect_only=self.collect_only, warm_start=self.options.warm_start)
        xdist_missing = run.returncode == 4 and any("xdist" in line for line in run.error_lines)
        if parallel and self.jobs > 1 and xdist_missing:
            raise SelectorError(f"--jobs {self.jobs} needs pytest-xdist in the project's python: "
                                f"{run.usage_error()} (see {run.log_path}); install it or drop --jobs")
        raws = tuple(self.selectors[i].raw for i in positions)
        junit = run.junit_path.name if run.junit_path.exists() else None
        self.batches.append(BatchRun(name, raws, why, run.returncode, run.exit_meaning,
                                     round(run.duration_s, 3), run.log_path.name, junit))
        return run

    def solo(self, i: int, why: str, parallel: bool = False) -> None:
        run = self.pytest([i], why, parallel)
        # Alone, everything the run reports is this selector's, whatever the node ids look like.
        self.results[i] = classify(self.selectors[i].raw, run.results, run.collected, run,
                                   collect_only=self.collect_only)

    def batch(self, positions: list[int], why: str, rounds: int = 0) -> None:
        if len(positions) == 1:
            plain = self.selectors[positions[0]].is_plain
            self.solo(positions[0], why if rounds else ("alone: " + ("the only plain selector" if plain
                                                                      else "it has options")), parallel=True)
            return
        run = self.pytest(positions, why, parallel=True)
        chosen = [self.selectors[i] for i in positions]
        results, collected = assign(chosen, run, self.cwd)
        if run.returncode == 4 and not run.timed_out:
            blamed = culprits(chosen, run, self.cwd)
            if len(blamed) == len(positions):  # each alone would be refused for the same reason
                for j, i in enumerate(positions):
                    self.results[i] = classify(self.selectors[i].raw, results[j], [], run,
                                               collect_only=self.collect_only, blame=blamed[j])
                return
            if not blamed or rounds >= MAX_SPLIT_ROUNDS:
                for i in positions:
                    self.solo(i, f"alone: batch {run.name} exited 4 ({run.usage_error()})")
                return
            for j in sorted(blamed):
                self.solo(positions[j], f"alone: named in batch {run.name}'s error: {blamed[j]}")
            rest = [i for j, i in enumerate(positions) if j not in blamed]
            self.batch(rest, f"batch again without the selectors {run.name} failed on", rounds + 1)
            return
        for j, i in enumerate(positions):
            unmapped = not results[j] and not collected[j]
            if unmapped and not run.timed_out and run.returncode != 5:
                self.solo(i, f"alone: no node id of batch {run.name} belongs to it")
            else:
                self.results[i] = classify(self.selectors[i].raw, results[j], collected[j], run,
                                           collect_only=self.collect_only)


def run_batched(
    selectors: Sequence[Selector],
    *,
    cwd: Path,
    out_dir: Path,
    options: PytestSettings = DEFAULT_SETTINGS,
    jobs: int = 1,
    batched: bool = True,
    collect_only: bool = False,
) -> SelectorRun:
    """Run (or with `collect_only`, collect) every selector; results in the order given.

    `batched=False` runs one pytest process per selector (the slow reference the batching is tested
    against). `jobs > 1` runs batches with pytest-xdist (`-n jobs`). Duplicate selectors are an error.
    """
    if jobs < 1:
        raise SelectorError(f"--jobs must be at least 1, got {jobs}")
    raws = [s.raw for s in selectors]
    if len(set(raws)) != len(raws):
        raise SelectorError(f"duplicate selectors given: {sorted({r for r in raws if raws.count(r) > 1})}")
    runner = _Runner(selectors, cwd, out_dir, options, collect_only, jobs)
    if batched:
        # pytest refuses a whole batch for each missing file, one file per refusal: those run alone at once.
        missing = [i for i, s in enumerate(selectors) if s.is_plain and _missing_path(s, runner.cwd)]
        for i in missing:
            runner.solo(i, "alone: its file or folder does not exist")
        rest = [i for i in range(len(selectors)) if i not in set(missing)]
        for positions in plan_batches([selectors[i] for i in rest]):
            runner.batch([rest[j] for j in positions], "batch")
    else:
        for i in range(len(selectors)):
            runner.solo(i, "alone: one process per selector")
    ordered = tuple(runner.results[i] for i in range(len(selectors)))
    return SelectorRun(ordered, tuple(runner.batches), collect_only, jobs)


def _missing_path(selector: Selector, cwd: Path) -> bool:
    return any(not (cwd / normalise_arg(arg, cwd).partition("::")[0]).exists() for arg in selector.args)
