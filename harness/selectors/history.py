"""The selector history (JSON lines, one per `selectors run`) and the comparison of a run against it.

A line: {"format": 1, "run": stamp, "started": iso, "commit": sha, "dirty": bool, "run_dir": path,
"filter": {...}, "results": {selector: {"status", "counts", "failing", "duration_s"}}}. Lines are only
ever appended, each with one write(2) on an O_APPEND descriptor followed by fsync, so concurrent writers
never interleave and a crash leaves at most one torn last line, which loading skips and reports.
"""
from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import SelectorError
from harness.selectors.runs import SelectorResult, Status

FORMAT = 1
FAILING_STATUSES = frozenset({Status.FAILED.value, Status.ERROR.value})
MAX_FAILING_KEPT = 50  # per selector per line: enough to read, bounded for a long history


@dataclass(frozen=True)
class RunRecord:
    """One history line."""

    run: str
    started: str
    commit: str
    dirty: bool
    run_dir: str
    results: Mapping[str, Mapping[str, Any]]
    line: int


@dataclass(frozen=True)
class Point:
    """One selector's result in one recorded run."""

    run: str
    started: str
    commit: str
    dirty: bool
    status: str
    counts: Mapping[str, int]
    failing: tuple[str, ...]

    @property
    def failed(self) -> bool:
        return self.status in FAILING_STATUSES


@dataclass(frozen=True)
class History:
    path: Path
    records: tuple[RunRecord, ...]
    problems: tuple[str, ...]  # unreadable lines, skipped

    def timeline(self, selector: str) -> list[Point]:
        """The selector's results, oldest first."""
        points = []
        for r in self.records:
            entry = r.results.get(selector)
            if isinstance(entry, Mapping):
                points.append(Point(r.run, r.started, r.commit, r.dirty, str(entry.get("status", "?")),
                                    dict(entry.get("counts") or {}), tuple(entry.get("failing") or ())))
        return points

    def last_pass(self, selector: str) -> Point | None:
        return next((p for p in reversed(self.timeline(selector)) if p.status == Status.PASSED), None)

    def previous(self) -> RunRecord | None:
        return self.records[-1] if self.records else None


def load_history(path: Path) -> History:
    """Every readable line of the history file (none if it does not exist); bad lines become `problems`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return History(path, (), ())
    except OSError as exc:
        raise SelectorError(f"cannot read the selector history {path}: {exc.strerror}; "
                            "check permissions") from None
    records: list[RunRecord] = []
    problems: list[str] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
            records.append(_record(obj, number))
        except (ValueError, KeyError, TypeError) as exc:
            problems.append(f"{path}:{number}: skipped an unreadable history line ({exc}); "
                            f"a crash mid-write leaves one; delete the line to silence this")
    return History(path, tuple(records), tuple(problems))


def _record(obj: Any, line: int) -> RunRecord:
    if not isinstance(obj, dict) or not isinstance(obj.get("results"), dict):
        raise TypeError("not an object with `results`")
    if obj.get("format") != FORMAT:
        raise ValueError(f"format {obj.get('format')!r}, expected {FORMAT}")
    return RunRecord(str(obj["run"]), str(obj.get("started", "")), str(obj["commit"]), bool(obj.get("dirty")),
                     str(obj.get("run_dir", "")), obj["results"], line)


def history_line(*, run: str, started: str, commit: str, dirty: bool, run_dir: str,
                 filter: Mapping[str, Any], results: Iterable[SelectorResult]) -> dict[str, Any]:
    return {
        "format": FORMAT, "run": run, "started": started, "commit": commit, "dirty": dirty,
        "run_dir": run_dir, "filter": dict(filter),
        "results": {r.selector: {"status": r.status.value, "counts": dict(r.counts),
                                 "failing": list(r.failing[:MAX_FAILING_KEPT]), "duration_s": r.duration_s}
                    for r in results},
    }


def append_history(path: Path, line: Mapping[str, Any]) -> None:
    """Append one JSON line: a single write on an O_APPEND descriptor, then fsync."""
    path = Path(path)
    data = (json.dumps(line, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as exc:
        raise SelectorError(f"cannot write the selector history {path}: {exc.strerror}; "
                            "check permissions") from None
    try:
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # end a torn line left by a crash, or this line would be glued to it
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        raise SelectorError(f"cannot append to the selector history {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


# --- comparison (pure) -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One selector whose state is worth saying. `last_pass`: its last passing run before now;
    `since`: the first run of its current streak of not passing (None: the streak starts now)."""

    selector: str
    status: str
    last_pass: Point | None
    since: Point | None
    detail: str


@dataclass(frozen=True)
class Comparison:
    regressions: tuple[Finding, ...]
    still_failing: tuple[Finding, ...]
    new_failures: tuple[Finding, ...]
    no_tests: tuple[Finding, ...]
    fixed: tuple[Finding, ...]
    new_selectors: tuple[str, ...]
    removed_selectors: tuple[str, ...]
    previous_run: str | None

    def kind_of(self, selector: str) -> str | None:
        for kind in ("regressions", "still_failing", "new_failures", "no_tests", "fixed"):
            if any(f.selector == selector for f in getattr(self, kind)):
                return kind
        return None


def compare(history: History, results: Sequence[SelectorResult], registry: Iterable[str]) -> Comparison:
    """Class each result against its recorded timeline (the current run must not be in `history` yet).

    A failing selector is a regression while a pass precedes its current failing streak (it stays one
    until it passes again), still failing when the streak holds an earlier failure and no pass precedes
    it, and new otherwise. Removed selectors: in the previous run, no longer in the registry.
    """
    found: dict[str, list[Finding]] = {k: [] for k in ("regression", "still", "new", "empty", "fixed")}
    new_selectors = []
    for result in results:
        points = history.timeline(result.selector)
        if not points:
            new_selectors.append(result.selector)
        streak = _tail(points, lambda p: p.status != Status.PASSED)
        before = points[-len(streak) - 1] if len(points) > len(streak) else None
        last_pass = before if before is not None and before.status == Status.PASSED else None
        status = result.status
        if status in (Status.FAILED, Status.ERROR):
            since = next((p for p in streak if p.failed), None)
            kind = "regression" if last_pass else ("still" if since else "new")
            found[kind].append(Finding(result.selector, status.value, last_pass, since, result.detail))
        elif status == Status.NO_TESTS:
            empty = _tail(points, lambda p: p.status == Status.NO_TESTS)
            since = empty[0] if empty else None
            found["empty"].append(Finding(result.selector, status.value, last_pass, since, result.detail))
        elif status == Status.PASSED and points and (points[-1].failed or points[-1].status == "no_tests"):
            found["fixed"].append(Finding(result.selector, status.value, last_pass, streak[0], result.detail))
    registered = set(registry)
    previous = history.previous()
    removed = tuple(s for s in previous.results if s not in registered) if previous else ()
    return Comparison(tuple(found["regression"]), tuple(found["still"]), tuple(found["new"]),
                      tuple(found["empty"]), tuple(found["fixed"]), tuple(new_selectors), removed,
                      previous.run if previous else None)


def _tail(points: Sequence[Point], keep: Callable[[Point], bool]) -> list[Point]:
    """The trailing run of points that `keep` accepts, oldest first."""
    tail: list[Point] = []
    for point in reversed(points):
        if not keep(point):
            break
        tail.append(point)
    return tail[::-1]
