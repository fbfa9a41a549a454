"""The one text form of a moment in patchflow's evidence: UTC, whole seconds, ``Z`` suffix.

``2026-11-27T14:00:00Z`` is what the audit rows, the manifests, the chain index and the
reports carry, so a reader can compare any two of them as text. Write it with
:func:`utc_text`, read it back with :func:`parse_utc_text`.

The CLC API's times are ISO-8601 too, but not always in exactly this form (an offset, a
fraction, ``""`` or null while pending), and the ledger keeps some of them:
:func:`parse_iso8601` reads those. :func:`utcnow` is the clock the rollout's ledger is written
with (a seam tests replace).
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


def minute_text(text: Any) -> str | None:
    """A ``YYYY-MM-DDTHH:MM:SSZ`` moment as a short label ``YYYY-MM-DD HH:MM`` (UTC); None if unreadable."""
    moment = parse_utc_text(text)
    return None if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


def parse_iso8601(value: Any) -> datetime | None:
    """Any ISO-8601 time as an aware datetime (no offset means UTC); ``None`` for ``""``/null/unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def duration_text(seconds: float | None) -> str:
    """A duration as people read it on the run board: ``45s``, ``3m 12s``, ``2h 05m``; ``—`` if unknown."""
    if seconds is None:
        return "\u2014"
    whole = max(round(seconds), 0)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"
