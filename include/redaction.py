"""Keeping secrets out of what patchflow writes: error texts, e-mails, audit documents (I6).

``redact`` applies three layers to free text:

1. the secrets the caller knows (a connection's password, the current bearer token);
2. every secret registered with Airflow's secrets masker in this process, when Airflow is
   loaded (the hooks register passwords and tokens with ``mask_secret``, see
   ``patchflow.secrets``); outside Airflow this layer is absent, and nothing is imported;
3. what looks like a credential: bearer tokens, ``Authorization:`` values, ``password=...``
   style pairs and the password of a ``scheme://user:password@host`` URL.

``redact_mapping`` masks values whose *key* names a secret (user-supplied run parameters).
It does not consult Airflow's masker: the audit document must read the same in every process.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any

REPLACEMENT = "***"
#: Names that mark a value as secret, in text (``password=...``) and as mapping keys.
SECRET_NAME = r"(?:password|passwd|pwd|access_token|token|secret|api[_-]?key|credential)"
#: Shorter known secrets are not replaced: they would mask ordinary words.
MIN_SECRET_LENGTH = 4

_SECRET_KEY = re.compile(SECRET_NAME, re.IGNORECASE)
_SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(?i)\b(authorization[\"']?\s*[=:]\s*)[^\n,;}]+"), r"\1***"),
    (re.compile(rf"(?i)\b({SECRET_NAME}[\"']?\s*[=:]\s*)(?:\"[^\"]*\"|'[^']*'|[^\s,;&}}]+)"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1***\2"),
)


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` with known secrets, Airflow-registered secrets and credential patterns masked."""
    text = _mask_known(text, secrets)
    text = _mask_registered_with_airflow(text)
    return _mask_patterns(text)


def redact_mapping(value: Any) -> Any:
    """A copy of ``value`` (nested dicts/lists) with every non-empty secret-named value masked."""
    if isinstance(value, Mapping):
        return {
            key: REPLACEMENT
            if _SECRET_KEY.search(str(key)) and item not in (None, "")
            else redact_mapping(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact_mapping(item) for item in value]
    return value


def _mask_known(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            text = text.replace(secret, REPLACEMENT)
    return text


def _mask_registered_with_airflow(text: str) -> str:
    """Airflow's masker, if this process loaded it (nothing was registered otherwise)."""
    airflow_log = sys.modules.get("airflow.sdk.log")
    if airflow_log is None:
        return text
    return str(airflow_log.redact(text, replacement=REPLACEMENT))


def _mask_patterns(text: str) -> str:
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text
