"""The heads-up mail some hours before a ring's window: what will be patched, from a dry-run plan.

Message building is pure (:func:`build_heads_up`); sending is ``PatchRunNotifier``'s (the
subclass only changes what the message says), so recipients, SMTP connection and redaction
rules are the run mail's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from include.patching.rings import Ring
from include.templating import Templates
from patchflow.notifiers import MAX_LISTED_PROBLEMS, PatchRunNotifier, RunMessage

TEMPLATES = Templates(__file__)


@dataclass(frozen=True)
class HeadsUp:
    subject: str
    ring: str
    schedule: str
    window_text: str
    planned_at: str
    to_patch_total: int
    skipped_total: int
    servers: list[dict[str, Any]]
    not_listed: int
    requires: str | None


def window_text(start: datetime, end: datetime, timezone: str) -> str:
    """``2026-12-15 22:00 - 2026-12-16 02:00 Europe/Berlin`` with an en dash, in the ring's local time."""
    import pendulum

    a, b = pendulum.instance(start).in_timezone(timezone), pendulum.instance(end).in_timezone(timezone)
    return f"{a:%Y-%m-%d %H:%M}\u2013{b:%Y-%m-%d %H:%M} {timezone}"


def build_heads_up(
    ring: Ring, plan: Mapping[str, Any], *, start: datetime, end: datetime, planned_at: str
) -> HeadsUp:
    """What the heads-up says. Pure: same input, same mail."""
    rows = plan.get("servers") or []
    to_patch = [r for r in rows if r.get("state") == "planned_dry_run"]
    text = window_text(start, end, ring.calendar.timezone)
    return HeadsUp(
        subject=f"[patchflow] ring {ring.name}: {len(to_patch)} server(s) to patch {text}",
        ring=ring.name,
        schedule=ring.calendar.summary(),
        window_text=text,
        planned_at=planned_at,
        to_patch_total=len(to_patch),
        skipped_total=len(rows) - len(to_patch),
        servers=[
            {
                "server_id": r.get("id"),
                "name": r.get("name"),
                "data_center": r.get("data_center"),
                "package_id": r.get("package_id"),
            }
            for r in to_patch[:MAX_LISTED_PROBLEMS]
        ],
        not_listed=max(len(to_patch) - MAX_LISTED_PROBLEMS, 0),
        requires=ring.requires,
    )


class HeadsUpNotifier(PatchRunNotifier):
    """``PatchRunNotifier``'s sending, with the heads-up as the message."""

    def __init__(self, *, to: str, heads_up: HeadsUp, **kwargs: Any) -> None:
        super().__init__(to=to, **kwargs)
        self.heads_up = heads_up

    def message(self, context: Mapping[str, Any]) -> RunMessage:
        return RunMessage(
            subject=self.heads_up.subject, html=TEMPLATES.render("heads_up_mail.html.j2", mail=self.heads_up)
        )
