"""The deployment's timing settings, read from Airflow's ``[patchflow]`` config section.

The defaults and the scaling live in ``include.patching.tuning``; this module only reads
``[patchflow] time_scale`` (``AIRFLOW__PATCHFLOW__TIME_SCALE``) and per-setting overrides
(``AIRFLOW__PATCHFLOW__POLL_INTERVAL`` …) at the moment a task, trigger or hook is built.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.patching.tuning import CONFIG_SECTION, Tuning, resolve, resolve_sizes


def _read(name: str) -> str | None:
    from airflow.sdk import conf

    return conf.get(CONFIG_SECTION, name, fallback=None)


def current() -> Tuning:
    """Production defaults x ``time_scale``, with per-setting overrides applied."""
    return resolve(_read)[0]


def time_scale() -> float:
    return resolve(_read)[1]


def setting(name: str, explicit: float | None = None) -> float:
    """An explicit value wins; otherwise the deployment's (scaled or overridden) setting."""
    if explicit is not None:
        return float(explicit)
    return float(getattr(current(), name))


def task_defaults(owner: str) -> dict[str, Any]:
    """Every patchflow DAG's ``default_args``: a real owner, two retries, a retry delay that
    follows ``[patchflow] time_scale`` like every other timing setting."""
    return {"owner": owner, "retries": 2, "retry_delay": timedelta(seconds=setting("task_retry_delay"))}


def size(name: str, explicit: int | None = None) -> int:
    """A count setting (``include.patching.tuning.Sizes``): explicit, else the deployment's."""
    if explicit is not None:
        return int(explicit)
    return int(getattr(resolve_sizes(_read), name))


def default_deferrable() -> bool:
    """``[operators] default_deferrable`` (False unless the deployment sets it): where a rollout
    waits when neither the run nor the DAG says, as for Airflow's provider operators."""
    from airflow.sdk import conf

    return conf.getboolean("operators", "default_deferrable", fallback=False)
