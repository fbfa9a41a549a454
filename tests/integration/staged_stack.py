"""The full-stack test's staged rollout: a small fleet of the sub-account E2EC
(tests/fleets/e2e.yaml) in one run of ``patch_fleet``, in stages 1, 2, rest with approval and a
health probe (checked in the real triggerer), one package approved and the other rejected:

- APPROVED (linux_yum, with a cluster of three, max_per_cluster 1): a person approves the rest in
  a real browser, on the approval task's Required actions panel;
- REJECTED (windows_2012): a person rejects through Airflow's public REST API (the call the UI
  makes), as soon as the question is asked.

An unhealthy canary halting a rollout is the same rollout code whatever runs it; dag.test covers it
(tests/integration/test_staged_rollout_dag.py), which keeps a third queued run out of CI's time.

The assertions (in test_full_stack.py) read what the simulator ran, not what the DAG reports.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
from pathlib import Path
from typing import Any

from tests.integration.browser import sign_in

APPROVED = ["va1e2eca01", "va1e2eca02", "va1e2eca03", "va1e2eca04", "va1e2eca05"]
CLUSTER = ["va1e2eca03", "va1e2eca04", "va1e2eca05"]
REJECTED = ["va1e2ecr01", "va1e2ecr02", "va1e2ecr03"]
REJECT_COMMENT = "canary looks wrong"
APPROVE_COMMENT = "canary fine, go on"
LINUX_APPROVE, WINDOWS_APPROVE = "patch_linux_yum.approve", "patch_windows_2012.approve"

_COMMON = {
    "account_alias": "E2EC",
    "health_probe": "{custom[healthUrl]}",
    "server_timeout_minutes": 60,  # real minutes x time_scale: 36 s, far more than any server needs
    "max_concurrency": "10",
    "approval": True,
    "approval_timeout_minutes": 1440,  # 864 s here: only a person answers
}
CONFS: dict[str, dict[str, Any]] = {
    "staged": {
        **_COMMON,
        "server_allow_list": APPROVED + REJECTED,
        "waves": ["1", "2", "100%"],
        "max_per_cluster": 1,
        # waits in the triggerer: the browser run takes the default (the worker), so this run is
        # the one that runs PatchCompletionTrigger, health probe and all, in the real triggerer
        "deferrable": True,
    },
}


def start_staged_runs(stack: Any) -> dict[str, str]:
    """Trigger the staged run; its run id by name."""
    return {name: stack.trigger("patch_fleet", conf) for name, conf in CONFS.items()}


def _ti_path(run_id: str, task_id: str) -> str:
    return f"/api/v2/dags/patch_fleet/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"


def wait_for_question(stack: Any, run_id: str, task_id: str, timeout: float = 900.0) -> dict:
    """The approval task instance, once it waits for a person (``awaiting_input``); the run may
    still be queued behind another (``patch_fleet`` runs one at a time)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            ti = stack.api("GET", _ti_path(run_id, task_id))
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                raise
            ti = {"state": None}  # the run has not started: no task instances yet
        if ti["state"] == "awaiting_input" or time.monotonic() > deadline:
            return ti
        if ti["state"] in ("success", "failed", "skipped", "upstream_failed"):
            return ti  # answered without asking: the test says so
        time.sleep(1)


class Rejecter(threading.Thread):
    """A person rejecting REJECTED's rest through ``PATCH …/hitlDetails``, as soon as it is asked."""

    def __init__(self, stack: Any, run_id: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.run_id = stack, run_id
        self.seen: dict[str, Any] = {}

    def run(self) -> None:
        path = _ti_path(self.run_id, WINDOWS_APPROVE) + "/-1/hitlDetails"
        try:
            self.seen["ti_state"] = wait_for_question(self.stack, self.run_id, WINDOWS_APPROVE)["state"]
            self.seen["question"] = self.stack.api("GET", path)
            self.seen["answer"] = self.stack.api(
                "PATCH", path, {"chosen_options": ["Reject"], "params_input": {"comment": REJECT_COMMENT}}
            )
        except (urllib.error.URLError, KeyError, TimeoutError) as exc:
            self.seen["error"] = repr(exc)


def approve_in_browser(
    stack: Any, run_id: str, shots: Path, chromium: str, timeout_ms: float
) -> dict[str, Any]:
    """A person approves APPROVED's rest in Airflow's own UI: the Required actions page lists the
    question, the approval task's panel shows the canary's results, and the Approve button answers."""
    from playwright.sync_api import expect, sync_playwright

    seen: dict[str, Any] = {"ti_state": wait_for_question(stack, run_id, LINUX_APPROVE)["state"]}
    base = f"http://127.0.0.1:{stack.port}"
    quoted = urllib.parse.quote(run_id, safe="")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        page.set_default_timeout(timeout_ms)
        try:
            sign_in(page, base, stack.password)

            page.goto(base + "/required_actions")
            listing = page.get_by_text("Continue the linux_yum rollout after its first stage?").first
            expect(listing).to_be_visible(timeout=60_000)
            seen["listed"] = True
            page.screenshot(path=str(shots / "ui-approval-required-actions.png"), full_page=True)

            page.goto(f"{base}/dags/patch_fleet/runs/{quoted}/tasks/{LINUX_APPROVE}/required_actions")
            approve = page.get_by_role("button", name="Approve", exact=True)
            expect(approve).to_be_visible(timeout=60_000)
            seen["panel"] = page.locator("body").inner_text()
            seen["tables"] = page.locator("table").count()
            page.locator("[name=element_comment]").fill(APPROVE_COMMENT)
            page.screenshot(path=str(shots / "ui-approval-panel.png"), full_page=True)
            approve.click()
            expect(page.get_by_text("Response received at", exact=False).first).to_be_visible(timeout=60_000)
            page.screenshot(path=str(shots / "ui-approval-answered.png"), full_page=True)
        except Exception:
            try:
                page.screenshot(path=str(shots / "ui-approval-failure.png"), timeout=10_000)
            except Exception as exc:  # never hide the real error
                print(f"no failure screenshot: {exc}")
            raise
        finally:
            browser.close()
    return seen


def collect(stack: Any, sim: Any, home: Path, run_ids: dict[str, str], timeout: float = 600.0) -> dict:
    """Each staged run once it ended: Airflow's run and task states, its audit rows and each
    package's stages, and the simulator's state (executions with their start and end on its clock,
    maintenance flags)."""
    from include.reporting.evidence_pack import find_pack

    out: dict[str, Any] = {}
    for name, run_id in run_ids.items():
        run = stack.wait_for_run("patch_fleet", run_id, timeout=timeout)
        pack = find_pack(home / "reports", run_id)
        audit = json.loads((Path(str(pack.path)) / "audit.json").read_text()) if pack else {}
        out[name] = {
            "run": run,
            "tis": {ti["task_id"]: ti["state"] for ti in stack.task_instances("patch_fleet", run_id)},
            "rows": {r["server_id"]: r for r in audit.get("servers") or []},
            "stages": (audit.get("run") or {}).get("stages") or {},
        }
    out["sim"] = sim.call("GET", "/_sim/state")
    return out


def window(sim_state: dict, sid: str) -> tuple[str, str]:
    """The one execution of ``sid`` as the simulator ran it: (start, end) on its clock."""
    (eid,) = sim_state["servers"][sid]["executions"]
    execution = sim_state["executions"][eid]
    return execution["start_time"], execution["end_time"]
