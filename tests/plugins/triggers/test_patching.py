"""PatchCompletionTrigger against the real simulator in-process (real aiohttp, millisecond polling)."""

from __future__ import annotations

import asyncio
import importlib
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from airflow.triggers.base import TriggerEvent

from include.timefmt import utc_text
from patchflow.triggers.patching import PatchCompletionTrigger
from tests.plugins.cloud import (
    JOB_STATUS,
    PASSWORD,
    SECURITY_UPDATE,
    SETTLE_SECONDS,
    SUMMARY,
    WINDOWS,
    Cloud,
)

FAST = {"poll_interval": 0.01, "max_poll_interval": 0.03, "batch_window": 0.0}


def watch(
    sid: str,
    job: str | None,
    *,
    requested: datetime | None = None,
    timeout: float = 10.0,
    known: list[str] | None = None,
) -> dict:
    """A watch item; ``known=None`` is a legacy item (request-time rule)."""
    requested = requested or datetime.now(UTC)
    return {
        "server_id": sid,
        "job_id": job,
        "requested_at": utc_text(requested),
        "deadline": (datetime.now(UTC) + timedelta(seconds=timeout)).isoformat(),
        "known_executions": known,
    }


def single(job: str | None, **kw) -> PatchCompletionTrigger:
    return PatchCompletionTrigger(servers=[watch("va1demoweb01", job)], alias="DEMO", **{**FAST, **kw})


async def first_event(trigger: PatchCompletionTrigger, limit: float = 10.0) -> dict:
    run = trigger.run()
    try:
        event = await asyncio.wait_for(run.__anext__(), limit)
    finally:
        await run.aclose()
    assert isinstance(event, TriggerEvent)
    return event.payload


def test_serialize_round_trips_with_an_importable_classpath():
    trigger = PatchCompletionTrigger(servers=[watch("va1demoweb01", "va1-1")], alias="DEMO", **FAST)
    path, kwargs = trigger.serialize()
    assert path == "patchflow.triggers.patching.PatchCompletionTrigger"
    module, _, name = path.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert not module.startswith("dags") and cls is PatchCompletionTrigger
    assert cls(**kwargs).serialize() == (path, kwargs)
    assert PASSWORD not in repr(kwargs) and "Bearer" not in repr(kwargs)


def test_needs_servers():
    with pytest.raises(ValueError, match="at least one server"):
        PatchCompletionTrigger(servers=[], alias="DEMO")


def with_history(
    start_cloud: Callable[..., Cloud], age: float, offset: float = 0.0, **kw
) -> tuple[Cloud, str]:
    """A simulator whose va1demoweb01 finished a patch run ``age`` simulated seconds ago (more
    than an hour), its clock ``offset`` seconds from ours; returns it and that execution's id."""
    cloud = start_cloud(api_clock_offset=offset - age, **kw)
    (old,) = cloud.run_to_completion(["va1demoweb01"]).values()
    cloud.settle(age - SETTLE_SECONDS)
    return cloud, old


THREE_INITIATIONS = {
    "va1demoweb01": {
        "patches": [
            {"package": "openssl-1.0.1e-42.el6_7.4.x86_64", "duration": 2, "cycle": 1},
            {"package": "bash-4.1.2-33.el6_7.1.x86_64", "duration": 2, "cycle": 2},
        ]
    }
}


async def test_completes_from_the_execution_after_several_initiations(start_cloud):
    cloud = start_cloud(THREE_INITIATIONS)
    cloud.fault(kind="queue_delay", seconds=30, count=1)  # the job waits in the queue first
    job = cloud.execute(["va1demoweb01"])
    assert cloud.sim.jobs[job].start - cloud.sim.jobs[job].created >= 30  # notStarted, then executing
    before = len(cloud.requests)
    payload = await first_event(single(job))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["job_status"] == "succeeded"
    assert out["execution"]["attempts"] == 3 and "reboots" not in out["execution"]  # never inferred (I8)
    assert payload["pending"] == []
    # only GETs (and the login POST) were sent: no side effects
    assert {r.method for r in cloud.requests[before:] if "authentication" not in r.path} == {"GET"}


async def test_queue_job_succeeded_is_not_completion(start_cloud, monkeypatch):
    """I4: the job says succeeded long before the execution completes."""
    long_patch = {"package": SECURITY_UPDATE, "duration": 80_000}
    cloud = start_cloud({"va1demoweb01": {"patches": [long_patch]}})
    job = cloud.execute(["va1demoweb01"])
    reads_after_job_succeeded = []
    poll_executions = PatchCompletionTrigger._poll_executions

    async def observed(self, *args):
        await poll_executions(self, *args)
        if cloud.job_status(job) == "succeeded" and cloud.sent(containing="/patch"):
            reads_after_job_succeeded.append(len(cloud.sent(containing="/patch")))
            if len(reads_after_job_succeeded) == 3:
                cloud.settle(86_400)  # only now does the execution complete

    monkeypatch.setattr(PatchCompletionTrigger, "_poll_executions", observed)
    out = (await first_event(single(job)))["outcomes"]["va1demoweb01"]
    (execution,) = cloud.executions("va1demoweb01")
    assert out["state"] == "completed" and out["execution"]["execution_id"] == execution
    assert len(reads_after_job_succeeded) >= 3  # still reading the execution after the job succeeded


async def test_a_failed_job_fails_the_server(start_cloud):
    """The platform fails the job of a package the OS cannot run (``unknown``, which ends a server
    the same way, is a status the simulator never answers)."""
    cloud = start_cloud({"va1demoweb01": {"os": WINDOWS, "patches": []}})
    job = cloud.execute(["va1demoweb01"])
    payload = await first_event(single(job))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "failed" and out["reason"] == f"queue job {job} ended failed"
    assert cloud.executions("va1demoweb01") == []


async def test_an_older_completed_execution_never_counts(start_cloud):
    cloud, old = with_history(start_cloud, age=30 * 86400)
    now = datetime.now(UTC)
    job = cloud.execute(["va1demoweb01"])
    new = cloud.executions("va1demoweb01")[-1]
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", job, requested=now)], alias="DEMO", **FAST)
    )
    assert new != old and payload["outcomes"]["va1demoweb01"]["execution"]["execution_id"] == new


@pytest.mark.parametrize("api_minutes", [-10, 10, -60 * 24 * 365])
async def test_an_api_clock_behind_or_ahead_of_ours_changes_nothing(start_cloud, api_minutes):
    """I8: the new execution is the one not known before the request, whatever its start time."""
    cloud, old = with_history(start_cloud, age=86400, offset=api_minutes * 60.0)
    job = cloud.execute(["va1demoweb01"])
    item = watch("va1demoweb01", job, timeout=5.0, known=[old])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert (
        out["state"] == "completed"
        and out["execution"]["execution_id"] == cloud.executions("va1demoweb01")[-1]
    )
    assert out["execution"]["execution_id"] != old


async def test_a_known_execution_dated_after_the_request_is_never_taken_for_ours(start_cloud):
    """An API clock ahead of ours dates an execution from before the request after it."""
    cloud = start_cloud(api_clock_offset=2 * 3600.0)
    (future,) = cloud.run_to_completion(["va1demoweb01"]).values()
    item = watch("va1demoweb01", None, timeout=0.3, known=[future])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "no_execution" and out["execution_id"] is None


async def test_per_server_deadline_ends_in_timed_out(cloud):
    cloud.fault(kind="stuck_execution", server="va1demoweb01")  # never finishes
    job = cloud.execute(["va1demoweb01"])
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", job, timeout=0.3)], alias="DEMO", **FAST)
    )
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "timed_out" and "deadline" in out["reason"]
    assert cloud.execution(cloud.executions("va1demoweb01")[0])["status"] == "pending"


async def test_batching_window_fires_with_partial_results(cloud):
    cloud.fault(kind="stuck_execution", server="va1demoweb02")
    job = cloud.execute(["va1demoweb01", "va1demoweb02"])
    trigger = PatchCompletionTrigger(
        servers=[watch("va1demoweb01", job), watch("va1demoweb02", job)],
        alias="DEMO",
        **{**FAST, "batch_window": 0.2},
    )
    started = asyncio.get_running_loop().time()
    payload = await first_event(trigger)
    assert set(payload["outcomes"]) == {"va1demoweb01"} and payload["pending"] == ["va1demoweb02"]
    assert asyncio.get_running_loop().time() - started >= 0.2


async def test_window_collects_every_server_that_finishes_in_it(start_cloud):
    slow = {"patches": [{"package": SECURITY_UPDATE, "duration": 40}]}
    cloud = start_cloud({"va1demoweb01": {}, "va1demoweb02": slow})
    job = cloud.execute(["va1demoweb01", "va1demoweb02"])
    trigger = PatchCompletionTrigger(
        servers=[watch("va1demoweb01", job), watch("va1demoweb02", job)],
        alias="DEMO",
        **{**FAST, "batch_window": 5.0},
    )
    payload = await first_event(trigger)
    assert set(payload["outcomes"]) == {"va1demoweb01", "va1demoweb02"} and payload["pending"] == []
    ends = {o["execution"]["end_time"] for o in payload["outcomes"].values()}
    assert len(ends) == 2  # they did finish at different times


async def test_one_status_request_per_distinct_job_per_cycle(cloud, monkeypatch):
    cloud.fault(kind="queue_delay", seconds=10**5, count=1)  # the job stays notStarted...
    servers = ("va1demoweb01", "va1demoweb02", "va1demodb01")
    job = cloud.execute(servers)
    per_cycle: list[int] = []
    poll_jobs = PatchCompletionTrigger._poll_jobs

    async def counted(self, *args):
        before = len(cloud.sent(containing=f"/status/{job}"))
        await poll_jobs(self, *args)
        per_cycle.append(len(cloud.sent(containing=f"/status/{job}")) - before)
        if len(per_cycle) == 3:
            cloud.settle(2 * 10**5)  # ...for three cycles; then it lands and the executions complete

    monkeypatch.setattr(PatchCompletionTrigger, "_poll_jobs", counted)
    items = [watch(s, job, timeout=30.0) for s in servers]
    trigger = PatchCompletionTrigger(servers=items, alias="DEMO", **{**FAST, "batch_window": 5.0})
    payload = await first_event(trigger, limit=30.0)
    assert {o["state"] for o in payload["outcomes"].values()} == {"completed"} and len(
        payload["outcomes"]
    ) == 3
    assert per_cycle[:3] == [1, 1, 1]  # one status request per cycle for the three servers' job
    assert max(per_cycle) == 1


async def test_tolerates_500_while_polling(cloud, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json(retry_attempts=1))
    job = cloud.execute(["va1demoweb01"])
    cloud.fault(kind="error", route=JOB_STATUS, status=500, count=3)
    cloud.fault(kind="error", route=SUMMARY, status=500, count=2)
    payload = await first_event(single(job))
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"
    assert cloud.sim.counters["requests"][JOB_STATUS]["500"] == 3
    assert cloud.sim.counters["requests"][SUMMARY]["500"] == 2


async def test_unknown_job_id_falls_back_to_the_execution(cloud):
    cloud.execute(["va1demoweb01"])
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", "va1-404")], alias="DEMO", **FAST)
    )
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["job_status"] == "http_404"


async def test_a_lost_answer_is_watched_until_the_deadline_then_ends_without_execution(cloud):
    """I1: no early 'not found' the worker could take as leave to send the package again."""
    started = datetime.now(UTC)
    item = watch("va1demoweb01", None, timeout=0.4, known=[])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert (datetime.now(UTC) - started).total_seconds() >= 0.4
    assert out["state"] == "no_execution"
    assert "answer to the Execute Package request was lost" in out["reason"]
    assert "not sent again" in out["reason"]
    assert cloud.sent(containing="/patch")  # watched through the summary


async def test_a_lost_answer_adopts_an_execution_that_starts_late(cloud):
    """The platform may start a batch's executions long after the request: still adopted."""
    cloud.fault(kind="queue_delay", seconds=50, count=1)  # 0.5 s of wall time
    cloud.execute(["va1demoweb01"])
    item = watch("va1demoweb01", None, timeout=5.0, known=[])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"
    assert cloud.sim.counters["faults_injected"] == {"1": 1}  # the execution did start late


async def test_jobless_server_adopts_an_execution_it_finds(cloud):
    cloud.execute(["va1demoweb01"])
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", None, known=[])], alias="DEMO", **FAST)
    )
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"


async def test_an_identified_execution_is_followed_even_if_a_newer_one_appears(cloud):
    (ours,) = cloud.run_to_completion(["va1demoweb01"]).values()
    (newer,) = cloud.run_to_completion(["va1demoweb01"]).values()
    item = watch("va1demoweb01", None, known=[]) | {"execution_id": ours}
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    assert newer != ours
    assert payload["outcomes"]["va1demoweb01"]["execution"]["execution_id"] == ours


async def test_event_payload_is_json_serialisable(start_cloud):
    import json

    cloud = start_cloud({"va1demoweb01": {"os": WINDOWS, "patches": []}})
    payload = await first_event(single(cloud.execute(["va1demoweb01"])))
    assert payload["outcomes"]["va1demoweb01"]["state"] == "failed"
    assert json.loads(json.dumps(payload)) == payload


def test_poll_schedule_depends_only_on_the_servers_age():
    """A trigger re-created on every resume continues the schedule instead of restarting it."""
    from patchflow.triggers.patching import next_checkpoint

    points, age = [], 0.0
    while age < 120:
        age = next_checkpoint(age, 1.0, 1.5, 10.0)
        points.append(age)
    assert points[:4] == [1.0, 2.0, 3.0, 4.5]
    gaps = [b - a for a, b in itertools.pairwise(points)]
    assert all(1.0 <= g <= 10.0 for g in gaps) and gaps == sorted(gaps)
    assert len(points) <= 18  # about 2 minutes of patching: log-many fast polls, then one per cap
    # a new trigger for a server already 50 s old polls at the next checkpoint, not at once
    assert next_checkpoint(50.0, 1.0, 1.5, 10.0) in points and next_checkpoint(50.0, 1.0, 1.5, 10.0) > 50.0


async def test_the_execution_is_not_polled_during_the_quiet_period(cloud):
    """With a learnt quiet period the summary is first read after it: one read, not one per checkpoint."""
    requested = datetime.now(UTC).replace(microsecond=0)  # request times have whole seconds
    job = cloud.execute(["va1demoweb01"])  # completes in about 0.2 s
    item = watch("va1demoweb01", job, requested=requested) | {"quiet_seconds": 1.5}
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"
    assert (datetime.now(UTC) - requested).total_seconds() >= 1.5
    assert len(cloud.sent(containing="/patch")) == 1


def test_past_the_quiet_period_polls_densely_then_backs_off():
    from patchflow.triggers.patching import _Watch

    trigger = PatchCompletionTrigger(
        servers=[watch("va1demoweb01", "va1-1")], alias="DEMO", poll_interval=1.0, max_poll_interval=10.0
    )
    now = datetime.now(UTC)

    def gap(age: float, quiet: float) -> float:
        requested, deadline = now - timedelta(seconds=age), now + timedelta(hours=1)
        w = _Watch("va1demoweb01", "va1-1", requested, deadline, job_done=True, quiet_seconds=quiet)
        w.last_poll = now  # just read: the next read follows the schedule from here
        trigger._schedule(w)
        return (w.next_poll - now).total_seconds()

    assert gap(23.0, 0.0) == pytest.approx(9.8, abs=0.05)  # plain schedule: next checkpoint 32.8 s
    assert gap(10.0, 18.0) == pytest.approx(8.0, abs=0.05)  # before the quiet period: wait for it
    assert gap(23.0, 18.0) == pytest.approx(4.3, abs=0.05)  # just past it: dense (1.8 + 0.5 x 5)
    assert 4.3 < gap(38.0, 18.0) <= 10.0  # later: backing off again, never beyond the cap


def test_the_event_log_line_names_the_finished_servers_and_their_outcome():
    from patchflow.triggers.patching import _finished

    outcomes = {f"va1s{i:02}": {"state": "completed"} for i in range(12)} | {"uc1a": {"state": "job_failed"}}
    line = _finished(outcomes)
    assert line.startswith("uc1a: job_failed, va1s00: completed, ") and line.endswith(", … +3")


async def test_past_a_learnt_quiet_period_the_summary_alone_tells_and_the_job_is_not_read(cloud):
    """A server refilled on its own: its execution is listed when first read, so its queue job
    (which may succeed long before the end, I4) costs no request; completion still comes from the
    execution."""
    requested = datetime.now(UTC).replace(microsecond=0)
    job = cloud.execute(["va1demoweb01"])
    item = watch("va1demoweb01", job, requested=requested) | {"quiet_seconds": 1.5}
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["execution"]["status"] == "completed"
    assert cloud.sent(containing=f"/status/{job}") == []


async def test_past_a_learnt_quiet_period_a_failed_job_still_fails_the_server(start_cloud):
    """Summary first, but no execution listed: the job is read in the same cycle and its failure counts."""
    cloud = start_cloud({"va1demoweb01": {"os": WINDOWS, "patches": []}})
    requested = datetime.now(UTC).replace(microsecond=0)
    job = cloud.execute(["va1demoweb01"])
    item = watch("va1demoweb01", job, requested=requested) | {"quiet_seconds": 1.5}
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "failed" and out["reason"] == f"queue job {job} ended failed"
    assert len(cloud.sent(containing=f"/status/{job}")) == 1


def test_a_new_trigger_keeps_the_cadence_of_the_last_read_instead_of_skipping_a_due_one():
    """The rollout re-creates the trigger after every refill; a read that fell due meanwhile goes at
    once (the completion is not seen a whole cycle later), and one not yet due waits for its time."""
    from patchflow.triggers.patching import _Watch

    trigger = PatchCompletionTrigger(
        servers=[watch("va1demoweb01", "va1-1")], alias="DEMO", poll_interval=1.0, max_poll_interval=10.0
    )
    now = datetime.now(UTC)

    def next_read(age: float, last_read_ago: float | None) -> float:
        requested, deadline = now - timedelta(seconds=age), now + timedelta(hours=1)
        w = _Watch("va1demoweb01", "va1-1", requested, deadline, job_done=True, quiet_seconds=18.0)
        if last_read_ago is not None:
            w.last_poll = now - timedelta(seconds=last_read_ago)
        trigger._schedule(w)
        return (w.next_poll - now).total_seconds()

    assert next_read(60.0, None) < 0  # never read, 60 s old: due since its first checkpoint, read at once
    assert next_read(60.0, 25.0) < 0  # read 25 s ago: the read due since (at most 10 s later) goes at once
    grid = next_read(60.0, 0.0)  # read just now: the next checkpoint by age
    assert 0 < grid <= 10.0
    assert next_read(60.0, 2.0) == pytest.approx(grid, abs=0.05)  # read 2 s ago: nothing was missed


async def test_the_event_says_when_each_pending_servers_execution_was_last_read(start_cloud):
    cloud = start_cloud({"va1demoweb01": {}, "va1demoweb02": {"os": WINDOWS, "patches": []}})
    requested = datetime.now(UTC).replace(microsecond=0)
    job = cloud.execute(["va1demoweb01"])
    items = [
        watch("va1demoweb01", job, requested=requested),
        watch("va1demoweb02", None, requested=requested, timeout=60.0) | {"known_executions": []},
    ]
    payload = await first_event(PatchCompletionTrigger(servers=items, alias="DEMO", **FAST))
    assert "va1demoweb01" in payload["outcomes"] and payload["pending"] == ["va1demoweb02"]
    assert set(payload["polled"]) == {"va1demoweb02"}
    assert datetime.fromisoformat(payload["polled"]["va1demoweb02"].replace("Z", "+00:00")) >= requested
