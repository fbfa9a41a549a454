"""The patching state machine on a manual clock: queue job vs execution, initiations,
reboots, exclusions, failures, duplicates, unsupported OS, e-mails."""

from __future__ import annotations

import re

import pytest

from simulator.executions import format_duration, plan_execution
from simulator.fleet_file import PatchSpec
from simulator.oscatalog import lookup_os

LINUX = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"
WIN = "b229535c-a313-4a31-baf8-6aa71ff4b9ed"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def summary(client, auth, sid, alias="DEMO"):
    r = client.get(f"/patching/rest/servers/{alias}/server/{sid}/patch", headers=auth)
    assert r.status_code == 200
    return r.json()


def detail(client, auth, sid, ex_id):
    r = client.get(f"/patching/rest/servers/DEMO/server/{sid}/patch/{ex_id}", headers=auth)
    assert r.status_code == 200
    return r.json()


def power(client, auth, sid):
    return client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()["details"]["powerState"]


def test_linux_run_job_succeeds_early_execution_completes_later(client, auth, clock, run_package, sim):
    r = run_package(["VA1DEMOWEB01"])
    assert r.status_code == 200
    job = r.json()[0]["links"][0]["id"]
    assert summary(client, auth, "va1demoweb01") == []  # not started yet: nothing to discover
    clock.tick(30)
    assert client.get(f"/v2/operations/DEMO/status/{job}", headers=auth).json() == {"status": "succeeded"}
    (ex,) = summary(client, auth, "va1demoweb01")
    assert set(ex) == {"execution_id", "status", "start_time", "end_time", "init_messages"}
    assert re.fullmatch(r"VA1-\d{6}", ex["execution_id"])
    assert ex["status"] == "pending" and ex["end_time"] == ""
    assert ex["init_messages"][0]["init_begin_message"] == "Invoking yum check-update"
    assert ex["init_messages"][0]["end_time"] == "" and ex["init_messages"][0]["init_end_message"] == ""
    # openssl needs a reboot: the server visibly leaves "started" and comes back
    seen = set()
    for _ in range(80):
        clock.tick(15)
        seen.add(power(client, auth, "va1demoweb01"))
    assert seen == {"started", "stopped"}
    (ex,) = summary(client, auth, "va1demoweb01")
    assert ex["status"] == "completed" and ISO.match(ex["end_time"])
    first, last = ex["init_messages"][0], ex["init_messages"][-1]
    assert first["init_end_message"] == (
        "Installed 3 updates: openssl-1.0.1e-42.el6_7.4.x86_64, bash-4.1.2-33.el6_7.1.x86_64, "
        "tzdata-2016b-1.el6.noarch"
    )
    assert last["init_end_message"] == "Installed 0 updates"
    d = detail(client, auth, "va1demoweb01", ex["execution_id"])
    assert set(d) == {
        "execution_id",
        "status",
        "start_time",
        "end_time",
        "duration",
        "begin_message",
        "end_message",
        "patches",
    }
    assert d["begin_message"] == "Update Process BEGIN" and d["end_message"] == "Updating Complete"
    assert re.fullmatch(r"\d+ min \d+ sec", d["duration"])
    names = [p["patch_begin_message"] for p in d["patches"]]
    assert not any(n.startswith(("kernel", "nss")) for n in names)  # never installed on RHEL/CentOS
    assert all(p["patch_end_message"] == "2" and p["status"] == "completed" for p in d["patches"])
    assert power(client, auth, "va1demoweb01") == "started"


def test_windows_three_reboot_cycles_and_kb_numbers(client, auth, clock, run_package, sim):
    run_package(["VA1DEMOWIN03"], package=WIN)
    downs, last = 0, "started"
    for _ in range(400):
        clock.tick(10)
        now = power(client, auth, "va1demowin03")
        downs += last == "started" and now == "stopped"
        last = now
    assert downs == 3
    (ex,) = summary(client, auth, "va1demowin03")
    assert ex["status"] == "completed" and len(ex["init_messages"]) == 4
    assert all(m["init_begin_message"] == "Invoking SUS API" for m in ex["init_messages"])
    assert "windows8-rt-kb3020369-x64_" in ex["init_messages"][0]["init_end_message"]
    d = detail(client, auth, "va1demowin03", ex["execution_id"])
    assert all(re.search(r"\(KB\d{6,7}\)$", p["patch_begin_message"]) for p in d["patches"])
    assert len(d["patches"]) == 4


def test_failing_patch_is_failed_but_execution_completes(client, auth, clock, run_package):
    run_package(["VA1DEMOWIN02"], package=WIN)
    clock.tick(3 * 3600)
    (ex,) = summary(client, auth, "va1demowin02")
    assert ex["status"] == "completed"
    d = detail(client, auth, "va1demowin02", ex["execution_id"])
    by = {p["patch_begin_message"]: p for p in d["patches"]}
    failed = by["Update for Windows Server 2012 R2 (KB3133924)"]
    assert failed["patch_end_message"] == "4" and failed["status"] == "failed"
    ok = by["Security Update for Windows Server 2012 R2 (KB3138615)"]
    assert ok["patch_end_message"] == "2" and ok["status"] == "completed"
    assert "KB3133924" not in ex["init_messages"][0]["init_end_message"].upper()


def test_fail_once_patch_is_retried_in_the_next_initiation(client, auth, clock, run_package):
    run_package(["VA1DEMOAPP01"])
    clock.tick(3 * 3600)
    (ex,) = summary(client, auth, "va1demoapp01")
    d = detail(client, auth, "va1demoapp01", ex["execution_id"])
    openssl = [p for p in d["patches"] if p["patch_begin_message"].startswith("openssl")]
    assert [p["status"] for p in openssl] == ["failed", "completed"]
    assert len(ex["init_messages"]) == 3


def test_detail_lists_each_attempt_with_its_own_status_and_initiation(client, auth, clock, run_package):
    """Reference §12 #36: one row per initiation that tried the patch, that attempt's status."""
    run_package(["VA1DEMOAPP01"])
    clock.tick(3 * 3600)
    (ex,) = summary(client, auth, "va1demoapp01")
    rows = detail(client, auth, "va1demoapp01", ex["execution_id"])["patches"]
    openssl = [p for p in rows if p["patch_begin_message"].startswith("openssl")]
    assert [(p["status"], p["patch_end_message"]) for p in openssl] == [("failed", "4"), ("completed", "2")]
    inits = ex["init_messages"]
    windows = [(parse(i["start_time"]), parse(i["end_time"])) for i in inits]
    where = [next(k for k, (a, b) in enumerate(windows) if a <= parse(p["start_time"]) <= b) for p in openssl]
    assert where == [0, 1]  # first attempt in initiation 1, the retry in initiation 2
    assert "openssl" not in inits[0]["init_end_message"] and "openssl" in inits[1]["init_end_message"]


def test_retried_patch_that_finally_succeeded_is_not_a_failure_in_the_email(client, auth, clock, run_package):
    run_package(["VA1DEMOAPP01"])
    clock.tick(3 * 3600)
    (mail,) = client.get("/_sim/outbox?server=va1demoapp01&kind=patch_completed").json()["emails"]
    assert "failed" not in mail["subject"].lower()
    assert client.get("/_sim/outbox?server=va1demoapp01&kind=patch_failed").json()["emails"] == []
    assert "Failed updates" not in mail["body"] and mail["body"].count("openssl") == 1


def test_server_without_patches_completes_with_zero_updates(client, auth, clock, run_package):
    run_package(["VA1DEMOEMPTY01"])
    clock.tick(600)
    (ex,) = summary(client, auth, "va1demoempty01")
    assert ex["status"] == "completed"
    assert [m["init_end_message"] for m in ex["init_messages"]] == ["Installed 0 updates"]
    assert detail(client, auth, "va1demoempty01", ex["execution_id"])["patches"] == []


def test_in_progress_patch_reads_pending_with_code_1(client, auth, clock, run_package):
    run_package(["VA1DEMOWIN01"], package=WIN)
    clock.tick(2 + 45 + 60)  # queue delay + scan + a minute into the first 6-minute update
    (ex,) = summary(client, auth, "va1demowin01")
    d = detail(client, auth, "va1demowin01", ex["execution_id"])
    assert d["status"] == "pending" and d["end_time"] == "" and d["duration"] == "" and d["end_message"] == ""
    assert d["patches"][-1] == {
        **d["patches"][-1],
        "end_time": "",
        "patch_end_message": "1",
        "status": "pending",
    }


def test_distinct_execution_ids_per_server_in_one_request(client, auth, clock, run_package, sim):
    r = run_package(["VA1DEMOWEB01", "VA1DEMOWEB02", "VA1DEMODB01"])
    assert len({e["links"][0]["id"] for e in r.json()}) == 1
    clock.tick(60)
    ids = {
        summary(client, auth, s)[0]["execution_id"] for s in ("va1demoweb01", "va1demoweb02", "va1demodb01")
    }
    assert len(ids) == 3


def test_second_package_while_pending_is_refused_and_counted(client, auth, clock, run_package):
    assert run_package(["VA1DEMOWEB01"]).status_code == 200
    clock.tick(60)
    r = run_package(["VA1DEMOWEB01", "VA1DEMOWEB02"])
    assert r.status_code == 200
    by = {e["server"]: e for e in r.json()}
    assert by["va1demoweb01"]["isQueued"] is False and by["va1demoweb01"]["errorMessage"]
    assert by["va1demoweb02"]["isQueued"] is True
    counters = client.get("/_sim/counters").json()
    assert counters["executions_per_server"] == {"va1demoweb01": 1, "va1demoweb02": 1}
    assert counters["duplicate_executions_rejected"] == {"va1demoweb01": 1}
    assert len(summary(client, auth, "va1demoweb01")) == 1
    clock.tick(4 * 3600)  # once completed, a new run is accepted again
    assert run_package(["VA1DEMOWEB01"]).status_code == 200
    clock.tick(60)
    assert len(summary(client, auth, "va1demoweb01")) == 2


def first_reboot(sim, server_id):
    ex = sim.executions[sim.servers[server_id].active_execution]
    return next(i.reboot for i in ex.initiations if i.reboot)


def maintenance(client, auth, sid):
    return client.get(f"/v2/servers/DEMO/{sid}", headers=auth).json()["details"]["inMaintenanceMode"]


def job_status(client, auth, job_id):
    return client.get(f"/v2/operations/DEMO/status/{job_id}", headers=auth).json()["status"]


def test_power_operations_refused_while_patching(client, auth, clock, run_package):
    run_package(["VA1DEMOWEB01"])
    clock.tick(30)
    r = client.post("/v2/operations/DEMO/servers/reboot", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 400 and r.json()[0]["errorMessage"]


@pytest.mark.parametrize("op", ["startMaintenance", "stopMaintenance"])
def test_maintenance_change_mid_reboot_is_queued_and_applied_after_the_reboot(
    client, auth, clock, run_package, sim, op
):
    """Reference §12 #34: queued whatever the reboot state; the job ends once it is applied."""
    sim.servers["va1demoweb01"].in_maintenance = op == "stopMaintenance"
    run_package(["VA1DEMOWEB01"])
    down, up = first_reboot(sim, "va1demoweb01")
    clock.tick(down + 1 - clock.now())
    assert power(client, auth, "va1demoweb01") == "stopped"
    r = client.post(f"/v2/operations/DEMO/servers/{op}", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 200 and r.json()[0]["isQueued"] is True
    job = r.json()[0]["links"][0]["id"]
    clock.tick(30)  # the job's own turn is over, but the server is still rebooting
    assert up > clock.now() and power(client, auth, "va1demoweb01") == "stopped"
    assert maintenance(client, auth, "va1demoweb01") == (op == "stopMaintenance")
    assert job_status(client, auth, job) == "executing"
    clock.tick(up - clock.now())
    assert maintenance(client, auth, "va1demoweb01") == (op == "startMaintenance")
    assert job_status(client, auth, job) == "succeeded"


def test_maintenance_on_a_server_that_never_returns_never_applies(client, auth, clock, run_package, sim):
    sim.servers["va1demoweb01"].in_maintenance = True
    run_package(["VA1DEMOWEB01"])
    down, _ = first_reboot(sim, "va1demoweb01")
    clock.tick(down + 1 - clock.now())
    client.post("/_sim/faults", json={"kind": "no_return_from_reboot", "server": "va1demoweb01"})
    r = client.post("/v2/operations/DEMO/servers/stopMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 200 and r.json()[0]["isQueued"] is True
    clock.tick(3 * 86400)
    assert maintenance(client, auth, "va1demoweb01") is True
    assert job_status(client, auth, r.json()[0]["links"][0]["id"]) == "executing"


def test_refuse_during_reboot_fault_restores_the_refusal(client, auth, clock, run_package, sim):
    client.post("/_sim/faults", json={"kind": "refuse_during_reboot", "server": "va1demoweb01", "count": 1})
    run_package(["VA1DEMOWEB01", "VA1DEMOWEB02"])
    clock.tick(30)  # patching but not rebooting: the fault does not apply
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB02"])
    assert r.status_code == 200
    down, _ = first_reboot(sim, "va1demoweb01")
    clock.tick(down + 1 - clock.now())
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 400 and r.json()[0]["isQueued"] is False
    assert r.json()[0]["errorMessage"].startswith("The operation cannot be queued")
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 200  # count: 1 is used up
    fault = client.get("/_sim/faults").json()["faults"][0]
    assert fault["fired"] == 1 and fault["remaining"] == 0 and fault["server"] == "va1demoweb01"


def test_global_refuse_during_reboot_fault_hits_every_rebooting_server(client, auth, clock, run_package, sim):
    client.post("/_sim/faults", json={"kind": "refuse_during_reboot"})
    run_package(["VA1DEMOWEB02"])
    down, _ = first_reboot(sim, "va1demoweb02")
    clock.tick(down + 1 - clock.now())
    for _ in range(2):
        r = client.post("/v2/operations/DEMO/servers/stopMaintenance", headers=auth, json=["VA1DEMOWEB02"])
        assert r.status_code == 400 and r.json()[0]["isQueued"] is False
    r = client.post("/v2/operations/DEMO/servers/startMaintenance", headers=auth, json=["VA1DEMOWEB01"])
    assert r.status_code == 200  # not rebooting: queued as usual


def test_queue_delay_fault_starts_jobs_and_executions_late(client, auth, clock, run_package, sim):
    client.post("/_sim/faults", json={"kind": "queue_delay", "seconds": 1800, "count": 1})
    requested = clock.now()
    r = run_package(["VA1DEMOWEB01", "VA1DEMOWEB02"])
    job = r.json()[0]["links"][0]["id"]
    clock.tick(1000)
    assert job_status(client, auth, job) == "notStarted"
    assert summary(client, auth, "va1demoweb01") == [] and summary(client, auth, "va1demoweb02") == []
    clock.tick(900)
    starts = [parse(summary(client, auth, sid)[0]["start_time"]) for sid in ("va1demoweb01", "va1demoweb02")]
    assert min(starts) >= requested + 1800
    fault = client.get("/_sim/faults").json()["faults"][0]
    assert fault == {"id": 1, "kind": "queue_delay", "fired": 1, "remaining": 0, "seconds": 1800}
    assert client.get("/_sim/counters").json()["faults_injected"] == {"1": 1}
    r = run_package(["VA1DEMOWEB03"])  # count used up: the next job starts as usual
    clock.tick(30)
    assert len(summary(client, auth, "va1demoweb03")) == 1


def test_queue_delay_without_count_delays_every_job(client, auth, clock):
    client.post("/_sim/faults", json={"kind": "queue_delay", "seconds": 600})
    jobs = []
    for op, sid in (("startMaintenance", "VA1DEMOWEB01"), ("powerOff", "VA1DEMOWEB02")):
        r = client.post(f"/v2/operations/DEMO/servers/{op}", headers=auth, json=[sid])
        jobs.append(r.json()[0]["links"][0]["id"])
    clock.tick(300)
    assert [job_status(client, auth, j) for j in jobs] == ["notStarted", "notStarted"]
    clock.tick(400)
    assert [job_status(client, auth, j) for j in jobs] == ["succeeded", "succeeded"]
    assert maintenance(client, auth, "va1demoweb01") is True


def parse(text):
    from simulator.clock import parse_iso

    return parse_iso(text)


def test_unsupported_os_and_wrong_package_fail_the_job(client, auth, clock, run_package, sim):
    r = run_package(["VA1DEMOUBU01", "VA1DEMOWIN01"])  # Ubuntu + Windows with the yum package
    assert r.status_code == 200 and all(e["isQueued"] for e in r.json())
    job = r.json()[0]["links"][0]["id"]
    clock.tick(60)
    assert client.get(f"/v2/operations/DEMO/status/{job}", headers=auth).json() == {"status": "failed"}
    assert summary(client, auth, "va1demoubu01") == [] and summary(client, auth, "va1demowin01") == []
    sim.settings.strict_package_os = True
    r = run_package(["VA1DEMOUBU01"], package=WIN)
    assert r.status_code == 400 and "not supported" in r.json()[0]["errorMessage"]


def test_unknown_package_is_400_message_and_bad_body_is_model_state(client, auth, run_package):
    r = run_package(["VA1DEMOWEB01"], package="00000000-0000-0000-0000-000000000000")
    assert r.status_code == 400 and set(r.json()) == {"message"}
    r = client.post(
        "/v2/operations/DEMO/servers/executePackage",
        headers=auth,
        json={"servers": ["VA1DEMOWEB01"], "package": {"packageId": LINUX}},
    )
    assert r.status_code == 400 and "package.parameters" in r.json()["modelState"]
    r = client.post(
        "/v2/operations/DEMO/servers/executePackage",
        headers=auth,
        json={"SERVERS": ["VA1DEMOWEB01"], "Package": {"PackageID": LINUX.upper(), "Parameters": {}}},
    )
    assert r.status_code == 200  # Json.NET binds keys case-insensitively


def test_powered_off_template_and_foreign_servers_are_not_queued(client, auth, run_package):
    r = run_package(["VA1DEMOSTG02", "VA1DEMOTPL01", "VA1OTHRWEB01", "VA1DEMOPAUSE01"])
    assert r.status_code == 400
    assert all(e["isQueued"] is False and e["errorMessage"] for e in r.json())


def test_patching_endpoints_errors(client, auth, login_as):
    r = client.get("/patching/rest/servers/DEMO/server/nope/patch", headers=auth)
    assert r.status_code == 404 and r.json() == {"message": "The requested resource does not exist."}
    r = client.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch/VA1-999999", headers=auth)
    assert r.status_code == 404
    assert client.get("/patching/rest/servers/DEMO/server/va1demoweb01/patch").status_code == 401
    assert (
        client.get("/patching/rest/servers/OTHR/server/va1othrweb01/patch", headers=auth).status_code == 403
    )


def test_emails_requested_then_completed_or_failed(client, auth, clock, run_package):
    run_package(["VA1DEMOWEB01", "VA1DEMOWIN02"], package=LINUX)
    run_package(["VA1DEMOWIN02"], package=WIN)
    mails = client.get("/_sim/outbox").json()["emails"]
    assert [m["kind"] for m in mails] == ["patch_requested", "patch_requested"]
    clock.tick(4 * 3600)
    mails = client.get("/_sim/outbox").json()["emails"]
    kinds = {(m["server"], m["kind"]) for m in mails}
    assert ("va1demoweb01", "patch_completed") in kinds and ("va1demowin02", "patch_failed") in kinds
    failed = next(m for m in mails if m["kind"] == "patch_failed")
    assert failed["to"] == "demo.admin@example.com" and re.search(r"VA1-\d{6}", failed["subject"])
    assert "KB3133924" in failed["body"]


def test_plan_model_directly_duration_format_and_exclusions():
    info = lookup_os("redhat6_64bit")  # OS codes match case-insensitively
    patches = [
        PatchSpec("kernel-x", None, "kernel-2.6.32-573.el6.x86_64", True, 60, 1, "none"),
        PatchSpec("nss", None, "nss-3.21.0-8.el6.x86_64", False, 60, 1, "none"),
        PatchSpec("bash", None, "bash-4.1.2-33.el6.x86_64", False, 90, 2, "none"),
    ]
    ex = plan_execution(
        execution_id="VA1-100001",
        server_id="s",
        alias="DEMO",
        package=LINUX,
        requested_by="u",
        requested=0,
        start=1000,
        os_info=info,
        patches=patches,
        scan_seconds=30,
        reboot_seconds=60,
    )
    assert [len(i.patches) for i in ex.initiations] == [1, 0]
    assert ex.initiations[0].patches[0].begin_message == "bash-4.1.2-33.el6.x86_64"
    assert not ex.is_completed(ex.end - 1) and ex.is_completed(ex.end)
    assert format_duration(53 * 60 + 24.9) == "53 min 24 sec"


@pytest.mark.parametrize("sid", ["va1demoweb01", "VA1DEMOWEB01"])
def test_patching_paths_accept_either_id_case(client, auth, clock, run_package, sid):
    run_package(["va1demoweb01"])
    clock.tick(60)
    (ex,) = summary(client, auth, sid)
    assert detail(client, auth, sid, ex["execution_id"].lower())["execution_id"] == ex["execution_id"]


def test_smtp_copy_is_dated_on_the_simulated_clock(client, auth, clock, run_package):
    from email.utils import parsedate_to_datetime

    from simulator.emails import smtp_message

    run_package(["VA1DEMOWEB01"])
    (mail,) = client.get("/_sim/outbox").json()["emails"]
    msg = smtp_message(mail)
    assert parsedate_to_datetime(msg["Date"]).timestamp() == parse(mail["time"]) == clock.now()
    assert msg["X-CLC-Execution-Id"] == mail["execution_id"] and msg["Subject"] == mail["subject"]


def test_a_never_ending_maintenance_job_survives_a_restart(tmp_path, demo_fleet, clock):
    from simulator.auth import Principal
    from simulator.core import Simulator, SimulatorSettings

    def start():
        settings = SimulatorSettings(seed=1, state_file=str(tmp_path / "state.json"))
        return Simulator(demo_fleet, settings, clock=clock)

    sim = start()
    me = Principal("demo.admin", "DEMO", "VA1", ("AccountAdmin",), 0, 2**40)
    sim.execute_package(me, "DEMO", ["VA1DEMOWEB01"], LINUX, {})
    down, _ = first_reboot(sim, "va1demoweb01")
    clock.tick(down + 1 - clock.now())
    sim.add_fault({"kind": "no_return_from_reboot", "server": "va1demoweb01"})
    (entry,), _ = sim.server_operation(me, "DEMO", "startMaintenance", ["va1demoweb01"])
    job_id = entry["links"][0]["id"]
    clock.tick(600)
    sim.advance()
    sim.commit()
    again = start()
    clock.tick(86400)
    again.advance()
    assert again.jobs[job_id].status(clock.now()) == "executing"
    assert again.servers["va1demoweb01"].in_maintenance is False
