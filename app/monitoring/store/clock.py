"""The store's time: naive UTC datetimes (``DateTime`` columns carry no zone on SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_utc(ts: float) -> datetime:
    """A unix time (``time.time()``) as the store keeps it."""
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)
