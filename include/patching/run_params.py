"""The run's parameters: the preflight check behind the trigger form.

The form's schema only fixes each value's JSON type (the UI needs it to draw the field);
Airflow reports a schema failure with the raw JSON-schema text and only for the first bad
parameter, so every other rule lives here: ``check`` names *every* bad value at once, one
sentence each starting with the parameter's name, and returns normalised settings built from
the values that passed. It all happens before anything is touched.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from include.patching import field_scope, rate_control
from include.patching.snapshot_state import SnapshotMode

ALIAS_RE = re.compile(r"^[A-Za-z0-9]{2,4}$", re.ASCII)
DC_RE = re.compile(r"^[A-Za-z]{2}[0-9]$", re.ASCII)
SERVER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$", re.ASCII)
GROUP_RE = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")

DEFAULT_MAX_CONCURRENCY = rate_control.DEFAULT_MAX_CONCURRENCY
DEFAULT_MAX_ERRORS = rate_control.DEFAULT_MAX_ERRORS
DEFAULT_SERVER_TIMEOUT_MINUTES = 240
MAX_SERVER_TIMEOUT_MINUTES = 24 * 60
DEFAULT_APPROVAL_TIMEOUT_MINUTES = 240
#: Off by default: a snapshot costs minutes per server and blocks CPU/RAM/disk changes while it
#: exists, and servers that already have their owner's snapshot cannot get one — switching it on
#: for everyone would silently change how long a run takes and what it may touch (README).
DEFAULT_SNAPSHOT = SnapshotMode.OFF.value
DEFAULT_SNAPSHOT_EXPIRATION_DAYS = 3
MIN_SNAPSHOT_EXPIRATION_DAYS, MAX_SNAPSHOT_EXPIRATION_DAYS = 1, 10
DEFAULT_SNAPSHOT_KEEP = True
DEFAULT_REVERT_ON_FAILURE = False


class ParameterError(ValueError):
    """One or more run parameters are invalid; each problem starts with the parameter's name."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class RunSettings:
    """Validated, normalised run parameters (JSON-able through ``as_dict``)."""

    account_alias: str | None
    data_centers: tuple[str, ...]
    groups: tuple[str, ...]
    server_allow_list: tuple[str, ...]
    server_deny_list: tuple[str, ...]
    dry_run: bool
    patch_debug_mode: bool
    maintenance_mode: bool
    max_concurrency: str
    max_errors: str
    server_timeout_minutes: int
    # staged rollouts (include.patching.stages, clusters, health, approval)
    waves: tuple[str, ...] = ()
    max_per_cluster: int = 1
    cluster_by: str = "field:cluster"
    health_check: bool = False
    health_probe: str = ""
    approval: bool = False
    approval_timeout_minutes: int = DEFAULT_APPROVAL_TIMEOUT_MINUTES
    snapshot: str = DEFAULT_SNAPSHOT
    snapshot_expiration_days: int = DEFAULT_SNAPSHOT_EXPIRATION_DAYS
    snapshot_keep: bool = DEFAULT_SNAPSHOT_KEEP
    revert_on_failure: bool = DEFAULT_REVERT_ON_FAILURE
    window_end: str | None = None
    """End of the maintenance window (ISO 8601 with offset); None: no window (``include.patching.window``)."""
    window_cutoff_minutes: float | None = None
    """No server is started when less than this remains of the window; None: the deployment's default."""
    deferrable: bool = False
    """Wait in the triggerer; the form's default is the deployment's ``[operators] default_deferrable``."""
    """Rollouts wait in the triggerer (True) or keep the loop in their worker (False)."""
    custom_fields: dict[str, list[str]] = field(default_factory=dict)
    """Only servers whose custom fields hold one of these values (``include.patching.field_scope``)."""

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


@dataclass(frozen=True)
class CheckedParams:
    """The settings made of every value that passed, and a sentence for each that did not."""

    settings: RunSettings
    problems: tuple[str, ...]

    def alias_is_usable(self) -> bool:
        """False when the alias itself is malformed: nothing can be asked of the API then."""
        return not any(p.startswith("account_alias:") for p in self.problems)


@dataclass(frozen=True)
class _IdKind:
    """How one kind of list entry looks, for the check and for its error sentence."""

    pattern: re.Pattern[str]
    what: str
    rule: str


DATA_CENTER = _IdKind(DC_RE, "data center id", "two letters and a digit, e.g. VA1")
SERVER = _IdKind(SERVER_RE, "server id", "letters, digits and '-' only, e.g. VA1DEMOWEB01")
GROUP = _IdKind(GROUP_RE, "group name or id", "1 to 200 characters, no control characters")


def _entries(name: str, value: Any, kind: _IdKind) -> tuple[list[str], list[str]]:
    """The list's well-formed entries (stripped, first occurrence) and a problem per bad one."""
    if value is None:
        return [], []
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list | tuple):
        return [], [f"{name}: expected a list of {kind.what}s, got {type(value).__name__} {value!r}"]
    good: list[str] = []
    problems: list[str] = []
    for item in value:
        text = item.strip() if isinstance(item, str) else None
        if text == "":
            continue
        if text is None or not kind.pattern.match(text):
            problems.append(f"{name}: {item!r} is not a valid {kind.what} ({kind.rule})")
        elif text not in good:
            good.append(text)
    return good, problems


def _alias(value: Any) -> tuple[str | None, list[str]]:
    if value in ("", None):
        return None, []
    if isinstance(value, str) and ALIAS_RE.match(value.strip()):
        return value.strip().upper(), []
    return None, [
        f"account_alias: {value!r} is not a CLC account alias (2 to 4 letters or digits, e.g. DEMO)"
    ]


def _rate(name: str, value: Any, default: str, *, minimum: int) -> tuple[str, list[str]]:
    """A count (``"50"`` or ``50``) or a percentage (``"10%"``), checked by the rollout's own rules."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default, []
    problem = rate_control.limit_problem(value, minimum=minimum)
    if problem:
        return default, [f"{name}: {problem}"]
    return str(value).strip(), []


def _bool(name: str, value: Any, default: bool) -> tuple[bool, list[str]]:
    if value is None:
        return default, []
    if isinstance(value, bool):
        return value, []
    return default, [f"{name}: expected true or false, got {value!r}"]


def _timeout(value: Any) -> tuple[int, list[str]]:
    if value is None:
        return DEFAULT_SERVER_TIMEOUT_MINUTES, []
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_SERVER_TIMEOUT_MINUTES:
        return value, []
    return DEFAULT_SERVER_TIMEOUT_MINUTES, [
        f"server_timeout_minutes: {value!r} is not a whole number of minutes from 1 to "
        f"{MAX_SERVER_TIMEOUT_MINUTES}"
    ]


def _snapshot_mode(value: Any) -> tuple[str, list[str]]:
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_SNAPSHOT, []
    text = value.strip().lower().replace("-", "_") if isinstance(value, str) else None
    if text in {m.value for m in SnapshotMode}:
        return str(text), []
    choices = ", ".join(m.value for m in SnapshotMode)
    return DEFAULT_SNAPSHOT, [f"snapshot: {value!r} is not one of {choices}"]


def _expiration_days(value: Any) -> tuple[int, list[str]]:
    if value is None:
        return DEFAULT_SNAPSHOT_EXPIRATION_DAYS, []
    lo, hi = MIN_SNAPSHOT_EXPIRATION_DAYS, MAX_SNAPSHOT_EXPIRATION_DAYS
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return value, []
    return DEFAULT_SNAPSHOT_EXPIRATION_DAYS, [
        f"snapshot_expiration_days: {value!r} is not a whole number of days from {lo} to {hi} "
        "(the platform's limit)"
    ]


def snapshot_settings(
    snapshot: Any, expiration_days: Any, keep: Any, revert_on_failure: Any
) -> tuple[tuple[str, int, bool, bool], list[str]]:
    """The four snapshot parameters checked (defaults for empty ones), and a problem per bad one."""
    problems: list[str] = []

    def take(result: tuple[Any, list[str]]) -> Any:
        problems.extend(result[1])
        return result[0]

    values = (
        take(_snapshot_mode(snapshot)),
        take(_expiration_days(expiration_days)),
        take(_bool("snapshot_keep", keep, DEFAULT_SNAPSHOT_KEEP)),
        take(_bool("revert_on_failure", revert_on_failure, DEFAULT_REVERT_ON_FAILURE)),
    )
    if values[3] and values[0] == SnapshotMode.OFF and revert_on_failure is not None:
        problems.append(
            "revert_on_failure: needs a snapshot to revert to; set snapshot to best_effort or required"
        )
    return values, problems


def _window(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``window_end`` (ISO 8601) and ``window_cutoff_minutes``, checked by the window's own rules."""
    from include.patching.window import parse_window_end, window_param_problems

    problems = window_param_problems(dict(params))
    end = None if problems else parse_window_end(params.get("window_end"))
    cutoff = params.get("window_cutoff_minutes")
    return {
        "window_end": end.isoformat() if end else None,
        "window_cutoff_minutes": None if problems or cutoff in (None, "") else cutoff,
    }, problems


def _unknown(params: Mapping[str, Any]) -> list[str]:
    known = sorted(RunSettings.__dataclass_fields__)
    problems = []
    for name in sorted(set(params) - set(known)):
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(known)}"
        problems.append(f"{name}: unknown parameter ({hint})")
    return problems


def _both_lists(allow: list[str], deny: list[str]) -> list[str]:
    return [
        f"server_deny_list: {sid!r} is also in server_allow_list; a server cannot be both"
        for sid in dict.fromkeys(deny)
        if sid in allow
    ]


def check(params: Mapping[str, Any]) -> CheckedParams:
    """Check every run parameter; never stops at the first problem."""
    problems: list[str] = _unknown(params)

    def take(result: tuple[Any, list[str]]) -> Any:
        value, found = result
        problems.extend(found)
        return value

    alias = take(_alias(params.get("account_alias")))
    data_centers = take(_entries("data_centers", params.get("data_centers"), DATA_CENTER))
    groups = take(_entries("groups", params.get("groups"), GROUP))
    allow = [s.lower() for s in take(_entries("server_allow_list", params.get("server_allow_list"), SERVER))]
    deny = [s.lower() for s in take(_entries("server_deny_list", params.get("server_deny_list"), SERVER))]
    problems.extend(_both_lists(allow, deny))
    fields = take(field_scope.check_param(params.get("custom_fields")))
    settings = RunSettings(
        account_alias=alias,
        data_centers=tuple(dict.fromkeys(d.upper() for d in data_centers)),
        groups=tuple(groups),
        server_allow_list=tuple(dict.fromkeys(allow)),
        server_deny_list=tuple(dict.fromkeys(deny)),
        dry_run=take(_bool("dry_run", params.get("dry_run"), False)),
        patch_debug_mode=take(_bool("patch_debug_mode", params.get("patch_debug_mode"), False)),
        maintenance_mode=take(_bool("maintenance_mode", params.get("maintenance_mode"), True)),
        max_concurrency=take(
            _rate("max_concurrency", params.get("max_concurrency"), DEFAULT_MAX_CONCURRENCY, minimum=1)
        ),
        max_errors=take(_rate("max_errors", params.get("max_errors"), DEFAULT_MAX_ERRORS, minimum=0)),
        server_timeout_minutes=take(_timeout(params.get("server_timeout_minutes"))),
        **take(_window(params)),
        **take(_staged(params)),
        deferrable=take(_bool("deferrable", params.get("deferrable"), False)),
        custom_fields=fields,
    )
    snapshot, days, keep, revert = take(
        snapshot_settings(
            params.get("snapshot"),
            params.get("snapshot_expiration_days"),
            params.get("snapshot_keep"),
            params.get("revert_on_failure"),
        )
    )
    settings = replace(
        settings,
        snapshot=snapshot,
        snapshot_expiration_days=days,
        snapshot_keep=keep,
        revert_on_failure=revert,
    )
    return CheckedParams(settings, tuple(problems))


def _staged(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The staged-rollout parameters (waves, clusters, health check, approval), checked."""
    from include.patching.clusters import DEFAULT_CLUSTER_BY, cluster_by_problem, max_per_cluster_problem
    from include.patching.health import probe_problem
    from include.patching.stages import normalise_waves, wave_problems

    problems = wave_problems(params.get("waves"))
    per_cluster = params.get("max_per_cluster")
    for name, problem in (
        ("max_per_cluster", max_per_cluster_problem(per_cluster)),
        ("cluster_by", cluster_by_problem(params.get("cluster_by"))),
        ("health_probe", probe_problem(params.get("health_probe"))),
    ):
        if problem:
            problems.append(f"{name}: {problem}")
    health_check, found = _bool("health_check", params.get("health_check"), False)
    approval, more = _bool("approval", params.get("approval"), False)
    problems += found + more
    timeout = params.get("approval_timeout_minutes")
    if timeout is not None and not (
        isinstance(timeout, int)
        and not isinstance(timeout, bool)
        and 1 <= timeout <= MAX_SERVER_TIMEOUT_MINUTES * 7
    ):
        problems.append(
            f"approval_timeout_minutes: {timeout!r} is not a whole number of minutes from 1 to "
            f"{MAX_SERVER_TIMEOUT_MINUTES * 7}"
        )
        timeout = None
    waves = [] if wave_problems(params.get("waves")) else normalise_waves(params.get("waves"))
    if approval and not waves and not problems:
        problems.append("approval: needs waves (the approval comes between the first stage and the rest)")
    values = {
        "waves": tuple(waves),
        "max_per_cluster": 1
        if per_cluster in (None, "") or max_per_cluster_problem(per_cluster)
        else int(str(per_cluster).strip()),
        "cluster_by": str(params.get("cluster_by") or DEFAULT_CLUSTER_BY).strip()
        if not cluster_by_problem(params.get("cluster_by"))
        else DEFAULT_CLUSTER_BY,
        "health_check": health_check,
        "health_probe": str(params.get("health_probe") or "").strip()
        if not probe_problem(params.get("health_probe"))
        else "",
        "approval": approval,
        "approval_timeout_minutes": timeout or DEFAULT_APPROVAL_TIMEOUT_MINUTES,
    }
    return values, problems


def validate(params: Mapping[str, Any]) -> RunSettings:
    """Normalised settings, or ``ParameterError`` naming every bad value."""
    checked = check(params)
    if checked.problems:
        raise ParameterError(checked.problems)
    return checked.settings
