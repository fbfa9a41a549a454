"""Ring DAGs end to end with `dag.test()` against a real simulator process.

1. patch_ring_dev, triggered with a window that closes while its second Windows server patches:
   the server in flight is followed to the end (and shown as an overrun), the one not yet
   started ends not_attempted "window closed", and the simulator confirms it was never sent
   the package; a server whose update fails is one error, within the ring's budget.
2. patch_ring_staging_notice mails what staging will patch, from a dry-run plan.
3. patch_ring_staging, which requires dev: dev's run of this patch cycle had a failed server,
   so ring_gate stops the run before anything is touched, and says why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from launcher.env import SIMULATOR_TIME_SCALE, clc_connection, time_scale_env

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
RINGS = {
    "rings": [
        {
            "name": "dev",
            "scope": {"groups": ["Windows"]},
            "schedule": {"offset_days": 2, "start": "22:00", "timezone": "Europe/Berlin"},
            "window": {"duration_minutes": 240, "cutoff_minutes": 0},
            "rollout": {"max_concurrency": "1", "max_errors": "1", "server_timeout_minutes": 240},
        },
        {
            "name": "staging",
            "scope": {"groups": ["Linux"]},
            "schedule": {"offset_days": 7, "start": "22:00", "timezone": "Europe/Berlin"},
            "requires": "dev",
            "notify": {"hours_before": 24, "to": "ring-owners@example.com"},
        },
    ]
}
# The fleet's (tests/fleets/e2e.yaml) Windows servers in plan order: WIN02's update fails after
# 2 simulated minutes; WIN03's takes 150 (90 s at time scale 0.01); WIN04 comes next.
ALLOW = ["VA1E2EWIN02", "VA1E2EWIN03", "VA1E2EWIN04"]
WINDOW_SECONDS = 60
"""From the DAG parsed to the window's end: WIN02 and WIN03 start within it even on a busy
machine (the tasks before the rollout took up to 45 s with the suite's parallel workers), and
WIN03, which starts a second or two after the rollout, outlives it."""


@pytest.fixture(scope="module")
def env(e2e_simulator, airflow_db, tmp_path_factory, smtp_inbox):
    monkeypatch = pytest.MonkeyPatch()
    tmp = tmp_path_factory.mktemp("rings")
    ring_file = tmp / "rings.yaml"
    ring_file.write_text(yaml.safe_dump(RINGS))
    monkeypatch.setenv("PATCHFLOW_RINGS", str(ring_file))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CLC_DEFAULT",
        clc_connection(e2e_simulator.base, alias="E2E", login="e2e.admin", password="e2e-password"),
    )
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", smtp_inbox.connection)
    monkeypatch.setenv("PATCHFLOW_ARTIFACTS", str(tmp / "artifacts"))
    monkeypatch.setenv("PATCHFLOW_REPORTS", str(tmp / "reports"))
    for key, value in time_scale_env(SIMULATOR_TIME_SCALE).items():
        monkeypatch.setenv(key, value)
    e2e_simulator.reset()
    try:
        yield tmp
    finally:
        monkeypatch.undo()


def audit_html(run_id: str) -> str:
    import os

    from include.reporting.evidence_pack import find_pack

    pack = find_pack(Path(os.environ["PATCHFLOW_REPORTS"]), run_id)
    assert pack is not None
    return (pack.path / "report.html").read_text()


def ring_dag(dag_id: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag(dag_id)


@pytest.fixture(scope="module")
def dev_run(env, e2e_simulator):
    dag = ring_dag("patch_ring_dev")
    window_end = datetime.now(UTC) + timedelta(seconds=WINDOW_SECONDS)
    conf = {"server_allow_list": ALLOW, "window_end": window_end.isoformat(), "window_cutoff_minutes": 0}
    dag_run = dag.test(run_conf=conf)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    (pack,) = sorted((env / "reports" / "runs").glob("*/audit.json"))
    return dag_run, states, json.loads(pack.read_text()), e2e_simulator.counters(), window_end


def test_a_window_closing_mid_rollout_stops_starting_servers_and_follows_the_one_in_flight(dev_run):
    dag_run, states, audit, counters, window_end = dev_run
    assert dag_run.state == "success", states  # one error, within max_errors 1
    rows = {r["server_id"]: r for r in audit["servers"] if r["server_id"].upper() in ALLOW}
    assert {s: r["state"] for s, r in rows.items()} == {
        "va1e2ewin02": "failed",
        "va1e2ewin03": "patched",
        "va1e2ewin04": "not_attempted",
    }
    assert rows["va1e2ewin04"]["reason"] == "window closed"
    assert "va1e2ewin04" not in counters["executions_per_server"]  # never sent the package
    assert counters["executions_per_server"].get("va1e2ewin03") == 1
    window = audit["run"]["window"]
    assert window["end"] == window_end.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert window["not_started"] == ["va1e2ewin04"]
    assert [o["server_id"] for o in window["ended_after_window"]] == ["va1e2ewin03"]
    assert audit["run"]["params"]["ring"] == "dev" and audit["run"]["params"]["patch_cycle"]
    html = audit_html(dag_run.run_id)
    assert "Ended after the window" in html and "va1e2ewin03 (+" in html


def api_requests(sim) -> dict:
    return {
        route: n
        for route, n in sim.counters()["requests"].items()
        if not route.startswith(("GET /_sim", "POST /_sim"))
    }


def test_the_ring_gate_refuses_to_start_after_the_earlier_ring_had_failures(
    dev_run, e2e_simulator, env, caplog
):
    before = api_requests(e2e_simulator)
    dag_run = ring_dag("patch_ring_staging").test()
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success"
    assert states["ring_gate"] == "success"
    assert {t for t, s in states.items() if s != "skipped"} == {"ring_gate"}, states
    assert api_requests(e2e_simulator) == before, "a closed gate touches nothing, not even a login"
    dev_run_id = dev_run[0].run_id
    assert f"ring staging not started: ring dev's run {dev_run_id} of patch cycle" in caplog.text
    assert "ended with 1 failed server(s): va1e2ewin02 (failed)" in caplog.text
    assert len(list((env / "reports" / "runs").glob("*/audit.json"))) == 1  # no pack for staging


def test_the_heads_up_mails_what_the_ring_will_patch_and_touches_nothing(env, e2e_simulator, smtp_inbox):
    dag_run = ring_dag("patch_ring_staging_notice").test()
    assert dag_run.state == "success"
    (mail,) = [
        m
        for subject, m in zip(smtp_inbox.subjects(), smtp_inbox.messages, strict=True)
        if "ring staging" in subject
    ]
    assert mail["To"] == "ring-owners@example.com"
    body = "".join(
        part.get_payload(decode=True).decode()
        for part in mail.walk()
        if part.get_content_type() == "text/html"
    )
    # the Linux groups' servers the e2e fleet can patch, not the Windows ones
    assert "va1e2elin01" in body and "uc1e2elin01" in body and "va1e2ewin02" not in body
    assert "Europe/Berlin" in body
    assert not list((env / "reports" / "runs").glob("*notice*")), "a heads-up seals no evidence"
