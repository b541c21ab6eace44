"""Times as ISKA stores them: UTC, timezone-aware in Python (SQLite hands them back naive)."""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def row_dict(row: sa.Row[Any]) -> dict[str, Any]:
    """A row as a dict, its times as UTC-aware datetimes on either database."""
    values = dict(row._mapping)
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = as_utc(value)
    return values
