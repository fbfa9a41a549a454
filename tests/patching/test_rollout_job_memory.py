"""A queue job a trigger saw succeed is not asked for again by the next trigger (fewer requests per
server across resumes); the rollout keeps it in the request's submission record."""

from __future__ import annotations

import asyncio
from typing import Any

from patchflow.triggers.patching import PatchCompletionTrigger
from tests.patching.memory_api import MemoryApi, make_rollout

SERVERS = ["va1demoweb01", "va1demoweb02"]


class Reads:
    def __init__(self) -> None:
        self.jobs: list[str] = []

    async def get_queue_status(self, alias: str, job_id: str) -> str:
        self.jobs.append(job_id)
        return "succeeded"

    async def get_patch_summary(self, alias: str, server_id: str) -> list[dict[str, Any]]:
        return []


def test_a_succeeded_job_is_remembered_and_not_polled_again(tmp_path):
    api = MemoryApi(SERVERS)
    rollout = make_rollout(tmp_path, api, max_concurrency=2)
    rollout.fill()
    job = rollout.entries[SERVERS[0]].job_id
    assert job and all(not w["job_succeeded"] for w in rollout.watch_list())
    first = PatchCompletionTrigger(servers=rollout.watch_list(), alias="DEMO", poll_interval=0.01)
    reads = Reads()
    asyncio.run(first.check(reads))
    assert reads.jobs == [job]
    rollout.note_jobs({job: "succeeded"})
    rollout.apply({})  # saves the ledger
    assert all(w["job_succeeded"] for w in rollout.watch_list())
    second = PatchCompletionTrigger(servers=rollout.watch_list(), alias="DEMO", poll_interval=0.01)
    again = Reads()
    asyncio.run(second.check(again))
    assert again.jobs == []  # only the executions are read now
    reloaded = make_rollout(tmp_path, api, max_concurrency=2)  # the next resume: from the ledger
    assert all(w["job_succeeded"] for w in reloaded.watch_list())
