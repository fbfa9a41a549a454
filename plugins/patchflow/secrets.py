"""Register secrets with Airflow's secrets masker (invariant I6).

``airflow.sdk.log.mask_secret`` masks in the task process and tells the supervisor too;
outside a task (tests, triggerer) it still registers with the local masker. This is the
Airflow half of secret handling; ``include.redaction.redact`` masks what is registered here
(plus known secrets and credential patterns) in texts that do not go through Airflow's logs.
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
