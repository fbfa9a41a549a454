"""Audit rows and run metadata that follow the data contract, shared by the reporting tests.

A plain module with a unique name (not conftest.py): other test folders have their own conftest.
"""

from __future__ import annotations

from typing import Any

LINUX_PACKAGE = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"
WINDOWS_PACKAGE = "b229535c-a313-4a31-baf8-6aa71ff4b9ed"
HOSTILE = "<script>alert(1)</script>"


def make_row(server_id: str, state: str = "patched", **overrides: Any) -> dict[str, Any]:
    """One audit row; ``state`` picks sensible evidence, ``overrides`` replace any field."""
    dc = server_id[:3].upper()
    attempted = state in {"patched", "patched_no_updates", "failed", "timed_out", "reverted", "revert_failed"}
    windows = "win" in server_id
    row: dict[str, Any] = {
        "server_id": server_id,
        "server_name": server_id.upper(),
        "description": f"{server_id} demo server",
        "account_alias": "DEMO",
        "data_center": dc,
        "group_id": "g-web",
        "group_name": "Web",
        "os": "windows2012R2DataCenter_64Bit" if windows else "centOS6_64Bit",
        "os_type": "Windows 2012 R2 Datacenter 64-bit" if windows else "CentOS 6 64-bit",
        "os_family": "windows" if windows else "linux",
        "package_id": (WINDOWS_PACKAGE if windows else LINUX_PACKAGE) if attempted else None,
        "state": state,
        "reason": "" if state in {"patched", "patched_no_updates"} else f"reason for {state}",
        "execution_id": f"{dc}-{100000 + sum(map(ord, server_id)):06d}" if attempted else None,
        "queue_job_id": f"{dc.lower()}-81323" if attempted else None,
        "patches_installed": 0,
        "patches_failed": 0,
        "reboots": 0,
        "started_at": "2026-11-27T14:00:00Z" if attempted else None,
        "ended_at": "2026-11-27T14:20:00Z" if attempted else None,
        "observed_at": "2026-11-27T14:20:04Z" if attempted else None,
        "maintenance": "released" if attempted else "not_used",
        "maintenance_note": "",
        "patches": [],
    }
    if state == "patched":
        row["patches"] = [
            {
                "name": "openssl-1.0.1e-58",
                "kb": None,
                "result_code": "0",
                "status": "completed",
                "start_time": "2026-11-27T14:01:00Z",
                "end_time": "2026-11-27T14:05:00Z",
            },
            {
                "name": "bash-4.1.2-48",
                "kb": None,
                "result_code": "0",
                "status": "completed",
                "start_time": "2026-11-27T14:05:00Z",
                "end_time": "2026-11-27T14:06:00Z",
            },
        ]
        row["patches_installed"] = 2
        row["reboots"] = 1
    elif state == "failed":
        row["patches"] = [
            {
                "name": "KB4012212",
                "kb": "KB4012212",
                "result_code": "0x80070005",
                "status": "failed",
                "start_time": "2026-11-27T14:02:00Z",
                "end_time": "2026-11-27T14:03:00Z",
            },
        ]
        row["patches_failed"] = 1
    row.update(overrides)
    return row


def fleet_rows() -> list[dict[str, Any]]:
    """A small mixed fleet: every interesting state, two data centers, a hostile description."""
    return [
        make_row("va1demoweb01", "patched", description=HOSTILE),
        make_row("va1demoweb02", "patched_no_updates"),
        make_row("va1demowin01", "failed", reason="patch KB4012212 failed with 0x80070005"),
        make_row(
            "uc1demodb01",
            "timed_out",
            execution_id=None,
            queue_job_id="uc1-5",
            reason="no execution appeared within 30 min",
        ),
        make_row(
            "uc1demoold01",
            "skipped_unsupported_os",
            os="ubuntu14_64Bit",
            os_type="Ubuntu 14",
            reason="no patch package for ubuntu14_64Bit",
        ),
        make_row("uc1demooff01", "skipped_not_running", reason="power state is stopped"),
        make_row("va1demoapp01", "not_attempted", reason="error budget exhausted"),
        make_row(
            "va1demotpl01", "skipped_template", os_family="other", os="freeBSD_64Bit", reason="template"
        ),
        make_row("va1demoformula", "patched_no_updates", description='=HYPERLINK("http://x")'),
    ]


def make_run(run_id: str = "manual__2026-11-27T14:00:00+00:00", **overrides: Any) -> dict[str, Any]:
    run: dict[str, Any] = {
        "dag_id": "patch_fleet",
        "run_id": run_id,
        "run_type": "manual",
        "triggered_by": "alice",
        "params": {"data_centers": ["VA1", "UC1"], "dry_run": False},
        "started_at": "2026-11-27T14:00:00Z",
        "ended_at": "2026-11-27T14:30:00Z",
        "account_alias": "DEMO",
        "dry_run": False,
        "software": {"patchflow": "0.1.0", "apache-airflow": "3.3.2", "python": "3.11.7"},
    }
    run.update(overrides)
    return run
