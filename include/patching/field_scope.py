"""Scope by CLC custom-field value: ``custom_fields: {"Ring": "dev", "Environment": ["staging", "qa"]}``.

A server is in scope only when, for every named field, its value is one of the given values.
Names and values are compared case-insensitively after trimming: CLC shows the same field typed
by different people, and ``Dev `` from a form must not silently leave a server out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

FieldScope = tuple[tuple[str, frozenset[str]], ...]
"""(field name casefolded, its accepted values casefolded), sorted by name."""


def _fold(text: str) -> str:
    return text.strip().casefold()


def check_param(value: Any) -> tuple[dict[str, list[str]], list[str]]:
    """The parameter normalised (``{name: [values]}``, trimmed) and one problem per bad entry."""
    if value is None or value == "":
        return {}, []
    if not isinstance(value, Mapping):
        return {}, [
            "custom_fields: expected a JSON object of field name to value or list of values, "
            f"got {type(value).__name__} {value!r}"
        ]
    good: dict[str, list[str]] = {}
    problems: list[str] = []
    for name, wanted in value.items():
        if not isinstance(name, str) or not name.strip():
            problems.append(f"custom_fields: {name!r} is not a field name (a non-empty string)")
            continue
        values = [wanted] if isinstance(wanted, str) else wanted
        if not isinstance(values, list | tuple) or not values:
            problems.append(
                f"custom_fields: {name!r}: {wanted!r} is not a string or a non-empty list of strings"
            )
            continue
        bad = [v for v in values if not isinstance(v, str) or not v.strip()]
        if bad:
            shown = ", ".join(repr(v) for v in bad)
            problems.append(f"custom_fields: {name!r}: {shown} is not a non-empty string")
            continue
        if name.strip() in good:
            problems.append(f"custom_fields: {name!r} is given twice")
            continue
        good[name.strip()] = list(dict.fromkeys(v.strip() for v in values))
    return good, problems


def build(value: Mapping[str, Iterable[str] | str] | None) -> FieldScope:
    """The matcher's form of an already checked parameter."""
    out: dict[str, frozenset[str]] = {}
    for name, wanted in (value or {}).items():
        values = [wanted] if isinstance(wanted, str) else list(wanted)
        out[_fold(name)] = frozenset(_fold(v) for v in values)
    return tuple(sorted(out.items()))


def mismatch(fields: Mapping[str, Any], scope: FieldScope) -> str | None:
    """Why a server with these custom fields is out of scope (field and value named), or None."""
    have = {_fold(str(k)): str(v).strip() for k, v in fields.items()}
    for name, wanted in scope:
        value = have.get(name)
        if value is None or value.casefold() not in wanted:
            shown = "not set" if value is None else f"is {value!r}"
            return f"custom field {name!r} {shown}, not one of {', '.join(sorted(wanted))}"
    return None


def name_problems(
    wanted: Iterable[str], known: Iterable[str], alias: str, hint: Callable[[str, Iterable[str]], str]
) -> list[str]:
    """Field names no server of the alias has, with ``hint(name, known)`` as "did you mean"."""
    known = sorted(set(known))
    folded = {k.casefold() for k in known}
    listed = ", ".join(known) or "none"
    return [
        f"custom_fields: {name!r} is not a custom field of any server of alias {alias}"
        f"{hint(name, known)}; the alias has {listed}"
        for name in wanted
        if _fold(name) not in folded
    ]
