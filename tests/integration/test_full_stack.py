"""The production topology, for real: api-server, scheduler, dag-processor, triggerer and a Celery
worker on a fresh PostgreSQL database with Redis, driving the simulator over HTTP.

The first run is triggered through Airflow's REST API with a conf, and the worker is killed right
after its first Execute Package request was answered (before the answer was recorded). Airflow
retries the task; the retry must reconcile, not re-submit: the simulator's counters show one
execution per server (I1). This is also the only test in which the trigger runs in a real
triggerer process.

The second run is a person's: a real browser (Playwright driving Debian's chromium) logs in,
triggers ``patch_fleet`` from the form for three Windows servers with no error budget, opens the
run's tab mid-run — the live board, refreshing itself — and checks what it shows against the
simulator's own state, then opens the tab again after the run (the sealed report), the "Patch
reports" page and a compliance run's tab. Screenshots go to ``test-output/``. While that run is
still going, its note — which the rollout keeps up to date through Airflow's public REST API with
the ``airflow_api`` connection — must already name the failed server, read back through the same
API the UI uses; the rollout's task log names the failure at WARNING.

Once the board was seen, a staged run is triggered (``staged_stack``): a person approves one
package's rest in the browser on Airflow's Required actions panel and rejects the other's over the
REST API. Stage order and the cluster limit are judged from the simulator's execution timestamps.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from include.patching.chaos import CRASH_AFTER_SUBMIT
from launcher.env import SIMULATOR_TIME_SCALE, airflow_api_connection, clc_connection, time_scale_env
from launcher.stack import AirflowStack
from tests.integration import staged_stack
from tests.integration.browser import sign_in
from tests.integration.staged_stack import APPROVED, CLUSTER, REJECTED, window

pytestmark = pytest.mark.slow

TARGETS = ["va1e2elin01", "va1e2elin02", "va1e2elin03"]
#: The browser's run: WIN02's update fails, which uses up max_errors 0, so WIN04 never starts;
#: WIN03's patch (90 s here) outlives the 60-minute timeout (36 s here): it stays in flight
#: long enough to be seen on the board, then times out.
FORM_TARGETS = ["va1e2ewin02", "va1e2ewin03", "va1e2ewin04"]
SHOTS = Path(__file__).resolve().parents[2] / "test-output"
CHROMIUM = "/usr/bin/chromium"
#: each browser step's wait: a loaded 2-core CI box can take far longer than Playwright's 30 s
#: to render a page of Airflow's UI (seen: the trigger button not there after 30 s)
BROWSER_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def stack_run(e2e_simulator, tmp_path_factory):
    e2e_simulator.reset()
    home = tmp_path_factory.mktemp("stack")
    marker = home / "chaos" / "crashed-after-submit"
    stack = AirflowStack(home)
    stack.extra_env.update(
        {
            # no alias in the extra: the login names it (E2E), and Airflow has nothing too short to mask
            "AIRFLOW_CONN_CLC_DEFAULT": clc_connection(
                e2e_simulator.base, login="e2e.admin", password="e2e-password"
            ),
            # the rollout and the audit keep each run's note up to date as this user
            "AIRFLOW_CONN_AIRFLOW_API": airflow_api_connection(
                f"http://127.0.0.1:{stack.port}", login="admin", password=stack.password
            ),
            CRASH_AFTER_SUBMIT: str(marker),
            **time_scale_env(SIMULATOR_TIME_SCALE),
        }
    )
    try:
        stack.start()
        stack.wait_for_dag("patch_fleet")
        stack.wait_for_dag("compliance_report")
        stack.api("PATCH", "/api/v2/dags/compliance_report", {"is_paused": False})
        run_id = stack.trigger(
            "patch_fleet",
            # real minutes x time_scale (144 s): outlives the worker's 30 s retry delay after the crash
            {"server_allow_list": TARGETS, "max_concurrency": "2", "server_timeout_minutes": 240},
        )
        run = stack.wait_for_run("patch_fleet", run_id, timeout=600)
        tis = {ti["task_id"]: ti for ti in stack.task_instances("patch_fleet", run_id)}
        counters = e2e_simulator.counters()
        compliance = _wait_for_compliance(stack)
        reports_page = _get_page(stack, "/patchflow/")
        anonymous_page = _get_page(stack, "/patchflow/", auth=False)
        started = time.monotonic()
        staged_ids: dict[str, str] = {}
        rejecter: list[staged_stack.Rejecter] = []

        def start_staged() -> None:
            # after the crash fault fired (it must hit run 1) and once the board was seen mid-run
            # (its timing is tight): they patch while the browser test goes on, and the REST
            # rejection answers as soon as its question is asked
            staged_ids.update(staged_stack.start_staged_runs(stack))
            rejecter.append(staged_stack.Rejecter(stack, staged_ids["staged"]))
            rejecter[0].start()

        browser = _browser_session(
            stack, e2e_simulator, compliance[0]["dag_run_id"] if compliance else None, start_staged
        )
        browser["seconds"] = time.monotonic() - started
        started = time.monotonic()
        approval = staged_stack.approve_in_browser(
            stack, staged_ids["staged"], SHOTS, CHROMIUM, BROWSER_TIMEOUT_MS
        )
        rejecter[0].join(120)
        staged = staged_stack.collect(stack, e2e_simulator, home, staged_ids)
        staged.update(approval=approval, rejection=rejecter[0].seen, ids=staged_ids)
        # what the staged runs add to the module's wall time (they overlap everything before this)
        staged["seconds_after_browser"] = time.monotonic() - started
        print(f"staged runs: {staged['seconds_after_browser']:.0f} s after the browser test")
        yield {
            "run": run,
            "tis": tis,
            "browser": browser,
            "counters": counters,
            "marker": marker,
            "trigger_logs": [
                f.read_text(errors="replace")
                for f in (home / "airflow" / "logs").rglob("*rollout*/*.trigger.*")
            ],
            "compliance": compliance,
            "reports_page": reports_page,
            "anonymous_page": anonymous_page,
            "run_id": run_id,
            "staged": staged,
            "logs": {n: stack.log_tail(n, 60) for n in ("scheduler", "worker", "triggerer")},
            "windows_rollout_log": "\n".join(
                _log_messages(path.read_text(errors="replace"))
                for path in (home / "airflow" / "logs").rglob("*")
                if path.is_file() and "patch_windows_2012.rollout" in str(path)
            ),
        }
    finally:
        stack.stop()


def _note_once_it_names(stack: AirflowStack, run_id: str, server: str) -> tuple[str, str]:
    """The run's (state, note) through the REST API, as soon as the note names ``server``.

    The rollout writes the note right after the ledger the board reads, in the same turn.
    """
    path = f"/api/v2/dags/patch_fleet/dagRuns/{urllib.parse.quote(run_id, safe='')}"
    deadline = time.monotonic() + 60
    while True:
        run = stack.api("GET", path)
        note = run.get("note") or ""
        if server in note or time.monotonic() > deadline:
            return run["state"], note
        time.sleep(1)


def _log_messages(text: str) -> str:
    """A task log as the UI shows it: each JSON line's level and message."""
    out = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            out.append(line)
            continue
        out.append(
            f"{record.get('level', '')} {record.get('event', '')}" if isinstance(record, dict) else line
        )
    return "\n".join(out)


def _board_numbers(frame: Any) -> dict[str, Any]:
    """Everything the board shows, read in one go (it is swapped while we look)."""
    return frame.locator("#board").evaluate(
        """b => ({
            counts: Object.fromEntries([...b.querySelectorAll("[data-count]")].map(
                c => [c.dataset.count, Number(c.querySelector(".n").textContent)])),
            statuses: Object.fromEntries([...b.querySelectorAll("tr[data-status]")].map(
                r => [r.dataset.server, r.dataset.status])),
            failed: [...b.querySelectorAll("tr[data-failed]")].map(r => r.dataset.failed),
            budget: (b.querySelector("[data-budget]") || {}).textContent || "",
            refreshed: Number(b.dataset.refreshed || 0),
            live: b.dataset.live,
            run_state: b.querySelector("[data-run-state]").dataset.runState,
        })"""
    )


def _browser_session(
    stack: AirflowStack, sim: Any, compliance_run: str | None, after_board: Callable[[], None]
) -> dict[str, Any]:
    """A person's run in a real browser: log in, trigger from the form, watch the board, read the
    report. ``after_board`` is called once the live board was checked (the staged runs start)."""
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(exist_ok=True)
    base = f"http://127.0.0.1:{stack.port}"
    seen: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.set_default_timeout(BROWSER_TIMEOUT_MS)
            sign_in(page, base, stack.password)

            page.goto(base + "/dags/patch_fleet")
            page.get_by_test_id("trigger-dag-button").first.click()
            form = page.get_by_role("dialog")
            form.get_by_role("button", name="Scope").click()
            form.locator("textarea[name=element_server_allow_list]").fill("\n".join(FORM_TARGETS))
            form.get_by_role("button", name="Rate control").click()
            form.locator("input[name=element_max_concurrency]").fill("2")
            form.locator("input[name=element_max_errors]").fill("0")
            form.locator("input[name=element_server_timeout_minutes]").fill("60")
            page.screenshot(path=str(SHOTS / "ui-trigger-form.png"))
            form.get_by_role("button", name="Trigger", exact=True).click()
            page.wait_for_url("**/dags/patch_fleet/runs/**")
            run_id = urllib.parse.unquote(page.url.split("/runs/", 1)[1].split("/", 1)[0])
            seen["run_id"] = run_id
            quoted = urllib.parse.quote(run_id, safe="")

            page.goto(f"{base}/dags/patch_fleet/runs/{quoted}/plugin/patch-run")
            frame = page.frame_locator('iframe[title="Patch run"]')
            # no reload from here on: the board must refresh itself until WIN02's failure shows
            expect(frame.locator('[data-count="failed"] .n')).to_have_text("1", timeout=120_000)
            seen["board"] = _board_numbers(frame)
            seen["note_mid_run"] = _note_once_it_names(stack, run_id, "va1e2ewin02")
            seen["sim_state"] = sim.call("GET", "/_sim/state")
            seen["sim_outbox"] = sim.call("GET", "/_sim/outbox")["emails"]
            page.screenshot(path=str(SHOTS / "ui-board-live.png"))
            page.emulate_media(color_scheme="dark")  # Airflow's default theme follows the system
            seen["dark_background"] = frame.locator("body").evaluate(
                "b => getComputedStyle(b).backgroundColor"
            )
            page.screenshot(path=str(SHOTS / "ui-board-dark.png"))
            page.emulate_media(color_scheme="light")
            after_board()

            final = stack.wait_for_run("patch_fleet", run_id, timeout=300)
            seen["run"] = final
            page.goto(f"{base}/dags/patch_fleet/runs/{quoted}/plugin/patch-run")
            report = page.frame_locator('iframe[title="Patch run"]')
            expect(report.locator("[data-run-id]")).to_have_attribute("data-run-id", run_id, timeout=60_000)
            seen["report_counts"] = {
                state: report.locator(f'[data-state-count="{state}"]').first.inner_text()
                for state in ("failed", "timed_out", "not_attempted", "patched")
            }
            seen["report_problems"] = sorted(
                report.locator("tr[data-problem-server]").evaluate_all(
                    "rs => rs.map(r => r.dataset.problemServer)"
                )
            )
            page.screenshot(path=str(SHOTS / "ui-run-tab-report.png"))

            page.goto(f"{base}/plugin/patch-reports")
            index = page.frame_locator('iframe[title="Patch reports"]')
            row = index.locator(f'tr[data-run="{run_id}"]')
            expect(row).to_be_visible(timeout=60_000)
            seen["index_row"] = {
                label: row.locator(f'[data-count="{label}"]').inner_text()
                for label in ("Failed", "Timed out", "Not attempted")
            }
            seen["index_rerun"] = row.get_by_role("link", name="re-run 3 not patched").count()
            page.screenshot(path=str(SHOTS / "ui-reports-index.png"))

            row.get_by_role("link", name="re-run 3 not patched").click()
            rerun = index.locator("#rerun")
            expect(rerun).to_be_visible(timeout=60_000)
            seen["rerun_text"] = rerun.inner_text()
            page.screenshot(path=str(SHOTS / "ui-rerun.png"))
            # one step: the button asks Airflow's REST API with this person's session
            rerun.get_by_role("button", name="Trigger patch_fleet for these servers").click()
            started = rerun.locator(".trigger-result a")
            expect(started).to_be_visible(timeout=30_000)
            new_run = started.inner_text()
            seen["rerun_run"] = stack.api(
                "GET", f"/api/v2/dags/patch_fleet/dagRuns/{urllib.parse.quote(new_run, safe='')}"
            )

            if compliance_run:
                q = urllib.parse.quote(compliance_run, safe="")
                page.goto(f"{base}/dags/compliance_report/runs/{q}/plugin/patch-run")
                other = page.frame_locator('iframe[title="Patch run"]')
                seen["other_tab"] = other.locator("body").inner_text(timeout=30_000)
        except Exception:
            _failure_shot(page, "ui-failure")
            raise
        finally:
            browser.close()
    return seen


def _failure_shot(page: Any, name: str) -> None:
    """What the browser showed when it broke, if it still can: never hides the real error."""
    try:
        page.screenshot(path=str(SHOTS / f"{name}.png"), timeout=10_000)
    except Exception as exc:  # a starved browser cannot even wait for its fonts
        print(f"no {name} screenshot: {exc}")


def _get_page(stack: AirflowStack, path: str, *, auth: bool = True) -> tuple[int, str]:
    """GET a plugin page from the real api-server, authenticated like the UI (bearer token)."""
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{stack.port}{path}")
    if auth:
        req.add_header("Authorization", f"Bearer {stack.token()}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def _wait_for_compliance(stack: AirflowStack) -> list[dict]:
    import time

    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        runs = stack.api("GET", "/api/v2/dags/compliance_report/dagRuns")["dag_runs"]
        if runs and runs[0]["state"] in ("success", "failed"):
            return runs
        time.sleep(3)
    return stack.api("GET", "/api/v2/dags/compliance_report/dagRuns")["dag_runs"]


def test_the_run_triggered_over_rest_succeeds(stack_run):
    assert stack_run["run"]["state"] == "success", json.dumps(stack_run["logs"], indent=1)[-4000:]
    assert stack_run["run"]["conf"]["server_allow_list"] == TARGETS
    tis = stack_run["tis"]
    assert tis["patch_linux_yum.rollout"]["state"] == "success"
    assert tis["patch_windows_2012.rollout"]["state"] == "skipped"
    assert tis["audit"]["state"] == "success"


def test_the_worker_died_after_the_post_and_the_retry_did_not_patch_twice(stack_run):
    assert stack_run["marker"].exists(), "the crash fault point never fired"
    assert stack_run["tis"]["patch_linux_yum.rollout"]["try_number"] == 2
    assert stack_run["counters"]["executions_per_server"] == dict.fromkeys(TARGETS, 1)


def test_the_trigger_ran_in_the_real_triggerer(stack_run):
    """The triggerer writes each trigger's log next to the task's: our trigger loaded and fired there."""
    logs = "\n".join(stack_run["trigger_logs"])
    assert "patchflow.triggers.patching.PatchCompletionTrigger" in logs, logs[-3000:]
    assert "Trigger fired event" in logs and "'state': 'completed'" in logs
    assert "Trigger failed" not in logs and "ModuleNotFoundError" not in logs


def test_the_audit_asset_started_the_compliance_report(stack_run):
    runs = stack_run["compliance"]
    assert runs and runs[0]["run_type"] == "asset_triggered"
    assert runs[0]["state"] == "success"


def test_the_reports_page_in_the_api_server_lists_the_run(stack_run):
    status, page = stack_run["reports_page"]
    assert status == 200, page[:500]
    assert stack_run["run_id"] in page and "report.html" in page
    assert stack_run["anonymous_page"][0] in (401, 403), "reports must not be public"


def test_a_person_triggered_the_run_from_the_form(stack_run):
    run = stack_run["browser"]["run"]
    assert run["conf"]["server_allow_list"] == FORM_TARGETS
    assert run["conf"]["max_errors"] == "0" and run["triggering_user_name"] == "admin"
    assert run["state"] == "failed"  # WIN02 failed with no error budget: the run says so


def test_the_live_board_mid_run_matches_the_simulator(stack_run):
    board, sim = stack_run["browser"]["board"], stack_run["browser"]["sim_state"]
    servers = {sid: sim["servers"][sid] for sid in FORM_TARGETS}
    running = [sid for sid, s in servers.items() if s["activeExecution"]]
    # the patching service's own word: a "completed with failed updates" mail per failed server
    failed = sorted({m["server"] for m in stack_run["browser"]["sim_outbox"] if m["kind"] == "patch_failed"})
    never = [sid for sid, s in servers.items() if not s["executions"]]
    assert board["live"] == "true" and board["run_state"] == "running"  # Airflow's own record of the run
    assert board["failed"] == failed == ["va1e2ewin02"]
    assert board["counts"]["in_flight"] == len(running) == 1 and board["statuses"][running[0]] == "in_flight"
    assert never == ["va1e2ewin04"] and board["statuses"]["va1e2ewin04"] == "not_attempted"
    assert board["counts"]["done"] == 0 and board["counts"]["waiting"] == 0
    assert "1 failed of max_errors 0" in board["budget"] and "used up" in board["budget"]
    assert board["refreshed"] >= 1, "the board never refreshed itself"
    assert stack_run["browser"]["dark_background"] == "rgb(17, 17, 17)"  # dark with Airflow, like Airflow


def test_the_note_names_the_failed_server_while_the_run_is_still_running(stack_run):
    state, note = stack_run["browser"]["note_mid_run"]
    assert state == "running" and "1 failed (va1e2ewin02)" in note, (state, note)


def test_the_final_note_is_the_audits_outcome_of_every_server(stack_run):
    final = stack_run["browser"]["run"].get("note") or ""
    assert final.startswith("patchflow: ") and "1 failed (va1e2ewin02)" in final, final
    assert "1 timed out" in final and "in progress" not in final


def test_the_rollout_log_names_the_failure_and_never_warns_about_a_short_secret(stack_run):
    text = stack_run["windows_rollout_log"]
    assert "server va1e2ewin02 (VA1E2EWIN02, update fails) failed: " in text, text[-3000:]
    assert "1 failed (va1e2ewin02: " in text
    assert "too short" not in text


def test_the_runs_tab_shows_the_sealed_report_after_the_run(stack_run):
    seen = stack_run["browser"]
    assert seen["report_counts"] == {"failed": "1", "timed_out": "1", "not_attempted": "1", "patched": "0"}
    assert seen["report_problems"] == FORM_TARGETS


def test_the_reports_index_counts_the_run_and_offers_its_rerun(stack_run):
    seen = stack_run["browser"]
    assert seen["index_row"] == {"Failed": "1", "Timed out": "1", "Not attempted": "1"}
    assert seen["index_rerun"] == 1
    text = seen["rerun_text"]
    assert "airflow dags trigger patch_fleet --conf" in text
    assert '"server_allow_list": ["va1e2ewin02", "va1e2ewin03", "va1e2ewin04"]' in text


def test_the_rerun_button_started_a_run_for_exactly_the_servers_not_patched(stack_run):
    run = stack_run["browser"]["rerun_run"]
    assert run["conf"]["server_allow_list"] == FORM_TARGETS
    assert run["conf"]["max_errors"] == "0" and run["conf"]["dry_run"] is False
    assert run["triggering_user_name"] == "admin"  # the person's own session, Airflow's permission check


def test_the_run_tab_on_a_compliance_run_says_what_it_is_for(stack_run):
    text = stack_run["browser"].get("other_tab", "")
    assert "Nothing to show for this run" in text and "compliance_report" in text


def test_the_browser_saved_its_screenshots(stack_run):
    names = (
        "ui-trigger-form",
        "ui-board-live",
        "ui-board-dark",
        "ui-run-tab-report",
        "ui-reports-index",
        "ui-rerun",
    )
    for name in names:
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000, name


def _rows(stack_run: dict, run: str, servers: list[str]) -> dict[str, dict]:
    """The audit rows of ``servers`` in the staged run ``run``."""
    rows = stack_run["staged"][run]["rows"]
    return {sid: rows[sid] for sid in servers if sid in rows}


def _stages(stack_run: dict, run: str, package: str = "linux_yum") -> dict:
    return stack_run["staged"][run]["stages"].get(package) or {}


def _released_everywhere(stack_run: dict, run: str, servers: list[str]) -> None:
    """Maintenance is off on every server (the simulator's word); the audit says released where
    the server was patched, not used where it never started; one audit row per server of E2EC."""
    sim, rows = stack_run["staged"]["sim"], _rows(stack_run, run, servers)
    assert not any(sim["servers"][s]["inMaintenanceMode"] for s in servers)
    for sid in servers:
        started = sim["servers"][sid]["executions"] != []
        assert rows[sid]["maintenance"] == ("released" if started else "not_used"), rows[sid]
    assert len(stack_run["staged"][run]["rows"]) == len(APPROVED + REJECTED)


def test_a_person_approved_the_staged_rollout_on_airflows_required_actions_panel(stack_run):
    seen, run = stack_run["staged"]["approval"], stack_run["staged"]["staged"]
    assert seen["ti_state"] == "awaiting_input" and seen["listed"]
    stages = _stages(stack_run, "staged")
    (canary,) = stages["stages"][0]["servers"]
    panel = seen["panel"]
    assert "stage 1 of 3 ended and passed its gate" in panel, panel[:3000]
    assert canary.upper() in panel and "patched" in panel and "healthy after" in panel
    later = stages["stages"][1]["servers"]
    assert f"stage 2: {', '.join(s.upper() for s in later)}" in panel  # who comes next
    assert seen["tables"] >= 1, "the canary's results are not shown as a table"
    approval = stages["approval"]
    assert approval["approved"] is True and approval["by"] == "admin"
    assert approval["note"] == staged_stack.APPROVE_COMMENT  # the comment typed in the panel
    assert run["tis"]["patch_linux_yum.rollout_rest"] == "success"
    # the other package was rejected: a clean stop, so the run succeeded
    assert run["run"]["state"] == "success", run["tis"]
    for name in ("ui-approval-required-actions", "ui-approval-panel", "ui-approval-answered"):
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000, name


def test_the_approved_rollout_ran_stage_after_stage_on_the_simulators_clock(stack_run):
    rows, sim = _rows(stack_run, "staged", APPROVED), stack_run["staged"]["sim"]
    assert sorted(rows) == APPROVED and {r["state"] for r in rows.values()} == {"patched"}
    stages = _stages(stack_run, "staged")["stages"]
    assert [len(s["servers"]) for s in stages] == [1, 2, 2]
    assert [s["gate"] for s in stages] == ["passed"] * 3
    for before, after in itertools.pairwise(stages):
        ended = max(window(sim, s)[1] for s in before["servers"])
        assert min(window(sim, s)[0] for s in after["servers"]) >= ended, (before, after)
    _released_everywhere(stack_run, "staged", APPROVED)


def test_no_two_servers_of_the_cluster_were_in_flight_at_once(stack_run):
    sim, stages = stack_run["staged"]["sim"], _stages(stack_run, "staged")["stages"]
    windows = sorted(window(sim, s) for s in CLUSTER)
    for (_, end), (start, _) in itertools.pairwise(windows):
        assert start >= end, windows
    where = {sid: s["index"] for s in stages for sid in s["servers"]}
    assert len({where[s] for s in CLUSTER}) > 1  # never whole in one stage


def test_a_rejection_over_rest_stops_the_rollout_cleanly_after_the_canary(stack_run):
    staged = stack_run["staged"]
    seen, run, sim = staged["rejection"], staged["staged"], staged["sim"]
    assert "error" not in seen, seen["error"]
    assert seen["ti_state"] == "awaiting_input" and seen["answer"]["chosen_options"] == ["Reject"]
    stages = _stages(stack_run, "staged", "windows_2012")
    assert f"stage 1 of {len(stages['stages'])}" in seen["question"]["body"]
    rows = _rows(stack_run, "staged", REJECTED)
    assert sorted(rows) == REJECTED  # the audit is complete: one row per server
    (canary,) = stages["stages"][0]["servers"]
    assert rows[canary]["state"] == "patched"
    rest = [s for s in REJECTED if s != canary]
    at = stages["approval"]["at"]
    assert {rows[s]["state"] for s in rest} == {"not_attempted"}
    assert {rows[s]["reason"] for s in rest} == {
        f"rollout stopped after stage 1: rejected by admin at {at} ({staged_stack.REJECT_COMMENT})"
    }
    assert all(sim["servers"][s]["executions"] == [] for s in rest)  # never sent the package
    tis = run["tis"]
    assert tis["patch_windows_2012.rollout_rest"] == "success" and tis["audit"] == "success"
    _released_everywhere(stack_run, "staged", REJECTED)
