"""PatchRolloutOperator driven turn by turn against the real simulator in-process."""

from __future__ import annotations

import asyncio
import json
import re

import pytest
from airflow.sdk.bases.operator import TriggerFailureReason
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

from patchflow.triggers.patching import PatchCompletionTrigger
from tests.plugins.cloud import (
    EXECUTE,
    PASSWORD,
    SECURITY_UPDATE,
    WINDOWS,
    Cloud,
    fleet_with,
)
from tests.plugins.operators.conftest import Driver, first_event, row, write_plan

TARGETS = {"va1demoweb01", "va1demoweb02", "va1demodb01", "de1demoapp01"}


def results(out: dict) -> dict:
    with open(out["results_path"]) as fh:
        return json.load(fh)


def ledger(plan_path) -> dict:
    return json.loads((plan_path.parent / "rollout_linux_yum.ledger.json").read_text())


def executed_once_each(cloud: Cloud) -> bool:
    return {sid: cloud.executions_started(sid) for sid in TARGETS} == dict.fromkeys(TARGETS, 1)


def none_in_maintenance(cloud: Cloud) -> bool:
    """After every queued job has landed, no target is in maintenance (I2)."""
    cloud.settle()
    return not any(cloud.in_maintenance(s) for s in TARGETS)


def failing(*packages: str) -> list[dict]:
    return [{"package": p, "duration": 2, "failure": "fail"} for p in packages]


KB1, KB2 = "tzdata-2016b-1.el6.noarch", "bash-4.1.2-33.el6_7.1.x86_64"


def test_execute_posts_from_the_worker_and_defers_to_the_trigger(cloud, plan4):
    drv = Driver(plan_path=str(plan4), max_concurrency=2)
    with pytest.raises(TaskDeferred) as deferred:
        drv.turn()
    trigger = deferred.value.trigger
    assert isinstance(trigger, PatchCompletionTrigger) and deferred.value.method_name == "resume"
    assert [s["server_id"] for s in trigger.servers] == ["va1demoweb01", "va1demoweb02"]
    assert deferred.value.timeout is not None and deferred.value.timeout.total_seconds() > 20
    # POSTed before deferring, in the worker
    assert sum(cloud.executions_started(s) for s in TARGETS) == 2
    assert cloud.in_maintenance("va1demoweb01")
    entries = ledger(plan4)["servers"]
    assert entries["va1demoweb01"]["phase"] == "submitted"
    assert entries["va1demoweb01"]["maintenance"] == "ours"
    # the next servers are put into maintenance ahead of their start, but nothing is sent to them
    assert entries["va1demodb01"]["phase"] == "queued" and entries["va1demodb01"]["maintenance"] == "ours"
    assert cloud.executions_started("va1demodb01") == 0
    cloud.settle()
    assert cloud.in_maintenance("va1demodb01") and cloud.executions_started("va1demodb01") == 0


def test_sliding_window_patches_everything_exactly_once(start_cloud, plan4):
    cloud = start_cloud(fleet_with(va1demodb01={"patches": []}))  # nothing to install
    drv = Driver(plan_path=str(plan4), max_concurrency="50%")
    out = drv.run()
    assert set(out) == {"results_path", "counts"}  # XCom: a reference and counts only
    assert out["counts"] == {"patched": 3, "patched_no_updates": 1, "total": 4}
    assert executed_once_each(cloud)
    assert all(len(r.body["servers"]) <= 2 for r in cloud.sent(containing="executePackage"))
    assert all(len(d.trigger.servers) <= 2 for d in drv.deferrals)
    assert none_in_maintenance(cloud)  # I2
    rows = {r["server_id"]: r for r in results(out)["servers"]}
    assert set(rows) == TARGETS  # skipped rows and other packages are not this task's business
    web = rows["va1demoweb01"]
    assert web["state"] == "patched" and web["execution_id"] and web["queue_job_id"]
    assert web["patches"] == [
        {
            "name": SECURITY_UPDATE,
            "kb": None,
            "result_code": 2,
            "status": "completed",
            "start_time": web["patches"][0]["start_time"],
            "end_time": web["patches"][0]["end_time"],
            "attempts": 1,
        }
    ]
    assert web["patches_installed"] == 1 and web["started_at"] and web["ended_at"]
    # two initiations (install, then the final scan); reboots are not reported by the service (I8)
    assert web["attempts"] == 2 and web["reboots"] is None
    assert rows["va1demodb01"]["state"] == "patched_no_updates"
    touched = " ".join(f"{r.path} {json.dumps(r.body)}" for r in cloud.requests)
    assert "va1skipped01" not in touched and "va1win01" not in touched  # I5


def test_freed_slots_are_refilled_before_the_whole_wave_finishes(start_cloud, plan4):
    # web02's execution takes much longer than web01's
    start_cloud(fleet_with(va1demoweb02={"patches": [{"package": SECURITY_UPDATE, "duration": 3000}]}))
    drv = Driver(plan_path=str(plan4), max_concurrency=2)
    with pytest.raises(TaskDeferred) as first:
        drv.turn()
    event = asyncio.run(first_event(first.value.trigger)).payload
    assert set(event["outcomes"]) == {"va1demoweb01"}
    with pytest.raises(TaskDeferred) as second:
        drv.turn("resume", {"event": event})
    watched = [s["server_id"] for s in second.value.trigger.servers]
    assert watched == ["va1demoweb02", "va1demodb01"]  # web02 still in flight, db01 took the free slot


@pytest.mark.parametrize(
    ("param", "value", "message"),
    [
        ("max_concurrency", "0", "max_concurrency must be at least 1"),
        ("max_concurrency", "150%", "max_concurrency percentage must be between 0% and 100%"),
        ("max_concurrency", "abc", "max_concurrency must be a count or a percentage"),
        ("max_errors", "-1", "max_errors must be a count or a percentage"),
        ("max_errors", "101%", "max_errors percentage"),
    ],
)
def test_invalid_limits_fail_clearly_before_anything_is_touched(cloud, plan4, param, value, message):
    drv = Driver(plan_path=str(plan4), **{param: value})
    with pytest.raises(AirflowFailException, match=message):
        drv.turn()
    assert cloud.sent(method="POST", containing="/v2/operations/") == []


def test_unknown_package_key_is_a_clear_error(cloud, plan4):
    with pytest.raises(AirflowFailException, match="package_key 'nope' is not one of"):
        Driver(plan_path=str(plan4), package_key="nope").turn()
    assert cloud.sent(method="POST", containing="/v2/operations/") == []


def test_error_budget_stops_new_starts(start_cloud, plan4):
    web01 = {"patches": [*failing(KB1), {"package": KB2, "duration": 2}]}
    cloud = start_cloud(fleet_with(va1demoweb01=web01))
    with pytest.raises(AirflowFailException, match=r"error budget exceeded: 1 .* > max_errors 0"):
        Driver(plan_path=str(plan4), max_concurrency=1, max_errors=0).run()
    out = {"results_path": str(plan4.parent / "results_linux_yum.json")}  # written before failing
    assert results(out)["counts"] == {"failed": 1, "not_attempted": 3, "total": 4}
    rows = {r["server_id"]: r for r in results(out)["servers"]}
    assert rows["va1demoweb01"]["reason"] == "1 of 2 patches failed"
    assert rows["va1demodb01"]["reason"] == "error budget exhausted: 1 errors > max_errors 0"
    assert {s for s in TARGETS if cloud.executions_started(s)} == {"va1demoweb01"}
    # the server put into maintenance ahead of its start is released although it never started
    staged = [
        e
        for e in ledger(plan4)["servers"].values()
        if e["state"] == "not_attempted" and e["maintenance"] == "ours"
    ]
    assert staged and all(e["maintenance_released"] for e in staged)
    assert none_in_maintenance(cloud)


def test_job_failure_and_timeouts_count_as_errors(start_cloud, plan4):
    # the Linux package on Windows servers: the platform fails every queue job
    start_cloud({sid: {**spec, "os": WINDOWS, "patches": []} for sid, spec in fleet_with().items()})
    with pytest.raises(AirflowFailException, match="error budget exceeded: 4 "):
        Driver(plan_path=str(plan4), max_concurrency=4, max_errors="50%").run()
    out = {"results_path": str(plan4.parent / "results_linux_yum.json")}
    assert results(out)["counts"] == {"failed": 4, "total": 4}
    assert results(out)["budget_exhausted"] is True
    assert all(
        r["reason"].startswith("queue job ") and r["reason"].endswith(" ended failed")
        for r in results(out)["servers"]
    )


def test_errors_within_the_budget_do_not_fail_the_task(start_cloud, plan4):
    start_cloud(fleet_with(va1demoweb01={"patches": failing(KB1)}))
    out = Driver(plan_path=str(plan4), max_concurrency=4, max_errors=1).run()
    assert out["counts"]["failed"] == 1 and out["counts"]["total"] == 4


def test_per_server_timeout_ends_timed_out_and_releases_maintenance(cloud, plan4):
    for sid in TARGETS:
        cloud.fault(kind="stuck_execution", server=sid)  # executions that never complete
    out = Driver(plan_path=str(plan4), max_concurrency=4, max_errors=10, server_timeout=0.3).run()
    assert out["counts"] == {"timed_out": 4, "total": 4}
    assert none_in_maintenance(cloud)


def test_crash_after_post_is_reconciled_without_a_second_execute(cloud, plan4):
    """Worker died after the POST: the ledger says 'submitting', no job id was recorded."""
    drv = Driver(plan_path=str(plan4), max_concurrency=4)
    with pytest.raises(TaskDeferred):
        drv.turn()
    path = plan4.parent / "rollout_linux_yum.ledger.json"
    data = json.loads(path.read_text())
    for entry in data["servers"].values():
        entry.update(phase="submitting", job_id=None)
        entry["submissions"][-1].update(result="submitting", job_id=None)
    path.write_text(json.dumps(data))
    out = drv.run()  # the task retry: execute() from scratch
    assert out["counts"] == {"patched": 4, "total": 4}
    assert executed_once_each(cloud)  # I1
    assert len(cloud.sent(containing="executePackage")) == 1


def test_lost_answer_to_the_post_is_adopted_not_replayed(cloud, plan4):
    cloud.fault(kind="drop", route=EXECUTE, count=1)  # processed, then the connection is cut
    out = Driver(plan_path=str(plan4), max_concurrency=4).run()
    assert out["counts"] == {"patched": 4, "total": 4}
    assert executed_once_each(cloud)
    assert all(r["submissions"] == 1 for r in results(out)["servers"])


def lose_the_request(cloud: Cloud) -> None:
    """A proxy's error page instead of the API's answer; the request never reached the API."""
    cloud.fault(kind="garbage", route=EXECUTE, status=502, body="html", processed=False, count=1)


def test_a_lost_answer_is_never_sent_again_even_when_the_request_was_not_processed(cloud, plan4):
    """I1 by construction: the hook cannot tell a lost answer from a lost request, so neither is
    re-sent; with no execution by the deadline the server fails and says why."""
    lose_the_request(cloud)
    out = Driver(plan_path=str(plan4), max_concurrency=4, max_errors=4, server_timeout=0.5).run()
    assert out["counts"] == {"failed": 4, "total": 4}
    assert len(cloud.sent(method="POST", containing="executePackage")) == 1
    assert not any(cloud.executions_started(s) for s in TARGETS)
    rows = results(out)["servers"]
    assert all(r["submissions"] == 1 and r["execution_id"] is None for r in rows)
    assert all("answer to the Execute Package request was lost" in r["reason"] for r in rows)
    assert none_in_maintenance(cloud)  # released once they ended (I2)


def test_a_lost_answer_with_late_executions_is_adopted_not_replayed(cloud, plan4):
    """I1: executions that start long after the request (a busy queue) are still ours."""
    cloud.fault(kind="queue_delay", seconds=50, count=2)  # the maintenance job, then the package's
    cloud.fault(kind="drop", route=EXECUTE, count=1)
    out = Driver(plan_path=str(plan4), max_concurrency=4).run()
    assert out["counts"] == {"patched": 4, "total": 4}
    assert executed_once_each(cloud)
    assert len(cloud.sent(containing="executePackage")) == 1


def test_a_lost_request_never_adopts_an_execution_from_before_it(start_cloud, plan4):
    """I4 (item 5): the API clock runs 2 h ahead, so an execution from before the request is dated
    after it; the request itself never reached the service. The audit must not name that one."""
    cloud = start_cloud(api_clock_offset=2 * 3600.0)
    (old,) = cloud.run_to_completion(["va1demoweb01"]).values()
    lose_the_request(cloud)
    out = Driver(plan_path=str(plan4), max_concurrency=4, max_errors=4, server_timeout=0.5).run()
    row_ = {r["server_id"]: r for r in results(out)["servers"]}["va1demoweb01"]
    assert row_["execution_id"] != old
    assert row_["state"] == "failed" and "lost" in row_["reason"]
    assert cloud.executions("va1demoweb01") == [old]  # the one POST was never processed


@pytest.mark.parametrize("minutes", [-10, 10])
def test_an_api_clock_ten_minutes_away_from_ours_still_completes(start_cloud, plan4, minutes):
    """I8 (item 6): a time floor hid every execution of an API clock more than 120 s behind."""
    cloud = start_cloud(api_clock_offset=minutes * 60.0)
    out = Driver(plan_path=str(plan4), max_concurrency=4, server_timeout=5).run()
    assert out["counts"] == {"patched": 4, "total": 4}
    assert executed_once_each(cloud)


def test_a_patch_that_failed_once_then_installed_is_judged_by_its_last_attempt(start_cloud, plan4):
    """I8 (item 8): the detail lists a patch once per initiation that tried it (§12 #36)."""
    openssl, sudo, bash = SECURITY_UPDATE, "sudo-1.8.6p3-20.el6_7.x86_64", "bash-4.1.2-33.el6_7.1.x86_64"
    web01 = [{"package": openssl, "duration": 2, "failure": "fail_once"}, {"package": sudo, "duration": 2}]
    web02 = [
        {"package": bash, "duration": 2},
        {"package": bash, "duration": 2, "cycle": 2, "failure": "fail"},
    ]
    start_cloud(fleet_with(va1demoweb01={"patches": web01}, va1demoweb02={"patches": web02}))
    out = Driver(plan_path=str(plan4), max_concurrency=4, max_errors=4).run()
    rows = {r["server_id"]: r for r in results(out)["servers"]}
    assert rows["va1demoweb01"]["state"] == "patched" and rows["va1demoweb01"]["patches_failed"] == 0
    assert [(p["name"], p["attempts"]) for p in rows["va1demoweb01"]["patches"]] == [(openssl, 2), (sudo, 1)]
    assert rows["va1demoweb02"]["state"] == "failed" and rows["va1demoweb02"]["patches_failed"] == 1
    assert [p["attempts"] for p in rows["va1demoweb02"]["patches"]] == [2]


def test_pending_execution_on_a_server_is_never_doubled(cloud, plan4):
    cloud.fault(kind="stuck_execution", server="va1demodb01")
    cloud.execute(["va1demodb01"])  # someone else's run, still pending
    cloud.settle(60)
    out = Driver(plan_path=str(plan4), max_concurrency=4, max_errors=4).run()
    rows = {r["server_id"]: r for r in results(out)["servers"]}
    assert rows["va1demodb01"]["state"] == "not_attempted"  # nothing ran: not an error of the budget
    assert "already pending" in rows["va1demodb01"]["reason"]
    assert len(cloud.executions("va1demodb01")) == 1
    # Its history was not read before the request (the patching service's clock, seen on the
    # other servers' reads, dates ours); the API refused the package, and the history read then
    # names the execution that was in the way.
    assert cloud.sim.counters["duplicate_executions_rejected"] == {"va1demodb01": 1}
    assert "the API refused the package" in rows["va1demodb01"]["reason"]


def test_preexisting_maintenance_is_left_alone(start_cloud, tmp_path):
    # web01 in maintenance known from inventory; web02 put into maintenance after the inventory
    cloud = start_cloud(fleet_with(va1demoweb01={"maintenance": True}, va1demoweb02={"maintenance": True}))
    plan = write_plan(
        tmp_path, [row("va1demoweb01", in_maintenance=True), row("va1demoweb02"), row("va1demodb01")]
    )
    out = Driver(plan_path=str(plan), max_concurrency=3).run()
    assert out["counts"] == {"patched": 3, "total": 3}
    cloud.settle()
    assert cloud.in_maintenance("va1demoweb01")  # preexisting: left alone
    assert not cloud.in_maintenance("va1demodb01")
    entries = ledger(plan)["servers"]
    assert entries["va1demoweb01"]["maintenance"] == "preexisting"
    # Only the inventory, read before the run asked, proves "preexisting". An "already in
    # maintenance" answer after asking is indistinguishable from the retry of a request whose
    # answer was lost (issue 8, item 1), so the run owns that server and releases it.
    assert entries["va1demoweb02"]["maintenance"] == "ours"
    assert not cloud.in_maintenance("va1demoweb02")
    started = cloud.sent(containing="startMaintenance")
    assert len(started) == 1 and sorted(started[0].body) == ["va1demodb01", "va1demoweb02"]


def test_no_maintenance_mode_never_touches_maintenance(cloud, plan4):
    out = Driver(plan_path=str(plan4), max_concurrency=4, maintenance_mode=False).run()
    assert out["counts"]["patched"] == 4
    assert not cloud.sent(containing="Maintenance")


def test_deferral_timeout_backstop_times_out_in_flight_servers(cloud, plan4):
    drv = Driver(plan_path=str(plan4), max_concurrency=2)
    with pytest.raises(TaskDeferred):
        drv.turn()
    out = drv.turn("__fail__", {"error": TriggerFailureReason.TRIGGER_TIMEOUT})
    assert out["counts"] == {"timed_out": 2, "not_attempted": 2, "total": 4}
    assert none_in_maintenance(cloud)


def test_patch_debug_mode_is_passed_to_the_package(cloud, plan4):
    with pytest.raises(TaskDeferred):
        Driver(plan_path=str(plan4), max_concurrency=1, patch_debug_mode=True).turn()
    (request,) = cloud.sent(containing="executePackage")
    assert request.body["package"]["parameters"] == {"patch.debug.mode": "true"}


def test_duplicate_or_stale_events_are_ignored(cloud, plan4):
    drv = Driver(plan_path=str(plan4), max_concurrency=4)
    out = drv.run()
    before = results(out)
    stale = {"outcomes": {"va1demoweb01": {"state": "failed", "reason": "late duplicate"}}, "pending": []}
    again = drv.turn("resume", {"event": stale})
    assert results(again)["counts"] == before["counts"]


def test_an_execution_from_before_the_request_is_never_taken_for_the_new_one(start_cloud, plan4):
    """The API clock may run ahead of ours (the simulator's does): an execution that existed
    before the POST, even dated after it, is not this run's — completion must come from the new one."""
    cloud = start_cloud(api_clock_offset=2 * 3600.0)
    (old,) = cloud.run_to_completion(["va1demoweb01"]).values()
    drv = Driver(plan_path=str(plan4), max_concurrency=4)
    out = drv.run()
    entries = ledger(plan4)["servers"]
    assert old in entries["va1demoweb01"]["known_executions"]
    row_ = {r["server_id"]: r for r in results(out)["servers"]}["va1demoweb01"]
    assert row_["execution_id"] != old and row_["execution_id"] == cloud.executions("va1demoweb01")[-1]
    # a patch is never installed twice: the earlier run installed the updates and the new one finds
    # none, so the state also says which execution was read (the earlier one would read "patched")
    assert row_["state"] == "patched_no_updates"
    assert cloud.executions_started("va1demoweb01") == 2  # the earlier run and this one


def test_a_refused_login_fails_the_rollout_without_retries(cloud, plan4, monkeypatch):
    """A password changed mid-run: one refused login, no task retry (account lockout), nothing sent."""
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json().replace(PASSWORD, "wrong-password-2"))
    with pytest.raises(AirflowFailException, match="refused the login") as err:
        Driver(plan_path=str(plan4)).turn()
    assert "wrong-password-2" not in str(err.value)
    assert [r.path for r in cloud.sent(method="POST")] == ["/v2/authentication/login"]


def operator_log(text: str, level: str) -> list[str]:
    """The rollout operator's messages at ``level`` in what Airflow's structlog printed."""
    line = re.compile(rf"\[{level}\s*\] (.*?) \[airflow\.task\.operators\.patchflow\.operators\.rollout")
    return [m.group(1) for m in map(line.search, text.splitlines()) if m]


def test_each_failure_is_logged_at_warning_with_id_name_and_reason_as_it_happens(
    start_cloud, tmp_path, capsys
):
    start_cloud(fleet_with(va1demoweb01={"patches": [*failing(KB1), {"package": KB2, "duration": 2}]}))
    plan = write_plan(
        tmp_path,
        [
            {**row("va1demoweb01"), "name": "VA1DEMOWEB01", "description": "web front"},
            row("va1demoweb02"),
        ],
    )
    drv = Driver(plan_path=str(plan), max_concurrency=1, max_errors=1)
    with pytest.raises(TaskDeferred) as first:
        drv.turn()
    with pytest.raises(TaskDeferred):  # web01 ended; web02 now in flight
        drv.turn(first.value.method_name, {"event": asyncio.run(first_event(first.value.trigger)).payload})
    out = capsys.readouterr().out
    assert operator_log(out, "warning") == [
        "server va1demoweb01 (VA1DEMOWEB01, web front) failed: 1 of 2 patches failed"
    ]
    assert [m for m in operator_log(out, "info") if m.startswith("linux_yum: ")] == [
        "linux_yum: 0/2 done · 1 in flight · 0 failed · budget 0/1",
        "linux_yum: 1/2 done · 1 in flight · 1 failed (va1demoweb01: 1 of 2 patches failed) · budget 1/1",
    ]


def test_the_run_note_names_the_failed_server_while_the_rollout_still_runs(start_cloud, plan4, monkeypatch):
    from tests.plugins.fake_airflow_api import FakeAirflowApi

    start_cloud(fleet_with(va1demoweb01={"patches": failing(KB1)}))
    with FakeAirflowApi() as api:
        monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", api.connection())
        drv = Driver(plan_path=str(plan4), max_concurrency=1, max_errors=1)
        with pytest.raises(TaskDeferred) as first:
            drv.turn()
        assert api.written[-1] == "patchflow: 1 skipped · 5 in progress"
        with pytest.raises(TaskDeferred):  # web01 failed; the rollout goes on with the next server
            drv.turn(
                first.value.method_name, {"event": asyncio.run(first_event(first.value.trigger)).payload}
            )
        assert api.written[-1] == "patchflow: 1 failed (va1demoweb01) · 1 skipped · 4 in progress"


@pytest.mark.parametrize(("interval", "notes"), [("3600", 2), ("0", 3)])
def test_in_the_worker_the_run_note_follows_at_most_every_note_interval(
    cloud, plan4, monkeypatch, interval, notes
):
    """Each note update reads every ledger and calls the REST API twice: per refill it was most
    of the worker loop's time at 10,000 servers. First and last always; between, per interval."""
    from tests.plugins.fake_airflow_api import FakeAirflowApi

    with FakeAirflowApi() as api:
        monkeypatch.setenv("AIRFLOW_CONN_AIRFLOW_API", api.connection())
        monkeypatch.setenv("AIRFLOW__PATCHFLOW__NOTE_INTERVAL", interval)
        Driver(plan_path=str(plan4), max_concurrency=1, deferrable=False).run()
        assert api.written[0] == "patchflow: 1 skipped · 5 in progress"
        # the Windows server is another task's: still to do
        assert api.written[-1] == "patchflow: 4 patched · 1 skipped · 1 in progress"
        assert len(api.written) == notes if interval == "3600" else len(api.written) >= notes


def test_a_fleet_budget_failure_counts_every_packages_errors_in_its_message():
    """One package's task fails for another package's failures: the message says so (seen under
    ``make up``: "0 failed … > max_errors 0")."""
    from types import SimpleNamespace

    from patchflow.operators.rollout import PatchRolloutOperator

    stub = SimpleNamespace(
        gate=SimpleNamespace(failed=lambda: False),
        budget_exhausted=lambda: True,
        errors=lambda: 0,
        budget_errors=lambda: 1,
        fleet=object(),
        config=SimpleNamespace(max_errors=0),
    )
    with pytest.raises(AirflowFailException) as err:
        PatchRolloutOperator._fail_if_over_budget(stub, "results.json")  # type: ignore[arg-type]
    assert "1 failed or timed-out server(s) across all packages (0 in this one) > max_errors 0" in str(
        err.value
    )
