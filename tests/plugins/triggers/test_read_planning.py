"""With a learnt cadence the trigger plans each read from what the execution showed, dated by the
API's own clock (``include.patching.read_schedule``), and hands the plan to the next trigger."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from include.patching.read_schedule import Cadence
from include.timefmt import utc_text
from patchflow.triggers.patching import PatchCompletionTrigger

API_START = datetime(2016, 3, 14, 2, 0, 0, tzinfo=UTC)  # the API's clock: years behind ours (I8)
CADENCE = Cadence(
    final=45.0,
    final_late=50.0,
    short_gap=5.0,
    long_gap=155.0,
    installs=(100.0, 200.0, 300.0),
    start_lag=0.0,
    rate=0.01,  # 1 API second = 10 ms of ours
)


def api(seconds: float) -> str:
    return (API_START + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def initiation(begin: float, end: float | None, message: str = "") -> dict:
    return {
        "start_time": api(begin),
        "end_time": "" if end is None else api(end),
        "init_end_message": message,
    }


def pending() -> dict:
    """``VA1-2`` in its first initiation, started at the API's time 0."""
    return {
        "execution_id": "VA1-2",
        "status": "pending",
        "start_time": api(0),
        "end_time": "",
        "init_messages": [initiation(0, None)],
    }


class DatedReads:
    """Two servers: ``done`` has completed, ``busy`` is 20 API seconds into its first scan."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    async def get_queue_status(self, alias: str, job_id: str) -> str:
        return "succeeded"

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime]:
        self.reads.append(server_id)
        if server_id == "done":
            execution = {
                "execution_id": "VA1-1",
                "status": "completed",
                "start_time": api(0),
                "end_time": api(350),
                "init_messages": [
                    initiation(0, 300, "Installed 2 updates: a, b"),
                    initiation(305, 350, "Installed 0 updates"),
                ],
            }
            return [execution], API_START + timedelta(seconds=351)
        return [pending()], API_START + timedelta(seconds=20)


def watch(sid: str, requested: datetime) -> dict[str, Any]:
    return {
        "server_id": sid,
        "job_id": f"va1-{sid}",
        "requested_at": utc_text(requested),
        "deadline": (requested + timedelta(hours=1)).isoformat(),
        "known_executions": [],
        "quiet_seconds": 0.0,
        "job_succeeded": True,
    }


def trigger(cadence: Cadence | None, requested: datetime) -> PatchCompletionTrigger:
    return PatchCompletionTrigger(
        servers=[watch("done", requested), watch("busy", requested)],
        alias="DEMO",
        poll_interval=0.001,
        max_poll_interval=0.01,
        batch_window=0.0,
        cadence=None if cadence is None else cadence.as_dict(),
    )


def test_a_read_is_planned_for_when_the_scan_could_end_and_handed_on():
    requested = datetime.now(UTC) - timedelta(seconds=1)
    before = datetime.now(UTC)
    payload = asyncio.run(trigger(CADENCE, requested).wait(DatedReads()))
    after = datetime.now(UTC)
    assert set(payload["outcomes"]) == {"done"} and payload["pending"] == ["busy"]
    planned = datetime.fromisoformat(payload["next_reads"]["busy"])
    # 20 API s into a 45 s scan: 25 API s after the read (and one more: whole seconds), i.e.
    # 0.26 s of ours
    assert before + timedelta(seconds=0.26) <= planned <= after + timedelta(seconds=0.26)


def test_a_completed_execution_reports_what_it_teaches():
    requested = datetime.now(UTC) - timedelta(seconds=1)
    payload = asyncio.run(trigger(CADENCE, requested).wait(DatedReads()))
    timing = payload["outcomes"]["done"]["timing"]
    assert timing["final"] == 45.0 and timing["gaps"] == [5.0] and timing["installs"] == [300.0]
    # read 351 API s (3.51 s of ours) after its start, 1 s after the request: the start lag is
    # 1 - 3.51 < 0 → 0, never negative
    assert timing["start_lag"] == pytest.approx(0.0)


def test_without_a_cadence_nothing_is_planned():
    payload = asyncio.run(trigger(None, datetime.now(UTC)).wait(DatedReads()))
    assert payload["next_reads"] == {}
    assert payload["outcomes"]["done"]["timing"]["final"] == 45.0  # still learnt from


def test_the_next_trigger_reads_when_the_plan_says():
    reads = DatedReads()
    later = datetime.now(UTC) + timedelta(seconds=0.5)
    item = watch("busy", datetime.now(UTC)) | {"next_read_at": later.isoformat()}
    t = PatchCompletionTrigger(
        servers=[item], alias="DEMO", poll_interval=0.001, max_poll_interval=10.0, cadence=CADENCE.as_dict()
    )
    asyncio.run(asyncio.wait_for(_until_read(t, reads), 5.0))
    assert datetime.now(UTC) >= later - timedelta(milliseconds=20)  # not read before the plan


async def _until_read(t: PatchCompletionTrigger, reads: DatedReads) -> None:
    task = asyncio.ensure_future(t.wait(reads))
    while not reads.reads:
        await asyncio.sleep(0.005)
    task.cancel()


class EndingReads(DatedReads):
    """``done`` has completed; ``ending`` is ``age`` API seconds into its last scan at the first
    read and completed at the next."""

    def __init__(self, age: float) -> None:
        super().__init__()
        self.age = age

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime]:
        if server_id == "done" or self.reads.count("ending") >= 1:
            self.reads.append(server_id)
            execution = {
                "execution_id": "VA1-1" if server_id == "done" else "VA1-2",
                "status": "completed",
                "start_time": api(0),
                "end_time": api(45),
                "init_messages": [initiation(0, 45, "Installed 0 updates")],
            }
            return [execution], API_START + timedelta(seconds=46)
        self.reads.append(server_id)
        return [pending()], API_START + timedelta(seconds=self.age)


def two(requested: datetime) -> PatchCompletionTrigger:
    return PatchCompletionTrigger(
        servers=[watch("done", requested), watch("ending", requested)],
        alias="DEMO",
        poll_interval=0.001,
        max_poll_interval=1.0,  # plans up to 5 s ahead are kept
        batch_window=0.0,
        cadence=CADENCE.as_dict(),
    )


def test_a_completion_waits_for_a_last_scan_ending_that_soon_so_one_request_refills_both():
    # hold: a fifth of the 45 s scan = 9 API s = 90 ms of ours; "ending" has 1 API s (10 ms) left
    payload = asyncio.run(two(datetime.now(UTC) - timedelta(seconds=1)).wait(EndingReads(age=44.0)))
    assert set(payload["outcomes"]) == {"done", "ending"} and payload["pending"] == []


def test_a_completion_does_not_wait_for_a_scan_ending_later_than_that():
    # 25 API s (250 ms) left: beyond the hold, the freed slot is refilled at once
    payload = asyncio.run(two(datetime.now(UTC) - timedelta(seconds=1)).wait(EndingReads(age=20.0)))
    assert set(payload["outcomes"]) == {"done"} and payload["pending"] == ["ending"]
