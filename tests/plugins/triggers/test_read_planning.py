"""With a learnt cadence the trigger plans each read from what the execution showed, dated by the
API's own clock (``include.patching.read_schedule``), and hands the plan to the next trigger."""

from __future__ import annotations

import asyncio
import time
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


def watching(
    *sids: str,
    requested: datetime,
    cadence: Cadence | None = CADENCE,
    max_poll_interval: float = 1.0,  # plans up to 5 s ahead are kept
    refill_hold: float = 0.0,
) -> PatchCompletionTrigger:
    """A trigger watching ``sids``, requested at ``requested``, polling fast, no batch window."""
    return PatchCompletionTrigger(
        servers=[watch(sid, requested) for sid in sids],
        alias="DEMO",
        poll_interval=0.001,
        max_poll_interval=max_poll_interval,
        batch_window=0.0,
        cadence=None if cadence is None else cadence.as_dict(),
        refill_hold=refill_hold,
    )


def trigger(cadence: Cadence | None, requested: datetime) -> PatchCompletionTrigger:
    return watching("done", "busy", requested=requested, cadence=cadence, max_poll_interval=0.01)


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
    return watching("done", "ending", requested=requested)


def test_a_completion_waits_for_a_last_scan_ending_that_soon_so_one_request_refills_both():
    # hold: a fifth of the 45 s scan = 9 API s = 90 ms of ours; "ending" has 1 API s (10 ms) left
    payload = asyncio.run(two(datetime.now(UTC) - timedelta(seconds=1)).wait(EndingReads(age=44.0)))
    assert set(payload["outcomes"]) == {"done", "ending"} and payload["pending"] == []


def test_a_completion_does_not_wait_for_a_scan_ending_later_than_that():
    # 25 API s (250 ms) left: beyond the hold, the freed slot is refilled at once
    payload = asyncio.run(two(datetime.now(UTC) - timedelta(seconds=1)).wait(EndingReads(age=20.0)))
    assert set(payload["outcomes"]) == {"done"} and payload["pending"] == ["ending"]


class LaterReads(DatedReads):
    """``done`` has completed; ``later`` completes ``after`` seconds (ours) from now, or never."""

    def __init__(self, after: float | None) -> None:
        super().__init__()
        self.due = None if after is None else datetime.now(UTC) + timedelta(seconds=after)

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime]:
        if server_id != "later":
            return await super().get_patch_summary_dated(alias, server_id)
        self.reads.append(server_id)
        if self.due is None or datetime.now(UTC) < self.due:
            return [pending()], API_START + timedelta(seconds=20)
        done = pending() | {"status": "completed", "end_time": api(45)}
        done["init_messages"] = [initiation(0, 45, "Installed 0 updates")]
        return [done], API_START + timedelta(seconds=46)


def pair(refill_hold: float) -> PatchCompletionTrigger:
    requested = datetime.now(UTC) - timedelta(seconds=1)
    return watching(
        "done", "later", requested=requested, cadence=None, max_poll_interval=0.005, refill_hold=refill_hold
    )


def test_a_lone_completion_waits_for_a_second_within_the_refill_hold():
    payload = asyncio.run(pair(refill_hold=2.0).wait(LaterReads(after=0.1)))
    assert set(payload["outcomes"]) == {"done", "later"} and payload["pending"] == []


def test_without_a_refill_hold_a_lone_completion_is_reported_at_once():
    payload = asyncio.run(pair(refill_hold=0.0).wait(LaterReads(after=0.1)))
    assert set(payload["outcomes"]) == {"done"} and payload["pending"] == ["later"]


def test_the_refill_hold_is_bounded():
    started = time.monotonic()
    payload = asyncio.run(pair(refill_hold=0.2).wait(LaterReads(after=None)))
    assert set(payload["outcomes"]) == {"done"} and payload["pending"] == ["later"]
    assert 0.2 <= time.monotonic() - started < 2.0


def last_scan(begin: float = 305.0) -> dict:
    """``VA1-2`` after an install (0 to 300 s): its next initiation, begun at ``begin``, scanning."""
    return pending() | {
        "init_messages": [initiation(0, 300, "Installed 2 updates: a, b"), initiation(begin, None)]
    }


def patch(begin: float, end: float, status: str = "completed") -> dict:
    return {
        "start_time": api(begin),
        "end_time": api(end),
        "patch_begin_message": f"update at {begin:g}",
        "patch_end_message": "2" if status == "completed" else "4",
        "status": status,
    }


class DetailReads(DatedReads):
    """``ending`` is 20 API s into its last scan at the summary read; its detail then says
    ``detail_status`` with ``patches`` (a patch begun after the scan began: it was no last scan)."""

    def __init__(self, detail_status: str = "completed", patches: list[dict] | None = None) -> None:
        super().__init__()
        self.detail_status = detail_status
        self.patches = patches if patches is not None else [patch(45, 150), patch(151, 299, "failed")]
        self.details: list[str] = []

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime]:
        self.reads.append(server_id)
        return [last_scan()], API_START + timedelta(seconds=325)

    async def get_patch_detail_dated(
        self, alias: str, server_id: str, execution_id: str
    ) -> tuple[dict, datetime]:
        self.details.append(execution_id)
        done = self.detail_status == "completed"
        detail = {
            "execution_id": execution_id,
            "status": self.detail_status,
            "start_time": api(0),
            "end_time": api(350) if done else "",
            "patches": self.patches,
        }
        return detail, API_START + timedelta(seconds=351)


def single(requested: datetime) -> PatchCompletionTrigger:
    return watching("ending", requested=requested)


def test_the_read_due_at_the_last_scans_end_is_the_detail_and_reports_the_patches():
    reads = DetailReads()
    payload = asyncio.run(asyncio.wait_for(single(datetime.now(UTC) - timedelta(seconds=1)).wait(reads), 5))
    out = payload["outcomes"]["ending"]
    assert reads.reads == ["ending"] and reads.details == ["VA1-2"]  # one summary, one detail: no more
    assert out["state"] == "completed" and out["execution"]["end_time"] == api(350)
    # the initiations and installs are the summary's; the detail adds the end and the patches
    assert out["execution"]["attempts"] == 2 and out["execution"]["installed"] == 2
    assert [p["status"] for p in out["patches"]] == ["completed", "failed"]
    assert out["timing"]["final"] == 45.0 and out["timing"]["installs"] == [300.0]


def test_a_completed_detail_with_a_patch_begun_in_that_scan_sends_the_summary_again():
    # the "last scan" installed something: more initiations ran than the summary showed
    reads = DetailReads(patches=[patch(45, 150), patch(320, 340)])
    t = single(datetime.now(UTC) - timedelta(seconds=1))
    asyncio.run(asyncio.wait_for(_until(t, reads, lambda: len(reads.reads) >= 2), 5))
    assert reads.details == ["VA1-2"] and reads.reads == ["ending", "ending"]


def test_a_pending_detail_is_followed_by_the_summary():
    reads = DetailReads(detail_status="pending")
    t = single(datetime.now(UTC) - timedelta(seconds=1))
    asyncio.run(asyncio.wait_for(_until(t, reads, lambda: len(reads.reads) >= 2), 5))
    assert reads.details == ["VA1-2"] and reads.reads[:2] == ["ending", "ending"]


async def _until(t: PatchCompletionTrigger, reads: DatedReads, done: Any) -> None:
    task = asyncio.ensure_future(t.wait(reads))
    while not done():
        await asyncio.sleep(0.005)
    task.cancel()


def test_what_one_trigger_saw_lets_the_next_read_the_detail_at_once():
    # an earlier trigger saw the last scan running (the event's "seen", kept in the ledger)
    item = watch("ending", datetime.now(UTC) - timedelta(seconds=1)) | {
        "seen": {
            "execution_id": "VA1-2",
            "start_time": api(0),
            "initiations": [[0.0, 300.0, 2], [305.0, None, None]],
            "last_scan": True,
        }
    }
    reads = DetailReads()
    later = PatchCompletionTrigger(
        servers=[item], alias="DEMO", poll_interval=0.001, max_poll_interval=1.0, cadence=CADENCE.as_dict()
    )
    payload = asyncio.run(asyncio.wait_for(later.wait(reads), 5))
    assert reads.reads == [] and reads.details == ["VA1-2"]  # no summary: the detail said it all
    assert payload["outcomes"]["ending"]["execution"]["attempts"] == 2


def test_the_event_hands_on_what_each_pending_execution_showed():
    reads = DetailReads(detail_status="pending")
    t = two(datetime.now(UTC) - timedelta(seconds=1))
    reads_done = _DoneToo(reads)
    payload = asyncio.run(asyncio.wait_for(t.wait(reads_done), 5))
    seen = payload["seen"]["ending"]
    assert seen["execution_id"] == "VA1-2" and seen["last_scan"]
    assert seen["initiations"] == [[0.0, 300.0, 2], [305.0, None, None]]


class _DoneToo:
    """``done`` completed (``DatedReads``); ``ending`` as ``reads`` has it."""

    def __init__(self, reads: DetailReads) -> None:
        self.reads, self.done = reads, DatedReads()

    async def get_queue_status(self, alias: str, job_id: str) -> str:
        return "succeeded"

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime]:
        if server_id == "done":
            return await self.done.get_patch_summary_dated(alias, server_id)
        return await self.reads.get_patch_summary_dated(alias, server_id)

    async def get_patch_detail_dated(self, alias: str, server_id: str, execution_id: str) -> Any:
        return await self.reads.get_patch_detail_dated(alias, server_id, execution_id)


class MoreInitiations(DetailReads):
    """The scan seen running installed after all: the detail says completed with a patch begun
    in it, and the summary read next shows three initiations, completed."""

    def __init__(self) -> None:
        super().__init__(patches=[patch(45, 150), patch(320, 340)])

    async def get_patch_summary_dated(self, alias: str, server_id: str) -> tuple[list[dict], datetime]:
        if not self.details:
            return await super().get_patch_summary_dated(alias, server_id)
        self.reads.append(server_id)
        inits = [
            initiation(0, 300, "Installed 2 updates: a, b"),
            initiation(305, 345, "Installed 1 updates: c"),
            initiation(350, 395, "Installed 0 updates"),
        ]
        done = pending() | {"status": "completed", "end_time": api(395), "init_messages": inits}
        return [done], API_START + timedelta(seconds=396)


def test_when_the_scan_installed_the_summary_says_how_many_initiations_and_the_patches_are_kept():
    reads = MoreInitiations()
    payload = asyncio.run(asyncio.wait_for(single(datetime.now(UTC) - timedelta(seconds=1)).wait(reads), 5))
    out = payload["outcomes"]["ending"]
    assert reads.details == ["VA1-2"] and reads.reads == ["ending", "ending"]
    assert out["execution"]["attempts"] == 3 and out["execution"]["installed"] == 3  # the summary's
    assert [p["start_time"] for p in out["patches"]] == [api(45), api(320)]  # the detail's, not read again
