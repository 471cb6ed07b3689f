from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from harness import clock


def test_stamp_and_iso_are_utc() -> None:
    dt = datetime(2025, 11, 6, 9, 45, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert clock.stamp(dt) == "2025-11-06T084500Z"
    assert clock.iso(dt) == "2025-11-06T08:45:00Z"
    assert clock.utc_now().tzinfo is not None
    with pytest.raises(ValueError, match="no time zone"):
        clock.stamp(datetime(2025, 1, 1))


def test_utc_now_is_now() -> None:
    assert abs(clock.utc_now() - datetime.now(UTC)) < timedelta(seconds=5)
