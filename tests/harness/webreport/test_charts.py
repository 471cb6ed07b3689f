"""The attempts timeline's geometry: stacked per day, gaps kept, coarser bins for long spans."""
from __future__ import annotations

from harness.webreport.charts import HEIGHT, TOP, timeline


def test_no_attempts_is_an_empty_chart() -> None:
    chart = timeline([])
    assert chart.empty and chart.description == "no attempts recorded yet"


def test_attempts_stack_per_day_and_empty_days_stay() -> None:
    chart = timeline([("2026-01-01T10:00:00Z", "green"), ("2026-01-01T11:00:00Z", "failed"),
                      ("2026-01-01T12:00:00Z", "failed"), ("2026-01-03T09:00:00Z", "aborted")])
    assert chart.unit == "day"
    assert [(b.kind, b.title) for b in chart.bars] == [
        ("green", "2026-01-01: 1 GREEN"), ("failed", "2026-01-01: 2 FAILED"), ("aborted", "2026-01-03: 1 ABORTED")]
    green, failed, aborted = chart.bars
    assert green.x == failed.x < aborted.x  # one column per day, the empty 2 January between them
    assert round(green.height + failed.height, 2) == HEIGHT - TOP - 24  # the tallest day fills the plot
    assert failed.y + failed.height == green.y  # stacked
    assert chart.description == "4 attempts from 2026-01-01 to 2026-01-03, per day: 1 GREEN, 2 FAILED, 1 ABORTED"
    assert [label.text for label in chart.labels] == ["3", "0", "2026-01-01", "2026-01-03"]


def test_a_long_span_is_drawn_per_week_then_per_month() -> None:
    weekly = timeline([("2026-01-01T00:00:00Z", "green"), ("2026-06-30T00:00:00Z", "green")])
    assert weekly.unit == "week" and weekly.bars[0].title == "2025-12-29: 1 GREEN"  # the Monday
    monthly = timeline([("2020-01-15T00:00:00Z", "green"), ("2026-06-30T00:00:00Z", "failed")])
    assert monthly.unit == "month" and monthly.bars[-1].title == "2026-06: 1 FAILED"
    assert len({b.x for b in monthly.bars}) == 2 and monthly.bars[-1].x > monthly.bars[0].x
