"""View models shared by the run report and the compliance report, and their templates.

Both pages use one shell (``templates/_page.html.j2``: inline CSS from ``report.css``, the
Content-Security-Policy that forbids scripts) and the macros of ``templates/_parts.html.j2``.
The functions here decide *what* is shown (labels, colours, verdicts); the templates only
display it, escaped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from include.patching.states import ServerState
from include.templating import Templates, dash

STATE_LABELS: dict[str, str] = {
    ServerState.PATCHED: "Patched",
    ServerState.PATCHED_NO_UPDATES: "Up to date",
    ServerState.FAILED: "Failed",
    ServerState.TIMED_OUT: "Timed out",
    ServerState.UNHEALTHY: "Unhealthy after patching",
    ServerState.NOT_ATTEMPTED: "Not attempted",
    ServerState.SKIPPED_UNSUPPORTED_OS: "Skipped: unsupported OS",
    ServerState.SKIPPED_NOT_RUNNING: "Skipped: not running",
    ServerState.SKIPPED_NOT_ACTIVE: "Skipped: not active",
    ServerState.SKIPPED_TEMPLATE: "Skipped: template",
    ServerState.SKIPPED_FILTERED: "Skipped: filtered out",
    ServerState.PLANNED_DRY_RUN: "Planned (dry run)",
    ServerState.REVERTED: "Reverted to snapshot",
    ServerState.REVERT_FAILED: "Revert failed",
    ServerState.SKIPPED_NO_SNAPSHOT: "Not patched: no snapshot",
}
STATE_COLOURS: dict[str, str] = {
    ServerState.PATCHED: "#1a7f37",
    ServerState.PATCHED_NO_UPDATES: "#4ac26b",
    ServerState.FAILED: "#cf222e",
    ServerState.TIMED_OUT: "#bc4c00",
    ServerState.UNHEALTHY: "#a40e26",
    ServerState.NOT_ATTEMPTED: "#d4a72c",
    ServerState.SKIPPED_UNSUPPORTED_OS: "#6e7781",
    ServerState.SKIPPED_NOT_RUNNING: "#8c959f",
    ServerState.SKIPPED_NOT_ACTIVE: "#afb8c1",
    ServerState.SKIPPED_TEMPLATE: "#d0d7de",
    ServerState.SKIPPED_FILTERED: "#57606a",
    ServerState.PLANNED_DRY_RUN: "#0969da",
    ServerState.REVERTED: "#8250df",
    ServerState.REVERT_FAILED: "#82071e",
    ServerState.SKIPPED_NO_SNAPSHOT: "#bf8700",
}
#: Badge colours light enough to need dark text (contrast).
LIGHT_STATES = frozenset(
    {
        ServerState.PATCHED_NO_UPDATES,
        ServerState.NOT_ATTEMPTED,
        ServerState.SKIPPED_NOT_ACTIVE,
        ServerState.SKIPPED_TEMPLATE,
    }
)
UNKNOWN_COLOUR = "#24292f"
DARK_INK, LIGHT_INK = "#1f2328", "#fff"


@dataclass(frozen=True)
class Badge:
    """A coloured pill: ``attribute`` names the ``data-*`` attribute that carries ``code``."""

    code: str
    label: str
    colour: str
    ink: str = LIGHT_INK
    attribute: str = "state"


def state_badge(state: str) -> Badge:
    """The badge of a server state; a state nobody knows is shown as such, never hidden."""
    return Badge(
        code=state,
        label=STATE_LABELS.get(state, f"unknown state {state}"),
        colour=STATE_COLOURS.get(state, UNKNOWN_COLOUR),
        ink=DARK_INK if state in LIGHT_STATES else LIGHT_INK,
    )


def state_series() -> list[tuple[str, str, str]]:
    """``(state, label, colour)`` of every server state, in stacking order, for the charts."""
    return [(state.value, STATE_LABELS[state], STATE_COLOURS[state]) for state in ServerState]


@dataclass(frozen=True)
class Metric:
    """A number as shown; ``note`` (a tooltip) says why it is not a number."""

    text: str
    note: str | None = None


#: Reboots are not reported by the patching service (§9) and never inferred: shown as "n/r".
NOT_REPORTED = "not reported by the patching service"


def reported_count(count: int | None) -> Metric:
    """A count, or "n/r" with a tooltip when the service did not report it."""
    return Metric("n/r", NOT_REPORTED) if count is None else Metric(str(int(count)))


def shown_value(value: Any) -> Metric:
    """Any value as it is (a dash when absent)."""
    return Metric(str(dash(value)))


@dataclass(frozen=True)
class Card:
    """One headline number with its ``data-metric`` key."""

    key: str
    label: str
    metric: Metric


class ValidationOutcome(StrEnum):
    """What the validation banner says (and its ``data-validation`` attribute)."""

    MISSING = "missing"
    PASSED = "passed"
    FAILED = "failed"


@dataclass(frozen=True)
class ValidationBanner:
    """Green when every check passed; red, naming the failed checks, otherwise."""

    outcome: ValidationOutcome
    subject: str
    evaluated: int = 0
    failed: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckLine:
    """One validation check as the table shows it; ``detail`` is the evidence of a verdict."""

    name: str
    description: Any
    success: bool
    detail: str


def validation_banner(validation: Mapping[str, Any] | None, subject: str = "audit data") -> ValidationBanner:
    """Missing (never validated), passed with the number of checks, or failed naming them."""
    if validation is None:
        return ValidationBanner(ValidationOutcome.MISSING, subject)
    if validation.get("success"):
        return ValidationBanner(ValidationOutcome.PASSED, subject, int(validation.get("evaluated", 0)))
    failed = tuple(str(name) for name in validation.get("failed", []))
    return ValidationBanner(ValidationOutcome.FAILED, subject, failed=failed)


def _check_detail(check: Mapping[str, Any]) -> str:
    """The offending rows (or sample values) of a check, else what it observed."""
    offenders = check.get("unexpected_rows") or check.get("unexpected_sample") or []
    if offenders:
        return ", ".join(str(value) for value in offenders)
    observed = check.get("observed")
    return "" if observed is None else json.dumps(observed, default=str)


def validation_checks(validation: Mapping[str, Any] | None) -> list[CheckLine] | None:
    """Every check of a validation result; ``None`` when there is no result to show."""
    if not validation:
        return None
    return [
        CheckLine(
            name=check["name"],
            description=check.get("description"),
            success=bool(check["success"]),
            detail=_check_detail(check),
        )
        for check in validation.get("checks", [])
    ]


#: The templates of both reports (this folder's ``templates/``).
REPORT_TEMPLATES = Templates(__file__, {"ValidationOutcome": ValidationOutcome})
