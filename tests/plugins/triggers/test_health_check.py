"""The post-patch health check in PatchCompletionTrigger, against the in-process simulator:
server details (active, started), an HTTP probe from a custom field, a TCP probe, retries,
and no CLC credential on the probe (I6)."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

from include.patching.health import HealthSpec
from include.timefmt import utc_text
from patchflow.triggers.patching import PatchCompletionTrigger
from tests.plugins.cloud import fleet_with
from tests.plugins.triggers.test_patching import FAST, first_event

#: generous: the fast suite runs on loaded 2-core machines (seen timing out at 10 s under load 8)
LIMIT = 60.0
HC = {"custom_fields": {"hc": "{simulator}/health/va1demoweb01"}}


def trigger(job: str, probe: str | None, *, retries: int = 2) -> PatchCompletionTrigger:
    spec = HealthSpec(probe=probe, retries=retries, timeout=2.0, interval=0.05)
    item = {
        "server_id": "va1demoweb01",
        "job_id": job,
        "requested_at": utc_text(datetime.now(UTC)),
        "deadline": (datetime.now(UTC) + timedelta(seconds=LIMIT)).isoformat(),
        "known_executions": [],
        "health": spec.as_dict(),
    }
    return PatchCompletionTrigger(servers=[item], alias="DEMO", **FAST)


async def test_a_healthy_server_is_reported_completed_with_its_verdict(start_cloud):
    cloud = start_cloud(fleet_with(va1demoweb01=HC))
    job = cloud.execute(["va1demoweb01"])
    out = (await first_event(trigger(job, "{custom[hc]}"), LIMIT))["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed"
    assert out["health"] == {"healthy": True, "detail": "healthy after 1 check(s)"}
    probes = [r for r in cloud.requests if r.path.startswith("/health/")]
    assert probes and all("authorization" not in {k.lower() for k in r.headers} for r in probes)


async def test_a_server_unhealthy_after_its_patch_is_reported_with_the_reason_after_every_try(start_cloud):
    cloud = start_cloud(fleet_with(va1demoweb01={**HC, "unhealthy_after_patch": True}))
    job = cloud.execute(["va1demoweb01"])
    out = (await first_event(trigger(job, "{custom[hc]}", retries=3), LIMIT))["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["health"]["healthy"] is False
    assert out["health"]["detail"].startswith("not healthy after 3 check(s): ")
    assert "answered HTTP 503" in out["health"]["detail"]
    assert len([r for r in cloud.requests if r.path.startswith("/health/")]) == 3


async def test_a_tcp_probe_passes_on_an_open_port_and_fails_on_a_closed_one(start_cloud):
    cloud = start_cloud()
    port = int(cloud.base.rsplit(":", 1)[1])
    job = cloud.execute(["va1demoweb01"])
    out = (await first_event(trigger(job, f"tcp://127.0.0.1:{port}"), LIMIT))["outcomes"]["va1demoweb01"]
    assert out["health"]["healthy"] is True
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    cloud.settle()
    job = cloud.execute(["va1demoweb01"])
    out = (await first_event(trigger(job, f"tcp://127.0.0.1:{closed}"), LIMIT))["outcomes"]["va1demoweb01"]
    assert out["health"]["healthy"] is False and "unreachable" in out["health"]["detail"]


async def test_without_a_probe_only_the_details_count_and_a_missing_field_is_unhealthy(start_cloud):
    cloud = start_cloud()
    job = cloud.execute(["va1demoweb01"])
    out = (await first_event(trigger(job, None), LIMIT))["outcomes"]["va1demoweb01"]
    assert out["health"]["healthy"] is True
    cloud.settle()
    job = cloud.execute(["va1demoweb01"])
    out = (await first_event(trigger(job, "{custom[nosuch]}", retries=1), LIMIT))["outcomes"]["va1demoweb01"]
    assert out["health"]["healthy"] is False
    assert "has no value for {custom[nosuch]}" in out["health"]["detail"]


async def test_the_worker_loop_checks_health_with_the_workers_own_reads(start_cloud):
    """``deferrable=False`` (the default): the same wait runs on ``WorkerReads`` around the worker's
    hook, which must offer every read the check makes (server details too, not only summaries)."""
    from patchflow.hooks.clc import ClcHook
    from patchflow.waiting import WorkerReads

    cloud = start_cloud(fleet_with(va1demoweb01={**HC, "unhealthy_after_patch": True}))
    job = cloud.execute(["va1demoweb01"])
    payload = await trigger(job, "{custom[hc]}", retries=1).wait(WorkerReads(ClcHook()))
    out = payload["outcomes"]["va1demoweb01"]
    assert out["state"] == "completed" and out["health"]["healthy"] is False
    assert "answered HTTP 503" in out["health"]["detail"]
