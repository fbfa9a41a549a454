"""Patch rings: the declarative ring file (``include/rings.yaml``), validated (framework-free).

A ring is a slice of the fleet patched in its own monthly window (dev two days after Patch
Tuesday, staging a week after, production two weeks after). Each ring becomes one DAG,
``patch_ring_<name>`` (``dags/patch_rings.py``), with patch_fleet's tasks.

Validation names every bad value at once, each with its ring and field
(``rings[1] (staging).rollout.max_errors: …``). Scope and rollout values are checked by the
same rules as the trigger form (``include.patching.run_params``), the schedule by
``include.patching.patch_calendar``. Data centers, groups and servers are checked against the
alias only at run time (preflight), as for a manual run.

``scope.custom_fields`` selects servers by CLC custom-field value (``{Ring: dev}``), checked as
the form's ``custom_fields`` (``include.patching.field_scope``); field names against the alias
at run time.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from include.patching import run_params
from include.patching.patch_calendar import MAX_DURATION_MINUTES, PatchCalendar, parse_calendar

RING_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$", re.ASCII)
SCOPE_KEYS = (
    "account_alias",
    "data_centers",
    "groups",
    "server_allow_list",
    "server_deny_list",
    "custom_fields",
)
ROLLOUT_KEYS = (
    "max_concurrency",
    "max_errors",
    "server_timeout_minutes",
    "maintenance_mode",
    "patch_debug_mode",
)
WINDOW_KEYS = ("duration_minutes", "cutoff_minutes")
NOTIFY_KEYS = ("hours_before", "to")
RING_KEYS = ("name", "description", "scope", "schedule", "window", "rollout", "notify", "requires")
DEFAULT_DURATION_MINUTES = 240
DEFAULT_CUTOFF_MINUTES = 30
MAX_NOTICE_HOURS = 7 * 24


class RingFileError(ValueError):
    """The ring file is invalid; ``problems`` holds one sentence per bad value."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = tuple(problems)
        count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{source}: {count}:\n{lines}")


@dataclass(frozen=True)
class Ring:
    """One validated ring."""

    name: str
    description: str
    scope: dict[str, Any]
    rollout: dict[str, Any]
    calendar: PatchCalendar
    cutoff_minutes: float
    requires: str | None = None
    notify_hours_before: int | None = None
    notify_to: str = ""

    @property
    def dag_id(self) -> str:
        return f"patch_ring_{self.name}"

    def run_params(self) -> dict[str, Any]:
        """The ring's defaults for the trigger form (the same parameters as patch_fleet's)."""
        return {**self.scope, **self.rollout, "window_cutoff_minutes": self.cutoff_minutes}


def _section(
    ring: Mapping[str, Any], key: str, where: str, known: tuple[str, ...], problems: list[str]
) -> dict:
    value = ring.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        problems.append(f"{where}.{key}: expected a mapping, got {type(value).__name__} {value!r}")
        return {}
    problems.extend(
        f"{where}.{key}.{k}: unknown setting (known: {', '.join(known)})" for k in value if k not in known
    )
    return {k: v for k, v in value.items() if k in known}


def _param_problems(scope: dict, rollout: dict, where: str) -> list[str]:
    """The form's own checks, each problem re-addressed to the ring's section and field."""
    checked = run_params.check({**scope, **rollout})
    found = []
    for problem in checked.problems:
        name, _, rest = problem.partition(":")
        section = "scope" if name in SCOPE_KEYS else "rollout"
        found.append(f"{where}.{section}.{name}:{rest}")
    return found


def _number(value: Any, where: str, low: float, high: float, problems: list[str], *, whole: bool) -> Any:
    kinds = (int,) if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
        what = "a whole number" if whole else "a number"
        problems.append(f"{where}: {value!r} is not {what} from {low:g} to {high:g}")
        return None
    return value


def parse_ring(raw: Any, index: int, earlier: list[str]) -> tuple[Ring | None, list[str]]:
    """One ring of the file (``earlier``: names of the rings before it), and its problems."""
    if not isinstance(raw, Mapping):
        return None, [f"rings[{index}]: expected a mapping with name, scope, schedule…, got {raw!r}"]
    name = raw.get("name")
    where = f"rings[{index}] ({name})" if isinstance(name, str) and name else f"rings[{index}]"
    problems = [
        f"{where}.{k}: unknown setting (known: {', '.join(RING_KEYS)})" for k in raw if k not in RING_KEYS
    ]
    if not isinstance(name, str) or not RING_NAME.match(name):
        problems.append(
            f"{where}.name: {name!r} is not a ring name (a lower-case letter, then letters, digits or _; "
            "at most 40): it becomes the DAG id patch_ring_<name>"
        )
    elif name in earlier:
        problems.append(f"{where}.name: {name!r} is used by an earlier ring; names must be unique")
    scope = _section(raw, "scope", where, SCOPE_KEYS, problems)
    rollout = _section(raw, "rollout", where, ROLLOUT_KEYS, problems)
    problems += _param_problems(scope, rollout, where)
    window = _section(raw, "window", where, WINDOW_KEYS, problems)
    duration = window.get("duration_minutes", DEFAULT_DURATION_MINUTES)
    cutoff = window.get("cutoff_minutes", DEFAULT_CUTOFF_MINUTES)
    duration_ok = _number(
        duration, f"{where}.window.duration_minutes", 1, MAX_DURATION_MINUTES, problems, whole=True
    )
    if duration_ok is not None:
        _number(cutoff, f"{where}.window.cutoff_minutes", 0, duration_ok - 1, problems, whole=False)
    schedule_raw = raw.get("schedule")
    calendar = None
    if schedule_raw is None:
        problems.append(
            f"{where}.schedule: missing (at least the offset_days, start and timezone of its window)"
        )
    elif isinstance(schedule_raw, Mapping) and "duration_minutes" in schedule_raw:
        problems.append(f"{where}.schedule.duration_minutes: set the length under window.duration_minutes")
    elif isinstance(schedule_raw, Mapping):
        calendar, found = parse_calendar(
            {**schedule_raw, "duration_minutes": duration if duration_ok is not None else 1},
            where=f"{where}.schedule",
        )
        problems += found
    else:
        problems.append(
            f"{where}.schedule: expected a mapping, got {type(schedule_raw).__name__} {schedule_raw!r}"
        )
    notify = _section(raw, "notify", where, NOTIFY_KEYS, problems)
    hours = notify.get("hours_before")
    if hours is not None:
        _number(hours, f"{where}.notify.hours_before", 1, MAX_NOTICE_HOURS, problems, whole=True)
    to = notify.get("to", "")
    if not isinstance(to, str):
        problems.append(f"{where}.notify.to: expected addresses separated by commas, got {to!r}")
    requires = raw.get("requires")
    if requires is not None and requires not in earlier:
        hint = "itself" if requires == name else f"the rings before it are: {', '.join(earlier) or 'none'}"
        problems.append(f"{where}.requires: {requires!r} is not an earlier ring ({hint})")
    description = raw.get("description") or ""
    if not isinstance(description, str):
        problems.append(f"{where}.description: expected text, got {description!r}")
    if problems or calendar is None:
        return None, problems
    return (
        Ring(
            name=str(name),
            description=description,
            scope=scope,
            rollout=rollout,
            calendar=calendar,
            cutoff_minutes=cutoff,
            requires=requires,
            notify_hours_before=hours,
            notify_to=to if isinstance(to, str) else "",
        ),
        [],
    )


def parse_rings(data: Any, *, source: str = "ring file") -> list[Ring]:
    """Every ring of the file's content, or ``RingFileError`` naming every bad value."""
    if not isinstance(data, Mapping) or not isinstance(data.get("rings"), list):
        raise RingFileError(source, ["expected a mapping with a 'rings' list at the top"])
    problems = [f"{k}: unknown top-level key (known: rings)" for k in data if k != "rings"]
    rings: list[Ring] = []
    names: list[str] = []
    for index, raw in enumerate(data["rings"]):
        ring, found = parse_ring(raw, index, names)
        problems += found
        name = raw.get("name") if isinstance(raw, Mapping) else None
        if isinstance(name, str):
            names.append(name)
        if ring is not None:
            rings.append(ring)
    if problems:
        raise RingFileError(source, problems)
    return rings


RINGS_ENV = "PATCHFLOW_RINGS"


def ring_file() -> Path:
    """The ring file: ``PATCHFLOW_RINGS`` if set, else ``include/rings.yaml``."""
    import os

    return Path(os.environ.get(RINGS_ENV) or Path(__file__).resolve().parents[1] / "rings.yaml")


def load_rings(path: str | Path) -> list[Ring]:
    """Read and validate a ring file (YAML)."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise RingFileError(str(path), [f"not valid YAML: {exc}"]) from None
    return parse_rings(data, source=str(path))
