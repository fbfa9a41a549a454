"""The one text form of a moment in patchflow's evidence: UTC, whole seconds, ``Z`` suffix.

``2026-11-27T14:00:00Z`` is what the audit rows, the manifests, the chain index and the
reports carry, so a reader can compare any two of them as text. Write it with
:func:`utc_text`, read it back with :func:`parse_utc_text`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(moment: datetime) -> str:
    """``moment`` (timezone-aware) in UTC as ``YYYY-MM-DDTHH:MM:SSZ``; fractions of a second dropped."""
    return moment.astimezone(UTC).strftime(UTC_FORMAT)


def parse_utc_text(text: Any) -> datetime | None:
    """The aware UTC moment of a ``YYYY-MM-DDTHH:MM:SSZ`` text; ``None`` for anything else."""
    try:
        return datetime.strptime(str(text), UTC_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
