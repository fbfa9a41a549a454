"""Decode ``application/x-www-form-urlencoded`` bodies into JSON-like values.

ASP.NET Web API (the real API's framework) binds form bodies as well as JSON, and the
published Python SDK sends forms (login, createSnapshot, empty bodies). Keys follow the
conventions of Web API and jQuery: ``a=1&a=2`` (repeat: a list), ``a[]=1``, ``a[0]=1``,
``a[b]=1`` / ``a.b=1`` (nesting; a dot inside brackets is part of the name, so
``package[parameters][patch.debug.mode]=false`` works) and a bare array as ``=1&=2``,
``[]=1`` or ``[0]=1``. Every leaf value is a string, as in any form.
"""

from __future__ import annotations

import itertools
from urllib.parse import parse_qsl


class FormBodyError(ValueError):
    """A form key cannot be read (e.g. a name used both as a value and as a group)."""


_APPEND = "\x00append"  # key prefix of a ``[]`` (append) segment while building


def decode_form(raw: bytes) -> dict | list | None:
    """The form as nested dicts/lists of strings; None for an empty body."""
    text = raw.decode("utf-8", errors="replace")
    pairs = parse_qsl(text, keep_blank_values=True)
    if not pairs:
        return None
    root: dict = {}
    counter = itertools.count()
    for key, value in pairs:
        _store(root, _segments(key, counter), value, key)
    return _finish(root)


def _segments(key: str, counter: itertools.count) -> list[str]:
    """``servers[0][id]`` -> ["servers", "0", "id"]; ``[]`` becomes a unique append key."""
    segments: list[str] = []
    name, i = "", 0
    while i < len(key) and key[i] not in "[.":
        name += key[i]
        i += 1
    if name or i == len(key):
        segments.append(name if name else f"{_APPEND}{next(counter)}")  # "=x": a bare-array item
    while i < len(key):
        if key[i] == "[":
            end = key.find("]", i)
            if end < 0:
                raise FormBodyError(f"form key {key!r}: '[' without ']'")
            inner = key[i + 1 : end]
            segments.append(inner if inner else f"{_APPEND}{next(counter)}")
            i = end + 1
        elif key[i] == ".":
            j = i + 1
            while j < len(key) and key[j] not in "[.":
                j += 1
            segments.append(key[i + 1 : j])
            i = j
        else:
            raise FormBodyError(f"form key {key!r}: unexpected {key[i]!r} after ']'")
    if not segments:
        raise FormBodyError(f"form key {key!r}: no name")
    return segments


def _store(node: dict, segments: list[str], value: str, key: str) -> None:
    for segment in segments[:-1]:
        child = node.setdefault(segment, {})
        if not isinstance(child, dict):
            raise FormBodyError(f"form key {key!r}: {segment!r} is both a value and a group")
        node = child
    leaf = segments[-1]
    if leaf not in node:
        node[leaf] = value
    elif isinstance(node[leaf], list):
        node[leaf].append(value)
    elif isinstance(node[leaf], str):
        node[leaf] = [node[leaf], value]  # a repeated key is a list
    else:
        raise FormBodyError(f"form key {key!r}: {leaf!r} is both a value and a group")


def _finish(node):
    """Turn groups whose keys are all indexes/appends into lists, recursively."""
    if isinstance(node, list):
        return node
    if not isinstance(node, dict):
        return node
    items = {k: _finish(v) for k, v in node.items()}
    if items and all(k.isdigit() or k.startswith(_APPEND) for k in items):
        if all(k.isdigit() for k in items):
            return [items[k] for k in sorted(items, key=int)]
        return _flatten_appends(items)
    return items


def _flatten_appends(items: dict) -> list:
    out: list = []
    for value in items.values():
        out.extend(value if isinstance(value, list) else [value])
    return out
