"""Drive the simulator with the published CenturyLink Cloud Python SDK (clc-sdk 2.x).

Run by ``test_sim_published_sdk.py`` with the Python of a separate virtual environment that
has ``clc-sdk`` installed (the SDK is not a project dependency and is never imported by the
project). Usage: ``<sdk-python> sdk_driver.py <simulator base URL>``.

Every step prints one JSON line ``{"step", "ok", "detail"}`` and the driver carries on after
a failed step, so one run reports everything that works and everything that does not.
The SDK has no client for the patching service: completion of a patch run is read from the
patching summary with plain ``requests`` and the SDK's own bearer token.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

import clc
import requests

LINUX_PACKAGE = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"
SERVER = "VA1DEMOWEB01"
POLL = 0.1  # wall seconds between the SDK's queue polls (its default is 2)


def report(step: str, ok: bool, detail) -> None:
    print(json.dumps({"step": step, "ok": ok, "detail": detail}), flush=True)


def run(step: str, action) -> object:
    """Run one step; report its result or the exception it raised."""
    try:
        detail = action()
    except Exception as exc:  # the point is to see what the SDK meets
        report(step, False, f"{type(exc).__name__}: {exc} | {traceback.format_exc(limit=3)}")
        return None
    report(step, True, detail)
    return detail


def patching_summary(base: str, server_id: str) -> list:
    url = f"{base}/patching/rest/servers/{clc.ALIAS}/server/{server_id}/patch"
    r = requests.get(url, headers={"Authorization": f"Bearer {clc._LOGIN_TOKEN_V2}"}, timeout=10)
    r.raise_for_status()
    return r.json()


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"waited {timeout} s for {what}")


def login_and_account(base: str) -> None:
    clc.v2.SetCredentials("demo.admin", "demo-password")

    def account():
        acct = clc.v2.Account()
        dc = acct.PrimaryDatacenter()
        return {
            "alias": str(acct),
            "business_name": acct.business_name,
            "primary_datacenter": acct.primary_datacenter,
            "status": acct.status,
            "datacenter_root_group": dc.root_group_name,
        }

    run("account", account)

    def form_login_session():
        session = clc.v2.get_session("demo.admin", "demo-password")  # a form-encoded login
        return {"alias": session["alias"], "account": str(clc.v2.Account(session=session))}

    run("get_session_form_login", form_login_session)


def server_steps(base: str) -> None:
    def get_server():
        server = clc.v2.Server(SERVER)
        return {
            "id": server.id,
            "power_state": server.power_state,
            "in_maintenance_mode": server.in_maintenance_mode,
            "os": server.os,
        }

    run("server_get", get_server)

    def snapshot():
        server = clc.v2.Server(SERVER)
        failures = server.CreateSnapshot(expiration_days=3).WaitUntilComplete(poll_freq=POLL)
        server.Refresh()
        return {"failed_requests": failures, "snapshots": server.GetSnapshots()}

    run("create_snapshot", snapshot)
    run("create_snapshot_replacing_the_first", snapshot)  # the SDK deletes the old one first

    def start_maintenance():
        server = clc.v2.Server(SERVER)
        failures = server.StartMaintenance().WaitUntilComplete(poll_freq=POLL)
        server.Refresh()
        return {"failed_requests": failures, "in_maintenance_mode": server.in_maintenance_mode}

    run("start_maintenance", start_maintenance)


def patch_steps(base: str) -> None:
    def execute_package():
        server = clc.v2.Server(SERVER)
        requests_ = server.ExecutePackage(LINUX_PACKAGE, {"patch.debug.mode": "false"})
        return {"failed_requests": requests_.WaitUntilComplete(poll_freq=POLL)}

    run("execute_package_job", execute_package)

    def stop_right_after_the_job():
        server = clc.v2.Server(SERVER)
        failures = server.StopMaintenance().WaitUntilComplete(poll_freq=POLL)
        server.Refresh()
        return {"failed_requests": failures, "in_maintenance_mode": server.in_maintenance_mode}

    run("stop_maintenance_right_after_package_job", stop_right_after_the_job)

    def start_mid_reboot():
        wait_for(lambda: clc.v2.Server(SERVER).power_state == "stopped", 60, "the patch reboot")
        server = clc.v2.Server(SERVER)
        queued_while = server.power_state
        failures = server.StartMaintenance().WaitUntilComplete(poll_freq=POLL)
        server.Refresh()
        return {
            "power_state_when_requested": queued_while,
            "failed_requests": failures,
            "in_maintenance_mode": server.in_maintenance_mode,
            "power_state_when_done": server.power_state,
        }

    run("start_maintenance_mid_reboot", start_mid_reboot)

    def completion():
        done = wait_for(
            lambda: [e for e in patching_summary(base, SERVER.lower()) if e["status"] == "completed"],
            120,
            "the execution to complete",
        )
        return {"execution_id": done[-1]["execution_id"], "initiations": len(done[-1]["init_messages"])}

    run("execution_completed", completion)

    def stop_after():
        server = clc.v2.Server(SERVER)
        failures = server.StopMaintenance().WaitUntilComplete(poll_freq=POLL)
        server.Refresh()
        return {"failed_requests": failures, "in_maintenance_mode": server.in_maintenance_mode}

    run("stop_maintenance_after_patching", stop_after)


def revert_steps(base: str) -> None:
    """Restore the snapshot taken before patching, patch again, delete the snapshot."""

    def restore():
        before = patching_summary(base, SERVER.lower())
        server = clc.v2.Server(SERVER)
        failures = server.RestoreSnapshot().WaitUntilComplete(poll_freq=POLL)  # an empty form POST
        server.Refresh()
        return {
            "failed_requests": failures,
            "power_state": server.power_state,
            "snapshots": len(server.GetSnapshots()),
            "executions_kept": patching_summary(base, SERVER.lower()) == before,
        }

    run("restore_snapshot", restore)

    def patch_again():
        known = {e["execution_id"] for e in patching_summary(base, SERVER.lower())}
        server = clc.v2.Server(SERVER)
        failures = server.ExecutePackage(LINUX_PACKAGE, {}).WaitUntilComplete(poll_freq=POLL)
        new = wait_for(
            lambda: [
                e
                for e in patching_summary(base, SERVER.lower())
                if e["execution_id"] not in known and e["status"] == "completed"
            ],
            120,
            "the execution after the restore",
        )
        return {
            "failed_requests": failures,
            "first_initiation": new[0]["init_messages"][0]["init_end_message"],
        }

    run("patch_again_after_restore", patch_again)

    def delete():
        server = clc.v2.Server(SERVER)
        failures = server.DeleteSnapshot().WaitUntilComplete(poll_freq=POLL)  # a DELETE per snapshot
        server.Refresh()
        return {"failed_requests": failures, "snapshots": server.GetSnapshots()}

    run("delete_snapshot", delete)


def main(base: str) -> int:
    clc.defaults.ENDPOINT_URL_V2 = base.rstrip("/")  # the SDK builds "<ENDPOINT_URL_V2>/v2/<path>"
    login_and_account(base)
    server_steps(base)
    patch_steps(base)
    revert_steps(base)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
