"""The selectors page model: each registered selector's result in each recorded run, regressions marked.

Columns are the runs of the selector history (`harness selectors run` appends one line per run), oldest
left, the last `MAX_RUNS` of them; each links to its row in the runs table, which names the commit the run
tested. A selector is a regression, as `harness selectors run` judges it (harness.selectors.history), when
its latest result fails and a pass precedes its current streak of not passing; the cell where that streak
began is marked too. Pure: file links come from the caller's `file_href`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from harness.gitops import CommitSummary
from harness.selectors.history import FAILING_STATUSES, History
from harness.selectors.registry import Registry
from harness.webreport.model import Link, counts_text
from harness.webreport.paths import SELECTORS_PAGE, Linker, item_page

MAX_RUNS = 60
PASSED = "passed"


@dataclass(frozen=True)
class RunColumn:
    anchor: str
    run: str
    started: str
    commit: str
    commit_short: str
    subject: str
    dirty: bool
    results: Link


@dataclass(frozen=True)
class Cell:
    status: str  # a selector status (passed, failed, error, skipped, no_tests) or "absent"
    href: str
    title: str
    breaks: bool  # the first failure after a pass: where a regression began


@dataclass(frozen=True)
class SelectorRow:
    raw: str
    named_by: tuple[Link, ...]
    groups: str
    cells: tuple[Cell, ...]
    last_status: str
    regression: bool
    since: str  # the run where the current failing streak began, for a regression


@dataclass(frozen=True)
class SelectorsModel:
    runs: tuple[RunColumn, ...]
    runs_left_out: int
    rows: tuple[SelectorRow, ...]
    regressions: int
    history_path: str
    problems: tuple[str, ...]


def _regression(statuses: list[str]) -> tuple[bool, int | None]:
    """(is a regression, index where its failing streak began) over a selector's results, oldest first."""
    if not statuses or statuses[-1] not in FAILING_STATUSES:
        return False, None
    start = len(statuses)
    while start > 0 and statuses[start - 1] != PASSED:
        start -= 1
    if start == 0:
        return False, None  # no pass before the streak: still failing or new, not a regression
    first_failure = next(i for i in range(start, len(statuses)) if statuses[i] in FAILING_STATUSES)
    return True, first_failure


def selectors_model(registry: Registry, history: History, commits: Mapping[str, CommitSummary],
                    linker: Linker, file_href: Callable[[str, str], str | None], history_rel: str,
                    problems: tuple[str, ...] = ()) -> SelectorsModel:
    """`commits`: summaries of the runs' commits; `file_href(page, rel)`: href to a repository file or None;
    `problems`: what could not be read (shown on the page)."""
    page = SELECTORS_PAGE
    records = history.records[-MAX_RUNS:]
    runs = []
    for index, record in enumerate(records):
        summary = commits.get(record.commit)
        results = f"{record.run_dir}/summary.md" if record.run_dir else ""
        href = file_href(page, results) if results else None
        runs.append(RunColumn(f"run-{index + 1}", record.run, record.started, record.commit,
                              record.commit[:10], summary.subject if summary else "commit not found",
                              record.dirty, Link(record.run, href)))
    first_shown = len(history.records) - len(records)
    rows = []
    for entry in registry.entries:
        full = {p.run: p for p in history.timeline(entry.raw)}
        statuses = [history_status(r.results.get(entry.raw)) for r in history.records]
        present = [s for s in statuses if s != "absent"]
        is_regression, began = _regression(present)
        began_run = None
        if began is not None:
            present_indices = [i for i, s in enumerate(statuses) if s != "absent"]
            began_run = present_indices[began]
        cells = []
        for index, record in enumerate(records):
            status = statuses[first_shown + index]
            point = full.get(record.run)
            title = f"{record.run} at {record.commit[:10]}: {status.replace('_', ' ')}"
            if point is not None and counts_text(point.counts):
                title += f" ({counts_text(point.counts)})"
            cells.append(Cell(status, linker.page(page, page, runs[index].anchor), title,
                              began_run == first_shown + index))
        named = tuple(Link(f"{m.describe()}", linker.page(page, item_page(m.item_id)) if m.item_id else None)
                      for m in entry.memberships)
        rows.append(SelectorRow(entry.raw, named, ", ".join(entry.groups), tuple(cells),
                                present[-1] if present else "never run", is_regression,
                                history.records[began_run].run if began_run is not None else ""))
    rows.sort(key=lambda r: (not r.regression, r.raw))
    return SelectorsModel(tuple(runs), first_shown, tuple(rows), sum(r.regression for r in rows),
                          history_rel, problems)


def history_status(entry: object) -> str:
    if isinstance(entry, Mapping):
        status = entry.get("status")
        return status if isinstance(status, str) and status else "unknown"
    return "absent"
