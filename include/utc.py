"""UTC instants as patchflow writes and reads them: ``2016-03-14T02:00:00Z``.

The CLC API uses the same ISO-8601 ``Z`` form, and may send ``""`` or null for a time that is
not known yet, so reading is tolerant and writing is exact to the second.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    """Now, as an aware UTC datetime (a seam tests can replace)."""
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    """``value`` as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """ISO-8601 time as aware UTC datetime; None for ``""``/null/unparseable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
