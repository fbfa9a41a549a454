"""Trigger-form fields shared by the DAGs that patch: one wording, one type per setting.

Each schema fixes only the value's JSON type, "null" included (see ``dags/patch_fleet.py``:
Airflow reports a schema failure as raw JSON-schema text, and a type without "null" marks the
field required); the task that reads a value checks it and gives an empty one its default.
Functions, not constants: each DAG gets its own ``Param`` objects.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import Param

from include.patching.run_params import DEFAULT_SERVER_TIMEOUT_MINUTES


def account_alias(description: str) -> Param:
    return Param(None, type=["null", "string"], title="Account alias", description=description)


def patch_debug_mode(**extra: Any) -> Param:
    return Param(
        False,
        type=["null", "boolean"],
        title="Patch debug mode",
        description="Sets the Linux package's patch.debug.mode parameter.",
        **extra,
    )


def maintenance_mode(**extra: Any) -> Param:
    return Param(
        True,
        type=["null", "boolean"],
        title="Maintenance mode",
        description="Put servers into maintenance mode while they are patched (recommended by CLC).",
        **extra,
    )


def server_timeout_minutes(**extra: Any) -> Param:
    return Param(
        DEFAULT_SERVER_TIMEOUT_MINUTES,
        type=["null", "integer"],
        title="Per-server timeout (minutes)",
        description="A server whose patching has not completed by then ends as timed_out (1 to 1440).",
        **extra,
    )
