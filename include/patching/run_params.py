"""The patch run's parameters: the trigger form's schema and the preflight check behind it.

Airflow's Param schema gives the UI form and rejects wrongly typed values at trigger time;
`validate` then checks what JSON schema cannot (formats, ranges of percent values, overlaps)
and returns normalised settings. Every error names the parameter, and it happens before
anything is touched.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from include.patching import rate_control

ALIAS_RE = re.compile(r"^[A-Za-z0-9]{2,4}$")
DC_RE = re.compile(r"^[A-Za-z]{2}[0-9]$")
SERVER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
GROUP_RE = re.compile(r"^[^\x00-\x1f]{1,200}$")

DEFAULT_MAX_CONCURRENCY = rate_control.DEFAULT_MAX_CONCURRENCY
DEFAULT_MAX_ERRORS = rate_control.DEFAULT_MAX_ERRORS
DEFAULT_SERVER_TIMEOUT_MINUTES = 240


class ParameterError(ValueError):
    """A run parameter is invalid; the message starts with the parameter's name."""


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

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _rate(name: str, value: Any, *, minimum: int) -> str:
    """Check a count (``"50"``) or percentage (``"10%"``) with the rollout's own parser."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ParameterError(f"{name}: {value!r} is neither a count like '50' nor a percentage like '10%'")
    try:
        rate_control.parse_limit(value, 100, name=name, minimum=minimum)
    except ValueError as exc:
        raise ParameterError(f"{name}: {exc}") from None
    return str(value).strip()


def _strings(name: str, value: Any, pattern: re.Pattern[str], what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in re.split(r"[\s,]+", value) if v]
    if not isinstance(value, list | tuple):
        raise ParameterError(f"{name}: expected a list of {what}, got {type(value).__name__}")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not pattern.match(item.strip()):
            raise ParameterError(f"{name}: {item!r} is not a valid {what}")
        if item.strip() and item.strip() not in out:
            out.append(item.strip())
    return tuple(out)


def _bool(name: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    raise ParameterError(f"{name}: expected true or false, got {value!r}")


def validate(params: Mapping[str, Any]) -> RunSettings:
    """Check every run parameter and return normalised settings, or raise ParameterError."""
    known = set(RunSettings.__dataclass_fields__)
    unknown = sorted(set(params) - known)
    if unknown:
        raise ParameterError(f"{unknown[0]}: unknown parameter (known: {', '.join(sorted(known))})")
    alias = params.get("account_alias")
    if alias in ("", None):
        alias = None
    elif not isinstance(alias, str) or not ALIAS_RE.match(alias):
        raise ParameterError(f"account_alias: {alias!r} is not a CLC account alias (2-4 letters or digits)")
    else:
        alias = alias.upper()
    allow = _strings("server_allow_list", params.get("server_allow_list"), SERVER_RE, "server id")
    deny = _strings("server_deny_list", params.get("server_deny_list"), SERVER_RE, "server id")
    both = {s.lower() for s in allow} & {s.lower() for s in deny}
    if both:
        raise ParameterError(f"server_deny_list: {sorted(both)[0]!r} is also in server_allow_list")
    raw = params.get("max_concurrency")
    max_concurrency = _rate(
        "max_concurrency", DEFAULT_MAX_CONCURRENCY if raw in (None, "") else raw, minimum=1
    )
    raw = params.get("max_errors")
    max_errors = _rate("max_errors", DEFAULT_MAX_ERRORS if raw in (None, "") else raw, minimum=0)
    timeout = params.get("server_timeout_minutes", DEFAULT_SERVER_TIMEOUT_MINUTES)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= 24 * 60:
        raise ParameterError(f"server_timeout_minutes: {timeout!r} must be a whole number from 1 to 1440")
    return RunSettings(
        account_alias=alias,
        data_centers=tuple(
            dict.fromkeys(
                d.upper()
                for d in _strings("data_centers", params.get("data_centers"), DC_RE, "data center id")
            )
        ),
        groups=_strings("groups", params.get("groups"), GROUP_RE, "group id or name"),
        server_allow_list=tuple(dict.fromkeys(s.lower() for s in allow)),
        server_deny_list=tuple(dict.fromkeys(s.lower() for s in deny)),
        dry_run=_bool("dry_run", params.get("dry_run"), False),
        patch_debug_mode=_bool("patch_debug_mode", params.get("patch_debug_mode"), False),
        maintenance_mode=_bool("maintenance_mode", params.get("maintenance_mode"), True),
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        server_timeout_minutes=timeout,
    )
