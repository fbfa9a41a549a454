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

ALIAS_RE = re.compile(r"^[A-Za-z0-9]{2,4}$")
DC_RE = re.compile(r"^[A-Za-z]{2}[0-9]$")
SERVER_RE = re.compile(r"^[A-Za-z0-9-]{1,64}$")
GROUP_RE = re.compile(r"^[^\x00-\x1f]{1,200}$")
RATE_RE = re.compile(r"^\s*(\d+)\s*(%?)\s*$")

DEFAULT_MAX_CONCURRENCY = "50"
DEFAULT_MAX_ERRORS = "0"
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


def parse_rate(name: str, value: Any, *, allow_zero: bool) -> tuple[int, bool]:
    """Parse a count (``"50"``) or a percentage (``"10%"``) into (number, is_percent)."""
    match = (
        RATE_RE.match(str(value)) if isinstance(value, str | int) and not isinstance(value, bool) else None
    )
    if not match:
        raise ParameterError(f"{name}: {value!r} is neither a count like '50' nor a percentage like '10%'")
    number, percent = int(match.group(1)), bool(match.group(2))
    if percent and number > 100:
        raise ParameterError(f"{name}: {value!r} is more than 100%")
    if number == 0 and not allow_zero:
        raise ParameterError(f"{name}: {value!r} must be at least 1 (or 1%)")
    return number, percent


def resolve_rate(number: int, percent: bool, total: int, *, minimum: int) -> int:
    """A count for ``total`` targets: percentages round up, and never below ``minimum``."""
    if not percent:
        return max(number, minimum)
    return max(-(-number * total // 100), minimum)


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
    max_concurrency = str(params.get("max_concurrency") or DEFAULT_MAX_CONCURRENCY).strip()
    parse_rate("max_concurrency", max_concurrency, allow_zero=False)
    raw_errors = params.get("max_errors")
    max_errors = DEFAULT_MAX_ERRORS if raw_errors in (None, "") else str(raw_errors).strip()
    parse_rate("max_errors", max_errors, allow_zero=True)
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
