"""Register secrets with Airflow's secrets masker (invariant I6).

``airflow.sdk.log.mask_secret`` masks in the task process and tells the supervisor too;
outside a task (tests, triggerer) it still registers with the local masker.
"""

from __future__ import annotations


def mask(secret: str | None) -> None:
    if not secret:
        return
    from airflow.sdk.log import mask_secret

    mask_secret(secret)


async def amask(secret: str | None) -> None:
    if not secret:
        return
    from airflow.sdk.log import amask_secret

    await amask_secret(secret)
