"""PatchCompletionTrigger against the live fake API (real aiohttp, millisecond polling)."""

from __future__ import annotations

import asyncio
import importlib
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from airflow.triggers.base import TriggerEvent

from include.timefmt import utc_text
from patchflow.triggers.patching import PatchCompletionTrigger
from tests.plugins.fake_clc import PASSWORD

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


async def test_completes_from_the_execution_after_several_initiations(fake_clc):
    job = fake_clc._new_job(["notStarted", "executing", "succeeded"])
    fake_clc.summary_polls_to_complete = 3
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending", initiations=3)
    payload = await first_event(single(job))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["job_status"] == "succeeded"
    assert out["execution"]["attempts"] == 3 and "reboots" not in out["execution"]  # never inferred (I8)
    assert payload["pending"] == []
    # only GETs (and the login POST) were sent: no side effects
    assert {m for m, p, _ in fake_clc.requests if "authentication" not in p} == {"GET"}


async def test_queue_job_succeeded_is_not_completion(fake_clc):
    """I4: the job says succeeded long before the execution completes."""
    job = fake_clc._new_job(["succeeded"])
    fake_clc.summary_polls_to_complete = 4
    ex = fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    await first_event(PatchCompletionTrigger(servers=[watch("va1demoweb01", job)], alias="DEMO", **FAST))
    summary_gets = [p for m, p, _ in fake_clc.requests if p.endswith("/patch")]
    assert len(summary_gets) == 4 and ex["status"] == "completed"


@pytest.mark.parametrize("final", ["failed", "unknown"])
async def test_failed_or_unknown_job_fails_the_server(fake_clc, final):
    job = fake_clc._new_job(["executing", final])
    payload = await first_event(single(job))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "failed" and out["reason"] == f"queue job {job} ended {final}"


async def test_an_older_completed_execution_never_counts(fake_clc):
    now = datetime.now(UTC)
    fake_clc.add_execution("va1demoweb01", start=now - timedelta(days=30), execution_id="VA1-OLD")
    job = fake_clc._new_job(["succeeded"])
    fake_clc.summary_polls_to_complete = 3
    fake_clc.add_execution("va1demoweb01", start=now, status="pending", execution_id="VA1-NEW")
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", job, requested=now)], alias="DEMO", **FAST)
    )
    assert payload["outcomes"]["va1demoweb01"]["execution"]["execution_id"] == "VA1-NEW"


@pytest.mark.parametrize("api_minutes", [-10, 10, -60 * 24 * 365])
async def test_an_api_clock_behind_or_ahead_of_ours_changes_nothing(fake_clc, api_minutes):
    """I8: the new execution is the one not known before the request, whatever its start time."""
    api_now = datetime.now(UTC) + timedelta(minutes=api_minutes)
    old = fake_clc.add_execution("va1demoweb01", start=api_now - timedelta(days=1), execution_id="VA1-OLD")
    fake_clc.add_execution("va1demoweb01", start=api_now, status="pending", execution_id="VA1-NEW")
    job = fake_clc._new_job(["succeeded"])
    item = watch("va1demoweb01", job, timeout=5.0, known=[old["execution_id"]])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["execution"]["execution_id"] == "VA1-NEW"


async def test_a_known_execution_dated_after_the_request_is_never_taken_for_ours(fake_clc):
    """An API clock ahead of ours dates an execution from before the request after it."""
    future = fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC) + timedelta(hours=2))
    item = watch("va1demoweb01", None, timeout=0.3, known=[future["execution_id"]])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "no_execution" and out["execution_id"] is None


async def test_per_server_deadline_ends_in_timed_out(fake_clc):
    job = fake_clc._new_job(["executing"])  # never finishes
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", job, timeout=0.2)], alias="DEMO", **FAST)
    )
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "timed_out" and "deadline" in out["reason"]


async def test_batching_window_fires_with_partial_results(fake_clc):
    done_job = fake_clc._new_job(["succeeded"])
    slow_job = fake_clc._new_job(["executing"])
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    trigger = PatchCompletionTrigger(
        servers=[watch("va1demoweb01", done_job), watch("va1demoweb02", slow_job)],
        alias="DEMO",
        **{**FAST, "batch_window": 0.2},
    )
    started = asyncio.get_running_loop().time()
    payload = await first_event(trigger)
    assert set(payload["outcomes"]) == {"va1demoweb01"} and payload["pending"] == ["va1demoweb02"]
    assert asyncio.get_running_loop().time() - started >= 0.2


async def test_window_collects_every_server_that_finishes_in_it(fake_clc):
    job = fake_clc._new_job(["succeeded"])
    fake_clc.summary_polls_to_complete = 1
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    fake_clc.summary_polls_to_complete = 4
    fake_clc.add_execution("va1demoweb02", start=datetime.now(UTC), status="pending")
    trigger = PatchCompletionTrigger(
        servers=[watch("va1demoweb01", job), watch("va1demoweb02", job)],
        alias="DEMO",
        **{**FAST, "batch_window": 5.0},
    )
    payload = await first_event(trigger)
    assert set(payload["outcomes"]) == {"va1demoweb01", "va1demoweb02"} and payload["pending"] == []


async def test_one_status_request_per_distinct_job_per_cycle(fake_clc):
    job = fake_clc._new_job(["executing", "executing", "succeeded"])
    for sid in ("va1demoweb01", "va1demoweb02", "va1demodb01"):
        fake_clc.summary_polls_to_complete = 1
        fake_clc.add_execution(sid, start=datetime.now(UTC), status="pending")
    servers = [watch(s, job) for s in ("va1demoweb01", "va1demoweb02", "va1demodb01")]
    payload = await first_event(PatchCompletionTrigger(servers=servers, alias="DEMO", **FAST))
    assert len(payload["outcomes"]) == 3
    assert len([p for m, p, _ in fake_clc.requests if f"/status/{job}" in p]) == 3


async def test_tolerates_500_while_polling(fake_clc, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", fake_clc.conn_json(retry_attempts=1))
    job = fake_clc._new_job(["succeeded"])
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    fake_clc.fail_next("GET", r"/status/", 500, body={"message": "An error has occurred."}, times=3)
    fake_clc.fail_next("GET", r"/patch$", 500, times=2)
    payload = await first_event(single(job))
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"


async def test_unknown_job_id_falls_back_to_the_execution(fake_clc):
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", "va1-404")], alias="DEMO", **FAST)
    )
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["job_status"] == "http_404"


async def test_a_lost_answer_is_watched_until_the_deadline_then_ends_without_execution(fake_clc):
    """I1: no early 'not found' the worker could take as leave to send the package again."""
    started = datetime.now(UTC)
    item = watch("va1demoweb01", None, timeout=0.4, known=[])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    out = payload["outcomes"]["va1demoweb01"]
    assert (datetime.now(UTC) - started).total_seconds() >= 0.4
    assert out["state"] == "no_execution"
    assert "answer to the Execute Package request was lost" in out["reason"]
    assert "not sent again" in out["reason"]


async def test_a_lost_answer_adopts_an_execution_that_starts_late(fake_clc):
    """The platform may start a batch's executions long after the request: still adopted."""
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending", visible_after=0.5)
    item = watch("va1demoweb01", None, timeout=5.0, known=[])
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"


async def test_jobless_server_adopts_an_execution_it_finds(fake_clc):
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    payload = await first_event(
        PatchCompletionTrigger(servers=[watch("va1demoweb01", None, known=[])], alias="DEMO", **FAST)
    )
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"


async def test_an_identified_execution_is_followed_even_if_a_newer_one_appears(fake_clc):
    ours = fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC) + timedelta(minutes=5))
    item = watch("va1demoweb01", None, known=[]) | {"execution_id": ours["execution_id"]}
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    assert payload["outcomes"]["va1demoweb01"]["execution"]["execution_id"] == ours["execution_id"]


async def test_event_payload_is_json_serialisable(fake_clc):
    import json

    job = fake_clc._new_job(["failed"])
    payload = await first_event(single(job))
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


async def test_the_execution_is_not_polled_during_the_quiet_period(fake_clc):
    """With a learnt quiet period the summary is first read after it: one read, not one per checkpoint."""
    job = fake_clc._new_job(["succeeded"])
    fake_clc.summary_polls_to_complete = 1
    fake_clc.add_execution("va1demoweb01", start=datetime.now(UTC), status="pending")
    requested = datetime.now(UTC).replace(microsecond=0)  # request times have whole seconds
    item = watch("va1demoweb01", job, requested=requested) | {"quiet_seconds": 1.5}
    payload = await first_event(PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST))
    assert payload["outcomes"]["va1demoweb01"]["state"] == "completed"
    assert (datetime.now(UTC) - requested).total_seconds() >= 1.5
    assert len([p for m, p, _ in fake_clc.requests if p.endswith("/patch")]) == 1


def test_past_the_quiet_period_polls_densely_then_backs_off():
    from patchflow.triggers.patching import _Watch

    trigger = PatchCompletionTrigger(
        servers=[watch("va1demoweb01", "va1-1")], alias="DEMO", poll_interval=1.0, max_poll_interval=10.0
    )
    now = datetime.now(UTC)

    def gap(age: float, quiet: float) -> float:
        requested, deadline = now - timedelta(seconds=age), now + timedelta(hours=1)
        w = _Watch("va1demoweb01", "va1-1", requested, deadline, job_done=True, quiet_seconds=quiet)
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
