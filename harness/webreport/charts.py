"""The attempts timeline: GREEN, FAILED and ABORTED attempts per day as stacked bars, drawn server-side.

`timeline` turns attempt times into geometry only (numbers, classes and label text); the template draws
it as inline SVG, so the text is escaped there and the page needs no script to show it. Bars run from
the first day with an attempt to the last, empty days included, so gaps in the work show as gaps. A span
longer than `MAX_BARS` days is drawn per week (Monday first), and longer than `MAX_BARS` weeks per month,
so the chart keeps a readable bar width for any ledger.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta

KINDS = ("green", "failed", "aborted")
MAX_BARS = 120
MAX_BAR_STEP = 28.0  # a few days of work still look like bars, not a wall
WIDTH, HEIGHT = 860, 150
LEFT, RIGHT, TOP, BOTTOM = 40, 10, 12, 24


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str
    title: str


@dataclass(frozen=True)
class Label:
    x: float
    y: float
    text: str
    anchor: str  # SVG text-anchor: start, middle, end


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    unit: str  # day, week or month
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    gridlines: tuple[float, ...]  # y of each horizontal line
    description: str  # the chart in words, for screen readers and as the SVG's <desc>

    @property
    def empty(self) -> bool:
        return not self.bars


def _bin_start(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def _next(start: date, unit: str) -> date:
    if unit == "week":
        return start + timedelta(days=7)
    if unit == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def _unit_for(first: date, last: date) -> str:
    days = (last - first).days + 1
    if days <= MAX_BARS:
        return "day"
    return "week" if days <= MAX_BARS * 7 else "month"


def _label(start: date, unit: str) -> str:
    return start.strftime("%Y-%m") if unit == "month" else start.isoformat()


def timeline(attempts: Iterable[tuple[str, str]]) -> Chart:
    """Attempts as (UTC timestamp `YYYY-MM-DDT...Z`, kind in KINDS) -> the stacked-bar chart's geometry."""
    per_day: Counter[tuple[date, str]] = Counter()
    for stamp, kind in attempts:
        per_day[(date.fromisoformat(stamp[:10]), kind)] += 1
    if not per_day:
        return Chart(WIDTH, HEIGHT, "day", (), (), (), "no attempts recorded yet")
    days = sorted({d for d, _ in per_day})
    unit = _unit_for(days[0], days[-1])
    counts: Counter[tuple[date, str]] = Counter()
    for (day, kind), n in per_day.items():
        counts[(_bin_start(day, unit), kind)] += n
    starts = []
    cursor, last = _bin_start(days[0], unit), _bin_start(days[-1], unit)
    while cursor <= last:
        starts.append(cursor)
        cursor = _next(cursor, unit)
    totals = [sum(counts[(s, k)] for k in KINDS) for s in starts]
    top = max(totals)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = min(plot_w / len(starts), MAX_BAR_STEP)
    gap = min(2.0, step * 0.2)
    bars = []
    for i, start in enumerate(starts):
        y = float(TOP + plot_h)
        for kind in KINDS:
            n = counts[(start, kind)]
            if not n:
                continue
            h = plot_h * n / top
            y -= h
            bars.append(Bar(round(LEFT + i * step + gap / 2, 2), round(y, 2), round(max(step - gap, 0.5), 2),
                            round(h, 2), kind, f"{_label(start, unit)}: {n} {kind.upper()}"))
    base = TOP + plot_h
    labels = [Label(LEFT - 6, TOP + 4, str(top), "end"), Label(LEFT - 6, base, "0", "end"),
              Label(LEFT, base + 16, _label(starts[0], unit), "start")]
    if len(starts) > 1:
        labels.append(Label(LEFT + step * len(starts), base + 16, _label(starts[-1], unit), "end"))
    total = {k: sum(counts[(s, k)] for s in starts) for k in KINDS}
    description = (f"{sum(totals)} attempts from {_label(starts[0], unit)} to {_label(starts[-1], unit)}, "
                   f"per {unit}: " + ", ".join(f"{total[k]} {k.upper()}" for k in KINDS))
    return Chart(WIDTH, HEIGHT, unit, tuple(bars), tuple(labels), (float(TOP), float(base)), description)
