"""UTC time as the harness writes it: aware datetimes only, to the second, in two text forms.

`iso` (2025-11-06T08:45:00Z) is for records and ledger lines; `stamp` (2025-11-06T084500Z) is the same
moment as a folder name (no colons).
"""
from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        raise ValueError(f"{dt!r} has no time zone; pass an aware datetime (e.g. clock.utc_now())")
    return dt.astimezone(UTC)


def stamp(dt: datetime) -> str:
    """Folder-safe UTC stamp: 2025-11-06T084500Z."""
    return _as_utc(dt).strftime("%Y-%m-%dT%H%M%SZ")


def iso(dt: datetime) -> str:
    """ISO 8601 UTC to the second: 2025-11-06T08:45:00Z."""
    return _as_utc(dt).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime | None:
    """The moment an `iso` string names; None when `text` is not one."""
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None
