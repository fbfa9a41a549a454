"""Load and validate fleet files (YAML) into plain spec objects.

Validation is by hand so that every error names the file, the field path and what is
wrong, in words a human can act on, e.g.
``simulator/fleets/bad.yaml: servers[3].os: 'win95' is not a known OS code``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from simulator.clock import parse_iso
from simulator.oscatalog import KNOWN_DATA_CENTERS, ROLES, lookup_os


class FleetFileError(ValueError):
    """A fleet file is unreadable or invalid; the message is ``<file>: <field>: <problem>``."""


@dataclass
class PatchSpec:
    name: str  # Windows: update title; Linux: package NEVRA
    kb: str | None  # "KB3138615" for Windows
    package: str | None  # Linux NEVRA, e.g. "openssl-1.0.1e-42.el6_7.4.x86_64"
    reboot: bool
    duration: int  # simulated seconds to install
    cycle: int  # initiation (1-based) in which the patch becomes applicable
    failure: str  # "none" | "fail" | "fail_once"
    url: str | None = None

    @property
    def key(self) -> str:
        """What identifies the patch on its server: the KB (Windows) or the NEVRA (Linux)."""
        return self.kb or self.package or self.name


@dataclass
class SnapshotSpec:
    """A snapshot the server already has when the fleet starts (someone else's, e.g. its
    owner's): ``age`` simulated seconds old, removed ``expiration_days`` after it was taken."""

    age: int
    expiration_days: int


@dataclass
class ServerSpec:
    name: str  # upper-case
    account: str
    data_center: str
    group_path: str  # path key of the group (see path_key), e.g. "VA1/Production/Web"
    os: str  # canonical os code
    description: str = ""
    power_state: str = "started"
    status: str = "active"
    in_maintenance: bool = False
    is_template: bool = False
    storage_gb: int = 50
    cpu: int = 2
    memory_mb: int = 4096
    ip: str = ""
    public_ip: str | None = None
    reboot_seconds: int = 120
    scan_seconds: int = 45
    patches: list[PatchSpec] = field(default_factory=list)
    snapshot: SnapshotSpec | None = None
    #: CLC custom fields ``{name: value}``; ``{simulator}`` in a value becomes the simulator's base URL
    custom_fields: dict[str, str] = field(default_factory=dict)
    #: its health endpoint answers 503 once a patch execution on it has completed
    unhealthy_after_patch: bool = False


@dataclass
class UserSpec:
    username: str
    password: str
    roles: list[str]
    email: str


@dataclass
class AccountSpec:
    alias: str
    name: str
    parent: str | None
    primary_data_center: str
    users: list[UserSpec]


def path_key(segments: tuple[str, ...] | list[str]) -> str:
    """One string per group path, unambiguous even when a name contains '/' (CLC allows it):
    '/' and '\\' inside a name are escaped. Equal to the plain 'VA1/A/B' form otherwise, so
    group ids derived from it do not change for existing fleets."""
    return "/".join(seg.replace("\\", "\\\\").replace("/", "\\/") for seg in segments)


def display_path(segments: tuple[str, ...] | list[str]) -> str:
    """How error messages show a path: 'VA1/A/B', or the list form when a name has a '/'."""
    if any("/" in seg for seg in segments):
        return "[" + ", ".join(repr(seg) for seg in segments) + "]"
    return "/".join(segments)


@dataclass
class GroupSpec:
    account: str
    segments: tuple[str, ...]  # ("VA1", "Finance", "Prod/EU"): data center first, then names
    description: str = ""
    type: str = "default"

    @property
    def path(self) -> str:
        """The unambiguous path key (see :func:`path_key`)."""
        return path_key(self.segments)

    @property
    def name(self) -> str:
        return self.segments[-1]


@dataclass
class FleetSpec:
    source: str
    data_centers: dict[str, str]  # "VA1" -> friendly name
    accounts: list[AccountSpec]
    groups: list[GroupSpec]
    servers: list[ServerSpec]
    clock_start: float | None = None
    digest: str = ""
    #: a custom field every server gets, holding the URL of its health endpoint on the simulator
    health_url_field: str | None = None


SERVER_STATUSES = ("active", "underConstruction", "queuedForDelete", "queuedForRestore", "archived")
POWER_STATES = ("started", "stopped", "paused")
GROUP_TYPES = ("default", "templates", "archive")
FAILURES = ("none", "fail", "fail_once")
_ALIAS_RE = re.compile(r"^[A-Z0-9]{2,4}$")
_DC_RE = re.compile(r"^[A-Z]{2}[0-9]$")
_KB_RE = re.compile(r"^KB[0-9]{6,7}$")
_NEVRA_RE = re.compile(
    r"^[A-Za-z0-9_.+-]+-[0-9][A-Za-z0-9_.+:~]*-[A-Za-z0-9_.+~]+\.(x86_64|i686|i386|noarch)$"
)
_DURATION_RE = re.compile(r"^(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$")


class _Ctx:
    """Collects the file name for error messages."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, where: str, problem: str) -> FleetFileError:
        return FleetFileError(f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}")


def _mapping(ctx: _Ctx, value: Any, where: str) -> dict:
    if not isinstance(value, dict):
        raise ctx.fail(where, f"must be a mapping, got {_kind(value)}")
    return value


def _list(ctx: _Ctx, value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise ctx.fail(where, f"must be a list, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "a number"}.get(
        type(value), type(value).__name__
    )


def _unknown_keys(ctx: _Ctx, data: dict, allowed: set[str], where: str) -> None:
    for key in data:
        if key not in allowed:
            hint = ", ".join(sorted(allowed))
            raise ctx.fail(f"{where}.{key}" if where else str(key), f"unknown field (allowed: {hint})")


def _str(ctx: _Ctx, data: dict, key: str, where: str, default: Any = ..., allow_empty=False) -> Any:
    if key not in data or data[key] is None:
        if default is ...:
            raise ctx.fail(f"{where}.{key}", "is required")
        return default
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ctx.fail(f"{where}.{key}", f"must be a string, got {_kind(value)}")
    value = str(value)
    if not allow_empty and not value.strip():
        raise ctx.fail(f"{where}.{key}", "must not be empty")
    return value


def _bool(ctx: _Ctx, data: dict, key: str, where: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise ctx.fail(f"{where}.{key}", f"must be true or false, got {value!r}")
    return value


def _int(ctx: _Ctx, data: dict, key: str, where: str, default: int, lo: int, hi: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.fail(f"{where}.{key}", f"must be a whole number, got {value!r}")
    if not lo <= value <= hi:
        raise ctx.fail(f"{where}.{key}", f"{value} is out of range ({lo}..{hi})")
    return value


def _choice(ctx: _Ctx, data: dict, key: str, where: str, choices: tuple, default: str) -> str:
    value = data.get(key, default)
    if value not in choices:
        raise ctx.fail(f"{where}.{key}", f"{value!r} is not one of {', '.join(choices)}")
    return value


def parse_duration(ctx: _Ctx, value: Any, where: str) -> int:
    """Seconds from an int or a string like ``"4m30s"``, ``"90s"``, ``"1h"``."""
    if isinstance(value, bool):
        raise ctx.fail(where, f"must be seconds or a duration like '4m30s', got {value!r}")
    if isinstance(value, int):
        seconds = value
    elif isinstance(value, str) and value.strip() and (m := _DURATION_RE.match(value.strip())):
        h, mi, s = (int(g) if g else 0 for g in m.groups())
        seconds = h * 3600 + mi * 60 + s
    else:
        raise ctx.fail(where, f"must be seconds or a duration like '4m30s', got {value!r}")
    if not 1 <= seconds <= 86_400:
        raise ctx.fail(where, f"{seconds} seconds is out of range (1 second .. 24 hours)")
    return seconds


def _default_seconds(*parts: Any, lo: int, hi: int) -> int:
    """Deterministic pseudo-random default in [lo, hi] derived from ``parts``."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return lo + int.from_bytes(digest[:4], "big") % (hi - lo + 1)


def load_fleet_file(path: str | Path, seed: int = 0) -> FleetSpec:
    """Read ``path`` and return a validated :class:`FleetSpec` (raises FleetFileError)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetFileError(f"{source}: cannot read fleet file: {exc.strerror or exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise FleetFileError(f"{source}: {where}invalid YAML: {problem}") from None
    return load_fleet_dict(doc, source=source, seed=seed)


def load_fleet_dict(doc: Any, source: str = "<fleet>", seed: int = 0) -> FleetSpec:
    """Validate an already-parsed fleet document (also used by the generator)."""
    ctx = _Ctx(source)
    if doc is None:
        raise ctx.fail("", "the file is empty")
    doc = _mapping(ctx, doc, "top level")
    _unknown_keys(
        ctx,
        doc,
        {"version", "clock", "data_centers", "accounts", "groups", "servers", "health_url_field"},
        "",
    )
    version = doc.get("version", 1)
    if version != 1:
        raise ctx.fail("version", f"{version!r} is not supported (only 1)")

    clock_start = None
    if "clock" in doc:
        clock = _mapping(ctx, doc["clock"], "clock")
        _unknown_keys(ctx, clock, {"start"}, "clock")
        if "start" in clock:
            clock_start = _clock_start(ctx, clock["start"])

    data_centers = _load_data_centers(ctx, doc)
    accounts = _load_accounts(ctx, doc, data_centers)
    groups = _load_groups(ctx, doc, data_centers, {a.alias for a in accounts})
    servers = _load_servers(ctx, doc, data_centers, accounts, groups, seed)
    digest = hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]
    health_field = _str(ctx, doc, "health_url_field", "", default=None)
    if health_field:
        for server in servers:
            server.custom_fields.setdefault(health_field, "{simulator}/health/" + server.name.lower())
    return FleetSpec(source, data_centers, accounts, groups, servers, clock_start, digest, health_field)


def _clock_start(ctx: _Ctx, raw: Any) -> float:
    """Epoch seconds from '2016-03-14T02:00:00Z'; an unquoted YAML timestamp (which YAML
    reads as a datetime) is accepted too, a naive one taken as UTC."""
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo else raw.replace(tzinfo=UTC)).timestamp()
    try:
        return parse_iso(str(raw))
    except ValueError:
        raise ctx.fail("clock.start", f"{raw!r} is not a date like 2016-03-14T02:00:00Z") from None


def _load_data_centers(ctx: _Ctx, doc: dict) -> dict[str, str]:
    raw = _list(ctx, doc.get("data_centers"), "data_centers") if "data_centers" in doc else None
    if not raw:
        raise ctx.fail("data_centers", "at least one data center is required")
    result: dict[str, str] = {}
    for i, item in enumerate(raw):
        where = f"data_centers[{i}]"
        item = _mapping(ctx, item, where)
        _unknown_keys(ctx, item, {"id", "name"}, where)
        dc = _str(ctx, item, "id", where).upper()
        if not _DC_RE.match(dc):
            raise ctx.fail(
                f"{where}.id", f"{dc!r} is not a data center code like VA1 (two letters, one digit)"
            )
        if dc in result:
            raise ctx.fail(f"{where}.id", f"{dc!r} is declared twice")
        result[dc] = _str(ctx, item, "name", where, default=KNOWN_DATA_CENTERS.get(dc, f"{dc} - Simulated"))
    return result


def _load_accounts(ctx: _Ctx, doc: dict, dcs: dict[str, str]) -> list[AccountSpec]:
    raw = _list(ctx, doc.get("accounts"), "accounts") if "accounts" in doc else None
    if not raw:
        raise ctx.fail("accounts", "at least one account is required")
    accounts: list[AccountSpec] = []
    seen_users: dict[str, str] = {}
    for i, item in enumerate(raw):
        where = f"accounts[{i}]"
        item = _mapping(ctx, item, where)
        _unknown_keys(ctx, item, {"alias", "name", "parent", "primary_data_center", "users"}, where)
        alias = _str(ctx, item, "alias", where)
        if not _ALIAS_RE.match(alias):
            raise ctx.fail(
                f"{where}.alias", f"{alias!r} is not an account alias (2-4 upper-case letters or digits)"
            )
        if any(a.alias == alias for a in accounts):
            raise ctx.fail(f"{where}.alias", f"{alias!r} is declared twice")
        parent = _str(ctx, item, "parent", where, default=None)
        primary = _str(ctx, item, "primary_data_center", where, default=next(iter(dcs))).upper()
        if primary not in dcs:
            raise ctx.fail(f"{where}.primary_data_center", f"{primary!r} is not a declared data center")
        users = []
        for j, u in enumerate(_list(ctx, item.get("users", []), f"{where}.users")):
            uw = f"{where}.users[{j}]"
            u = _mapping(ctx, u, uw)
            _unknown_keys(ctx, u, {"username", "password", "roles", "email"}, uw)
            username = _str(ctx, u, "username", uw)
            if username.lower() in seen_users:
                raise ctx.fail(
                    f"{uw}.username", f"{username!r} is already used in {seen_users[username.lower()]}"
                )
            seen_users[username.lower()] = uw
            password = _str(ctx, u, "password", uw)
            roles = _list(ctx, u.get("roles", ["AccountAdmin"]), f"{uw}.roles")
            for k, role in enumerate(roles):
                if role not in ROLES:
                    raise ctx.fail(f"{uw}.roles[{k}]", f"{role!r} is not a known role ({', '.join(ROLES)})")
            email = _str(ctx, u, "email", uw, default=f"{username}@example.com")
            users.append(UserSpec(username, password, list(roles), email))
        accounts.append(
            AccountSpec(alias, _str(ctx, item, "name", where, default=alias), parent, primary, users)
        )
    aliases = {a.alias for a in accounts}
    for i, acc in enumerate(accounts):
        if acc.parent is not None and acc.parent not in aliases:
            raise ctx.fail(f"accounts[{i}].parent", f"{acc.parent!r} is not a declared account alias")
        seen, cur = {acc.alias}, acc.parent
        while cur is not None:
            if cur in seen:
                raise ctx.fail(f"accounts[{i}].parent", f"account hierarchy has a cycle through {cur!r}")
            seen.add(cur)
            cur = next(a.parent for a in accounts if a.alias == cur)
    return accounts


def _group_segments(ctx: _Ctx, raw: Any, where: str, dcs: dict[str, str]) -> tuple[str, ...]:
    """A group path: 'VA1/Group/Sub' (split on '/') or a list of names taken literally,
    ['VA1', 'Finance', 'Prod/EU'], for names that contain '/'. Data center first."""
    if isinstance(raw, list):
        parts = []
        for k, seg in enumerate(raw):
            if isinstance(seg, bool) or not isinstance(seg, (str, int)) or not str(seg).strip():
                raise ctx.fail(f"{where}[{k}]", "every name in a path list must be a non-empty string")
            parts.append(str(seg).strip())
    elif isinstance(raw, (str, int)) and not isinstance(raw, bool) and str(raw).strip("/ "):
        parts = [p.strip() for p in str(raw).strip().strip("/").split("/")]
        if any(not p for p in parts):
            raise ctx.fail(where, f"{raw!r} has an empty group name (write 'VA1/Group/Subgroup')")
    else:
        raise ctx.fail(
            where, "must be a path like 'VA1/Group/Subgroup' or a list of names like [VA1, Group, 'A/B']"
        )
    if parts[0].upper() not in dcs:
        raise ctx.fail(where, f"data center {parts[0]!r} is not declared in data_centers")
    return (parts[0].upper(), *parts[1:])


def _load_groups(ctx: _Ctx, doc: dict, dcs: dict[str, str], aliases: set[str]) -> list[GroupSpec]:
    groups: list[GroupSpec] = []
    declared: set[tuple[str, tuple[str, ...]]] = set()
    for i, item in enumerate(_list(ctx, doc.get("groups", []), "groups")):
        where = f"groups[{i}]"
        item = _mapping(ctx, item, where)
        _unknown_keys(ctx, item, {"account", "path", "description", "type"}, where)
        account = _str(ctx, item, "account", where)
        if account not in aliases:
            raise ctx.fail(f"{where}.account", f"{account!r} is not a declared account alias")
        if item.get("path") is None:
            raise ctx.fail(f"{where}.path", "is required")
        segments = _group_segments(ctx, item["path"], f"{where}.path", dcs)
        shown = display_path(segments)
        if len(segments) < 2:
            raise ctx.fail(
                f"{where}.path", f"{shown!r} must look like 'VA1/Group/Subgroup' (data center first)"
            )
        if (account, segments) in declared:
            raise ctx.fail(f"{where}.path", f"group {shown!r} is declared twice for account {account}")
        parent = segments[:-1]
        if len(parent) > 1 and (account, parent) not in declared:
            raise ctx.fail(
                f"{where}.path",
                f"parent group {display_path(parent)!r} must be declared before {shown!r}",
            )
        declared.add((account, segments))
        description = _str(ctx, item, "description", where, default="", allow_empty=True)
        gtype = _choice(ctx, item, "type", where, GROUP_TYPES, "default")
        groups.append(GroupSpec(account, segments, description, gtype))
    return groups


_SERVER_KEYS = {
    "name",
    "account",
    "group",
    "os",
    "description",
    "power_state",
    "status",
    "in_maintenance",
    "is_template",
    "storage_gb",
    "cpu",
    "memory_mb",
    "ip",
    "public_ip",
    "reboot_seconds",
    "scan_seconds",
    "patches",
    "snapshot",
    "custom_fields",
    "unhealthy_after_patch",
}


def _load_servers(ctx, doc, dcs, accounts, groups, seed) -> list[ServerSpec]:
    aliases = {a.alias for a in accounts}
    group_paths = {(g.account, g.segments) for g in groups}
    servers: list[ServerSpec] = []
    names: dict[str, str] = {}
    for i, item in enumerate(_list(ctx, doc.get("servers", []), "servers")):
        where = f"servers[{i}]"
        item = _mapping(ctx, item, where)
        _unknown_keys(ctx, item, _SERVER_KEYS, where)
        account = _str(ctx, item, "account", where)
        if account not in aliases:
            raise ctx.fail(f"{where}.account", f"{account!r} is not a declared account alias")
        if item.get("group") is None:
            raise ctx.fail(f"{where}.group", "is required")
        segments = _group_segments(ctx, item["group"], f"{where}.group", dcs)
        dc = segments[0]
        if len(segments) > 1 and (account, segments) not in group_paths:
            raise ctx.fail(
                f"{where}.group", f"group {display_path(segments)!r} is not declared for account {account}"
            )
        group = path_key(segments)
        name = _str(ctx, item, "name", where).upper()
        prefix = dc + account
        custom_seq = name[len(prefix) :]
        if not name.startswith(prefix) or not re.fullmatch(r"[A-Z0-9]{1,6}[0-9]{2}", custom_seq):
            raise ctx.fail(
                f"{where}.name",
                f"{name!r} does not follow the naming convention data center + alias + custom part "
                f"(1-6 letters/digits) + 2-digit sequence, e.g. {prefix}WEB01",
            )
        if name in names:
            raise ctx.fail(f"{where}.name", f"{name!r} is already used by {names[name]}")
        names[name] = where
        os_raw = _str(ctx, item, "os", where)
        info = lookup_os(os_raw)
        if info is None:
            raise ctx.fail(f"{where}.os", f"{os_raw!r} is not a known OS code")
        spec = ServerSpec(
            name=name,
            account=account,
            data_center=dc,
            group_path=group,
            os=info.code,
            description=_str(ctx, item, "description", where, default="", allow_empty=True),
            power_state=_choice(ctx, item, "power_state", where, POWER_STATES, "started"),
            status=_choice(ctx, item, "status", where, SERVER_STATUSES, "active"),
            in_maintenance=_bool(ctx, item, "in_maintenance", where, False),
            is_template=_bool(ctx, item, "is_template", where, False),
            storage_gb=_int(ctx, item, "storage_gb", where, 50, 1, 65536),
            cpu=_int(ctx, item, "cpu", where, 2, 1, 64),
            memory_mb=_int(ctx, item, "memory_mb", where, 4096, 256, 1_048_576),
            ip=_str(
                ctx, item, "ip", where, default=f"10.{50 + i // 65000}.{(i // 250) % 250}.{10 + i % 240}"
            ),
            public_ip=_str(ctx, item, "public_ip", where, default=None),
            reboot_seconds=parse_duration(ctx, item.get("reboot_seconds", 120), f"{where}.reboot_seconds"),
            scan_seconds=parse_duration(ctx, item.get("scan_seconds", 45), f"{where}.scan_seconds"),
        )
        spec.patches = _load_patches(
            ctx, item.get("patches", []), f"{where}.patches", info.family, name, seed
        )
        if item.get("snapshot") is not None:
            spec.snapshot = _load_snapshot(ctx, item["snapshot"], f"{where}.snapshot", spec)
        spec.custom_fields = _custom_fields(ctx, item.get("custom_fields"), f"{where}.custom_fields")
        spec.unhealthy_after_patch = _bool(ctx, item, "unhealthy_after_patch", where, False)
        servers.append(spec)
    return servers


def _custom_fields(ctx: _Ctx, raw: Any, where: str) -> dict[str, str]:
    """``custom_fields: {cluster: db, healthUrl: "{simulator}/health/va1demodb01"}``: names to scalars."""
    if raw is None:
        return {}
    data = _mapping(ctx, raw, where)
    out: dict[str, str] = {}
    for name, value in data.items():
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ctx.fail(where, f"{name!r} is not a custom field name (1-100 characters)")
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ctx.fail(f"{where}.{name}", f"expected a text or number value, got {_kind(value)}")
        out[name.strip()] = str(value)
    return out


def _load_snapshot(ctx: _Ctx, raw: Any, where: str, server: ServerSpec) -> SnapshotSpec:
    """``snapshot: {age: 2h, expiration_days: 7}``; the platform's limits apply (reference §10)."""
    raw = _mapping(ctx, raw, where)
    _unknown_keys(ctx, raw, {"age", "expiration_days"}, where)
    age = parse_duration(ctx, raw.get("age", 3600), f"{where}.age")
    days = _int(ctx, raw, "expiration_days", where, 7, 1, 10)
    if age >= days * 86_400:
        raise ctx.fail(f"{where}.age", f"a snapshot {age} seconds old has expired after {days} day(s)")
    if server.storage_gb > 1024:
        raise ctx.fail(where, "servers with more than 1 TB of storage cannot have a snapshot")
    if server.is_template or server.status != "active":
        raise ctx.fail(where, "only active servers that are not templates can have a snapshot")
    return SnapshotSpec(age, days)


def _load_patches(ctx, raw, where, family, server_name, seed) -> list[PatchSpec]:
    patches = []
    for j, p in enumerate(_list(ctx, raw, where)):
        pw = f"{where}[{j}]"
        p = _mapping(ctx, p, pw)
        _unknown_keys(ctx, p, {"name", "kb", "package", "reboot", "duration", "cycle", "failure", "url"}, pw)
        kb = package = None
        if family == "windows":
            name = _str(ctx, p, "name", pw)
            kb = _str(ctx, p, "kb", pw).upper()
            if not _KB_RE.match(kb):
                raise ctx.fail(f"{pw}.kb", f"{kb!r} is not a KB number like KB3138615")
            if "package" in p:
                raise ctx.fail(f"{pw}.package", "Windows patches carry a kb, not a package")
        else:
            package = _str(ctx, p, "package", pw)
            if not _NEVRA_RE.match(package):
                raise ctx.fail(
                    f"{pw}.package",
                    f"{package!r} is not a package NEVRA like openssl-1.0.1e-42.el6_7.4.x86_64",
                )
            if "kb" in p:
                raise ctx.fail(f"{pw}.kb", "Linux patches carry a package, not a kb")
            name = _str(ctx, p, "name", pw, default=package)
        if "duration" in p:
            duration = parse_duration(ctx, p["duration"], f"{pw}.duration")
        else:
            duration = _default_seconds(seed, server_name, j, lo=60, hi=300)
        patches.append(
            PatchSpec(
                name=name,
                kb=kb,
                package=package,
                reboot=_bool(ctx, p, "reboot", pw, family == "windows"),
                duration=duration,
                cycle=_int(ctx, p, "cycle", pw, 1, 1, 10),
                failure=_choice(ctx, p, "failure", pw, FAILURES, "none"),
                url=_str(ctx, p, "url", pw, default=None),
            )
        )
    return patches
