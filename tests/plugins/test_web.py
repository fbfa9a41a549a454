"""The reports pages served inside the Airflow API server."""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reporting"))
from audit_samples import HOSTILE, fleet_rows, make_row, make_run

from include.reporting.audit_document import build_audit_document
from include.reporting.evidence_pack import safe_run_id, write_evidence_pack
from patchflow.web import create_app

RUN_ID = "manual__2026-11-27T14:00:00+00:00"


@pytest.fixture
def client(tmp_path):
    document = build_audit_document(fleet_rows(), make_run(RUN_ID))
    write_evidence_pack(tmp_path, document, {"success": True, "checks": [], "failed": []})
    return TestClient(create_app(tmp_path, authenticate=False))


def test_index_lists_sealed_packs_with_links(client):
    page = client.get("/").text
    assert RUN_ID in page
    assert f'href="runs/{safe_run_id(RUN_ID)}/report.html"' in page


def test_report_is_served_by_raw_or_safe_run_id(client):
    for run in (RUN_ID, safe_run_id(RUN_ID)):
        resp = client.get(f"/runs/{run}/report.html")
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/html")
        assert HOSTILE not in resp.text  # escaped, never raw


def test_only_pack_files_of_sealed_runs_are_served(client):
    assert client.get(f"/runs/{RUN_ID}/..%2F..%2Fetc%2Fpasswd").status_code == 404
    assert client.get("/runs/unknown_run/report.html").status_code == 404
    assert client.get(f"/runs/{RUN_ID}/secrets.txt").status_code == 404
    assert client.get("/compliance/compliance.html").status_code == 404


def test_an_empty_location_says_so(tmp_path):
    page = TestClient(create_app(tmp_path, authenticate=False)).get("/").text
    assert "No evidence pack has been sealed yet" in page


def test_the_app_requires_airflow_authentication_by_default(tmp_path):
    app = create_app(tmp_path)
    assert app.router.dependencies, "reports must sit behind Airflow's authentication"


# --- the run board and the run's tab ----------------------------------------------------------

from datetime import timedelta  # noqa: E402

from airflow.utils.state import DagRunState  # noqa: E402

from include.patching.rollout_state import Phase  # noqa: E402
from include.patching.states import ServerState  # noqa: E402
from patchflow.board import RunFacts  # noqa: E402
from tests.patching.run_artifacts import (  # noqa: E402
    HOSTILE_NAME,
    NOW,
    done,
    entry,
    in_flight_run,
    write_run,
)
from tests.patching.run_artifacts import RUN_ID as LIVE_RUN  # noqa: E402

HTML = {"accept": "text/html,application/xhtml+xml"}
RUNNING = RunFacts(state=DagRunState.RUNNING, start_date=NOW - timedelta(minutes=10), end_date=None)
FAILED = RunFacts(state=DagRunState.FAILED, start_date=NOW - timedelta(minutes=10), end_date=NOW)


def board_client(tmp_path, facts=RUNNING, reports=None):
    reports = reports or tmp_path / "reports"
    reports.mkdir(exist_ok=True)
    app = create_app(
        reports,
        artifacts=tmp_path / "artifacts",
        run_facts=lambda d, r: facts,
        clock=lambda: NOW,
        authenticate=False,
    )
    return TestClient(app)


def test_the_tab_of_a_run_in_flight_is_its_live_board(tmp_path):
    write_run(tmp_path / "artifacts", *in_flight_run())
    page = board_client(tmp_path).get(f"/run/patch_fleet/{LIVE_RUN}", headers=HTML)
    assert page.status_code == 200
    html = page.text
    assert 'data-live="true"' in html and '<meta http-equiv="refresh"' in html  # refreshes on its own
    assert 'data-count="failed"><span class="n">1<' in html
    assert 'data-count="in_flight"><span class="n">1<' in html
    assert 'data-count="in_maintenance"><span class="n">1<' in html
    assert 'data-count="waiting"><span class="n">1<' in html
    assert 'data-failed="va1demo02"' in html and "1 of 3 patches failed" in html
    assert "accepted as job va1-42" in html and "10m 00s" in html  # in flight detail, run elapsed
    assert "Error budget (all packages): 1 failed of max_errors 1" in html
    assert "about 2m 50s left" in html  # 70 s for the server in flight + one wave of 100 s
    assert 'id="rerun"' not in html  # offered once the run has ended (one run at a time)


def test_hostile_server_names_are_escaped(tmp_path):
    write_run(tmp_path / "artifacts", *in_flight_run())
    html = board_client(tmp_path).get(f"/board/patch_fleet/{LIVE_RUN}").text
    assert HOSTILE_NAME not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_refresh_part_is_the_board_alone(tmp_path):
    write_run(tmp_path / "artifacts", *in_flight_run())
    client = board_client(tmp_path)
    part = client.get(f"/board/patch_fleet/{LIVE_RUN}", params={"part": "board"}).text
    assert part.lstrip().startswith('<section id="board"') and "<html" not in part
    full = client.get(f"/board/patch_fleet/{LIVE_RUN}").text
    assert f'data-part-url="/board/patch_fleet/{quote(LIVE_RUN, safe="")}?part=board"' in full


def test_a_run_that_just_started_waits_for_its_inventory_then_its_plan(tmp_path):
    client = board_client(tmp_path)
    assert "Waiting for the inventory" in client.get(f"/run/patch_fleet/{LIVE_RUN}").text
    write_run(tmp_path / "artifacts", None, None)
    assert "waiting for the plan" in client.get(f"/run/patch_fleet/{LIVE_RUN}").text
    rows, _ = in_flight_run()
    write_run(tmp_path / "artifacts", rows, None)
    html = client.get(f"/run/patch_fleet/{LIVE_RUN}").text
    assert "rollout not started yet" in html and 'data-count="waiting"><span class="n">5<' in html


def test_a_finished_run_offers_to_rerun_its_failed_servers(tmp_path):
    rows, entries = in_flight_run()
    entries |= {
        "va1demo03": done(ServerState.TIMED_OUT, reason="timed out"),
        "va1demo04": done(ServerState.NOT_ATTEMPTED, wall=None, reason="budget used up"),
        "va1demo05": done(ServerState.NOT_ATTEMPTED, wall=None, reason="budget used up"),
    }
    write_run(tmp_path / "artifacts", rows, entries)
    html = board_client(tmp_path, facts=FAILED).get(f"/board/patch_fleet/{LIVE_RUN}").text
    assert 'data-live="false"' in html and 'http-equiv="refresh"' not in html
    assert 'id="rerun"' in html
    assert "airflow dags trigger patch_fleet --conf" in html
    allow = ", ".join(f"&#34;va1demo0{n}&#34;" for n in (2, 3, 4, 5))
    assert f"&#34;server_allow_list&#34;: [{allow}]" in html
    assert 'data-trigger-url="/api/v2/dags/patch_fleet/dagRuns"' in html


def test_the_tab_shows_the_sealed_report_once_the_pack_exists(tmp_path):
    reports = tmp_path / "reports"
    document = build_audit_document(fleet_rows(), make_run(LIVE_RUN))
    write_evidence_pack(reports, document, {"success": True, "checks": [], "failed": []})
    write_run(tmp_path / "artifacts", *in_flight_run())
    page = board_client(tmp_path, reports=reports).get(f"/run/patch_fleet/{quote(LIVE_RUN, safe='')}")
    assert page.status_code == 200 and 'id="board"' not in page.text
    assert page.text == (reports / "runs" / safe_run_id(LIVE_RUN) / "report.html").read_text()


def test_the_tab_on_another_dags_run_says_what_it_is_for(tmp_path):
    page = board_client(tmp_path).get("/run/compliance_report/scheduled__2026-12-01", headers=HTML)
    assert page.status_code == 200
    assert "patch_fleet" in page.text and "compliance_report" in page.text
    assert 'href="/compliance/compliance.html"' in page.text


def test_a_person_never_gets_raw_json_for_a_missing_report(tmp_path):
    client = board_client(tmp_path)
    page = client.get(f"/runs/{LIVE_RUN}/report.html", headers=HTML)
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "no sealed evidence pack" in page.text and '{"detail"' not in page.text
    api = client.get(f"/runs/{LIVE_RUN}/report.html", headers={"accept": "application/json"})
    assert api.status_code == 404 and "detail" in api.json()
    nowhere = client.get("/no/such/page", headers=HTML)
    assert nowhere.status_code == 404 and "<h1>Not available</h1>" in nowhere.text


def test_every_page_of_a_run_needs_airflows_permission_on_that_dags_runs(tmp_path):
    app = create_app(tmp_path)
    guarded = {
        r.path: len(r.dependencies) for r in app.routes if getattr(r, "dependencies", None) is not None
    }
    for path in (
        "/run/{dag_id}/{run_id:path}",
        "/board/{dag_id}/{run_id:path}",
        "/rerun/{dag_id}/{run_id:path}",
    ):
        assert guarded[path] == guarded["/"] + 1, path  # Airflow login, plus the DAG's run permission


def test_rerun_page_reads_the_sealed_audit(tmp_path):
    reports = tmp_path / "reports"
    document = build_audit_document(fleet_rows(), make_run(LIVE_RUN, params={"max_errors": "2"}))
    write_evidence_pack(reports, document, {"success": True, "checks": [], "failed": []})
    html = board_client(tmp_path, facts=None, reports=reports).get(f"/rerun/patch_fleet/{LIVE_RUN}").text
    assert 'data-server="va1demowin01"' in html and 'data-server="uc1demodb01"' in html
    assert 'data-server="va1demoweb01"' not in html  # patched: not retried
    assert "&#34;max_errors&#34;: &#34;2&#34;" in html


def test_rerun_of_a_live_run_is_refused_politely(tmp_path):
    write_run(tmp_path / "artifacts", *in_flight_run())
    page = board_client(tmp_path).get(f"/rerun/patch_fleet/{LIVE_RUN}", headers=HTML)
    assert page.status_code == 409 and "still going" in page.text and "<h1>" in page.text


def test_index_shows_counts_dry_run_marker_and_rerun_link(tmp_path):
    reports = tmp_path / "reports"
    write_evidence_pack(reports, build_audit_document(fleet_rows(), make_run(RUN_ID)), {"success": True})
    dry = "manual__2026-11-28T09:00:00+00:00"
    dry_rows = [make_row("va1demoweb01", "planned_dry_run")]
    write_evidence_pack(
        reports, build_audit_document(dry_rows, make_run(dry, dry_run=True)), {"success": True}
    )
    html = board_client(tmp_path, reports=reports).get("/").text
    assert html.index(dry) < html.index(RUN_ID)  # newest first
    real = html[html.index(f'data-run="{RUN_ID}"') :]
    assert '<td class="num" data-count="Failed">1</td>' in real
    assert '<td class="num" data-count="Timed out">1</td>' in real
    assert "dry run</span>" in html[html.index(f'data-run="{dry}"') : html.index(f'data-run="{RUN_ID}"')]
    assert "re-run" in real and "Fleet compliance report" in html


def test_a_pack_of_a_users_own_dag_is_listed_without_patch_fleets_board_or_rerun(tmp_path):
    """example_patch_group seals packs too; patch_fleet's re-run conf would start a run that fails."""
    reports = tmp_path / "reports"
    own = "manual__2026-11-29T08:00:00+00:00"
    document = build_audit_document(fleet_rows(), make_run(own, dag_id="example_patch_group"))
    write_evidence_pack(reports, document, {"success": True})
    html = board_client(tmp_path, reports=reports).get("/").text
    line = html[html.index(f'data-run="{own}"') :]
    assert '<td class="num" data-count="Failed">1</td>' in line and "example_patch_group</span>" in line
    assert "re-run" not in line and "board/" not in line and "report.html" in line
    tab = board_client(tmp_path, reports=reports).get(f"/run/example_patch_group/{own}").text
    assert "<h1>Patch run audit report</h1>" in tab  # its own sealed report in the run's tab


def test_pages_load_nothing_from_elsewhere(tmp_path):
    write_run(tmp_path / "artifacts", *in_flight_run())
    client = board_client(tmp_path)
    html = client.get(f"/board/patch_fleet/{LIVE_RUN}").text
    assert "default-src 'none'; script-src 'self'" in html
    assert '<script src="/static/board.js"' in html and "http://" not in html and "https://" not in html
    script = client.get("/static/board.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")


def test_in_flight_rows_say_what_the_ledger_knows(tmp_path):
    rows, entries = in_flight_run()
    entries["va1demo03"] = entry(Phase.SUBMITTED, request_time="2026-12-01T11:58:00Z", execution_id="VA1-7")
    write_run(tmp_path / "artifacts", rows, entries)
    html = board_client(tmp_path).get(f"/board/patch_fleet/{LIVE_RUN}").text
    assert "execution VA1-7 running" in html and "2m 00s" in html


def test_the_plugin_tab_carries_the_dag_and_run_placeholders():
    from patchflow_plugin import PatchflowPlugin

    tab = next(v for v in PatchflowPlugin.external_views if v["destination"] == "dag_run")
    assert tab["href"] == "patchflow/run/{DAG_ID}/{RUN_ID}"


def test_a_big_rollout_lists_the_servers_needing_an_eye_first(tmp_path):
    from patchflow.board import ROW_LIMIT
    from tests.patching.run_artifacts import plan_row

    count = ROW_LIMIT + 50
    rows = [plan_row(f"va1big{n:04d}") for n in range(count)]
    entries = {r["id"]: done(ServerState.PATCHED) for r in rows}
    entries["va1big0349"] = done(ServerState.FAILED, reason="late failure")
    write_run(tmp_path / "artifacts", rows, entries)
    html = board_client(tmp_path).get(f"/board/patch_fleet/{LIVE_RUN}").text
    assert html.count('<tr data-server="') == ROW_LIMIT
    assert '<tr data-server="va1big0349" data-status="failed">' in html  # last in plan order, listed first
    assert 'data-not-listed="50"' in html
    assert f'data-count="done"><span class="n">{count - 1}<' in html


def test_a_staged_run_shows_its_stages_gates_and_why_it_halted(tmp_path):
    import json

    from include.patching.rollout_state import ledger_path

    rows, entries = in_flight_run()
    folder = write_run(tmp_path / "artifacts", rows, entries)
    path = ledger_path(folder, "linux_yum")
    ledger = json.loads(path.read_text())
    ledger["stages"] = [
        {"index": 1, "spec": "1", "servers": ["va1demo01"], "note": ""},
        {
            "index": 2,
            "spec": "100%",
            "servers": ["va1demo02", "va1demo03", "va1demo04", "va1demo05"],
            "note": "",
        },
    ]
    ledger["halt"] = {
        "stage": 2,
        "reason": "rollout halted: stage 2 of 2 used up the error budget",
        "kind": "gate",
    }
    path.write_text(json.dumps(ledger))
    html = board_client(tmp_path).get(f"/board/patch_fleet/{LIVE_RUN}").text
    assert 'data-stages="linux_yum"' in html
    assert (
        '<tr data-stage="1" data-gate="passed">' in html and '<tr data-stage="2" data-gate="failed">' in html
    )
    assert 'data-halt="linux_yum"' in html and "stage 2 of 2 used up the error budget" in html


def _windows_in_flight(folder: Path) -> None:
    """A second package, Windows, whose one server is in flight and nothing finished yet."""
    from include.patching.rollout_state import Ledger, ledger_path
    from tests.patching.run_artifacts import ledger_json

    windows = {"va1win01": entry(Phase.SUBMITTED, request_time=NOW.isoformat(), job_id="va1-50")}
    Ledger(ledger_path(folder, "windows_2012"), ledger_json(windows, "windows_2012")).save()


def test_a_package_without_finished_servers_still_shows_what_the_other_one_needs(tmp_path):
    """Linux has finished servers, Windows none yet: the card shows Linux's estimate as a lower
    bound and names the package it cannot estimate, instead of a bare "?"."""
    from tests.patching.run_artifacts import plan_row

    rows, entries = in_flight_run()
    rows += [plan_row("va1win01", package_key="windows_2012")]
    _windows_in_flight(write_run(tmp_path / "artifacts", rows, entries))

    html = board_client(tmp_path).get(f"/run/patch_fleet/{LIVE_RUN}", headers=HTML).text

    assert '<span class="n" data-eta>≥ 2m 50s</span>' in html  # Linux: 70 s in flight + a 100 s wave
    assert "at least this left;" in html and "estimated once its first servers have finished" in html


def test_a_finished_package_beside_one_without_an_estimate_names_only_that_one(tmp_path):
    from tests.patching.run_artifacts import plan_row

    rows = [plan_row("va1demo01"), plan_row("va1win01", package_key="windows_2012")]
    _windows_in_flight(write_run(tmp_path / "artifacts", rows, {"va1demo01": done(ServerState.PATCHED)}))

    html = board_client(tmp_path).get(f"/run/patch_fleet/{LIVE_RUN}", headers=HTML).text

    assert '<span class="n" data-eta>?</span>' in html and "at least" not in html
    assert "Auto Patching Windows 2012 / 2012 R2: estimated once its first servers have finished" in html
