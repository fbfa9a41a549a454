"""The post-patch health check of one server: is it fit to count as patched?

After a server's execution has completed, the completion trigger (in the triggerer, where a
wait holds no worker slot) checks, before it reports the server:

1. the server's details (``GET /v2/servers/{alias}/{id}``): ``status`` is ``active`` and
   ``details.powerState`` is ``started``;
2. optionally the run's probe, a template filled from those details:
   ``http(s)://…`` — a GET answered 2xx or 3xx; ``tcp://host:port`` — a TCP connection accepted.
   Placeholders: ``{id}``, ``{name}``, ``{ip}`` (first internal IP), ``{public_ip}``,
   ``{hostname}``, ``{data_center}``, ``{custom[Field name]}`` (a CLC custom field's value, e.g.
   ``{custom[healthUrl]}`` when the whole URL is kept there).

A check that fails is tried again after ``health_retry_interval`` until ``retries`` tries
were made; each probe is bounded by ``health_probe_timeout`` (both in ``tuning``, scaled by
``time_scale``). The verdict travels in the trigger's outcome; the rollout ends a server that
patched but is not healthy ``unhealthy``. The probe is sent without any CLC credential (I6).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

DEFAULT_RETRIES = 4
_PLACEHOLDER = re.compile(r"\{([a-z_]+)(?:\[([^\]{}]+)\])?\}")
PLAIN_FIELDS = ("id", "name", "ip", "public_ip", "hostname", "data_center")


def probe_problem(template: Any) -> str | None:
    """Why ``template`` is no valid probe (a phrase after the parameter's name), or None."""
    if template in (None, ""):
        return None
    if not isinstance(template, str):
        return f"expected an http(s):// URL or a tcp://host:port template, got {template!r}"
    text = template.strip()
    for match in _PLACEHOLDER.finditer(text):
        name, key = match.group(1), match.group(2)
        if (name == "custom") != (key is not None) or (name != "custom" and name not in PLAIN_FIELDS):
            known = ", ".join(f"{{{f}}}" for f in PLAIN_FIELDS)
            return f"{match.group(0)!r} is not a known placeholder ({known}, {{custom[Field name]}})"
    if text.startswith("{custom[") and _PLACEHOLDER.fullmatch(text):
        return None  # the whole URL comes from a custom field: checked when it is filled
    sample = _PLACEHOLDER.sub("x", text)
    scheme = sample.split("://", 1)[0].lower() if "://" in sample else ""
    if scheme not in ("http", "https", "tcp"):
        return f"must start with http://, https:// or tcp://, got {template!r}"
    if scheme == "tcp" and not re.match(r"^tcp://[^/:]+:[0-9x]+$", sample):
        return f"a TCP probe is tcp://host:port, got {template!r}"
    return None


@dataclass(frozen=True)
class HealthSpec:
    """What to check after a server completed (crosses to the trigger as JSON)."""

    probe: str | None = None
    retries: int = DEFAULT_RETRIES
    timeout: float = 10.0
    interval: float = 30.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "probe": self.probe,
            "retries": self.retries,
            "timeout": self.timeout,
            "interval": self.interval,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthSpec:
        return cls(
            probe=data.get("probe") or None,
            retries=max(int(data.get("retries") or DEFAULT_RETRIES), 1),
            timeout=float(data.get("timeout") or 10.0),
            interval=float(data.get("interval") or 30.0),
        )


@dataclass(frozen=True)
class HealthResult:
    healthy: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HealthResult:
        return cls(bool(data.get("healthy")), str(data.get("detail") or ""))


def server_values(server: Mapping[str, Any]) -> dict[str, str]:
    """The placeholders' values from a Get Server answer."""
    details = server.get("details") or {}
    ips = details.get("ipAddresses") or []
    internal = next((str(a["internal"]) for a in ips if isinstance(a, Mapping) and a.get("internal")), "")
    public = next((str(a["public"]) for a in ips if isinstance(a, Mapping) and a.get("public")), "")
    return {
        "id": str(server.get("id") or ""),
        "name": str(server.get("name") or ""),
        "ip": internal,
        "public_ip": public,
        "hostname": str(details.get("hostName") or ""),
        "data_center": str(server.get("locationId") or ""),
    }


def render(template: str, server: Mapping[str, Any]) -> str:
    """The probe for one server; ``ValueError`` names a placeholder the server has no value for."""
    from include.patching.clusters import custom_fields

    values = server_values(server)
    fields = {k.lower(): v for k, v in custom_fields(server.get("details")).items()}

    def fill(match: re.Match[str]) -> str:
        name, key = match.group(1), match.group(2)
        value = fields.get(key.strip().lower(), "") if name == "custom" else values.get(name, "")
        if not value:
            raise ValueError(f"the server has no value for {match.group(0)} in its details")
        return value

    return _PLACEHOLDER.sub(fill, template.strip())


def judge_details(server: Mapping[str, Any]) -> str | None:
    """Why the server's details say it is not healthy, or None."""
    status = server.get("status")
    if status != "active":
        return f"status is {status!r}, not 'active'"
    power = (server.get("details") or {}).get("powerState")
    if power != "started":
        return f"power state is {power!r}, not 'started'"
    return None


async def probe(target: str, timeout: float, session: Any) -> str | None:
    """Send one probe; None when healthy, else why not. ``session``: an aiohttp session
    without credentials (used for http/https only)."""
    parts = urlsplit(target)
    scheme = parts.scheme.lower()
    try:
        if scheme == "tcp":
            if not parts.hostname or parts.port is None:
                return f"probe {target!r} is not tcp://host:port"
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port), timeout)
            writer.close()
            return None
        if scheme not in ("http", "https"):
            return f"probe {target!r} is neither http(s):// nor tcp://"
        import aiohttp

        async with session.get(
            target, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
        ) as resp:
            if resp.status < 400:
                return None
            return f"{target} answered HTTP {resp.status}"
    except TimeoutError:
        return f"{target} did not answer within {timeout:g} s"
    except (OSError, ValueError) as exc:
        return f"{target} unreachable: {type(exc).__name__}: {exc}"
    except Exception as exc:  # aiohttp's client errors, whatever their class
        return f"{target} unreachable: {type(exc).__name__}: {exc}"


async def check_once(server: Mapping[str, Any], spec: HealthSpec, session: Any) -> str | None:
    """One try of the whole check on a Get Server answer: None when healthy, else why not."""
    problem = judge_details(server)
    if problem or not spec.probe:
        return problem
    try:
        target = render(spec.probe, server)
    except ValueError as exc:
        return f"health probe {spec.probe!r}: {exc}"
    return await probe(target, spec.timeout, session)
