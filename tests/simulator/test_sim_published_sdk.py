"""The simulator judged by the published Python SDK (``clc-sdk`` 2.x, PyPI).

The SDK lives in its own virtual environment (it is not a project dependency): ``make test``
creates ``.sdk-venv`` (``python3 -m venv .sdk-venv && .sdk-venv/bin/pip install clc-sdk==2.51``),
or point ``CLC_SDK_PYTHON`` at another interpreter that has it. ``sdk_driver.py`` runs under
that interpreter against a real simulator process and reports one JSON line per step.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
DRIVER = Path(__file__).with_name("sdk_driver.py")
SDK_PYTHON = Path(
    os.environ.get(
        "CLC_SDK_PYTHON", str(Path(__file__).resolve().parents[2] / ".sdk-venv" / "bin" / "python")
    )
)


def _sdk_available() -> bool:
    if not SDK_PYTHON.exists():
        return False
    probe = [str(SDK_PYTHON), "-c", "import clc; clc.v2.Account"]
    return subprocess.run(probe, capture_output=True, timeout=60).returncode == 0


@pytest.fixture(scope="module")
def sdk_steps(start_process) -> dict[str, dict]:
    if not _sdk_available():
        pytest.skip(
            f"no clc-sdk interpreter at {SDK_PYTHON}: create it with "
            "'python3 -m venv .sdk-venv && .sdk-venv/bin/pip install clc-sdk==2.51' (make test does) "
            "or set CLC_SDK_PYTHON"
        )
    sim = start_process("--fleet", "simulator/fleets/demo.yaml", "--time-scale", "0.01", "--seed", "2")
    run = subprocess.run([str(SDK_PYTHON), str(DRIVER), sim.url], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    steps = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    return {s["step"]: s for s in steps}


def step(steps: dict, name: str) -> dict:
    assert name in steps, f"the driver never reached {name!r}"
    assert steps[name]["ok"], steps[name]["detail"]
    return steps[name]["detail"]


def test_login_and_account(sdk_steps):
    account = step(sdk_steps, "account")
    assert account == {
        "alias": "DEMO",
        "business_name": "Demo Corporation",
        "primary_datacenter": "VA1",
        "status": "active",
        "datacenter_root_group": "VA1 Hardware",
    }
    assert step(sdk_steps, "get_session_form_login") == {"alias": "DEMO", "account": "DEMO"}


def test_server_get(sdk_steps):
    server = step(sdk_steps, "server_get")
    assert server["power_state"] == "started" and server["in_maintenance_mode"] is False


def test_snapshots_including_the_sdk_replace_path(sdk_steps):
    assert step(sdk_steps, "create_snapshot")["failed_requests"] == 0
    replaced = step(sdk_steps, "create_snapshot_replacing_the_first")
    assert replaced["failed_requests"] == 0 and len(replaced["snapshots"]) == 1


def test_maintenance_and_package_around_a_patch_reboot(sdk_steps):
    assert step(sdk_steps, "start_maintenance") == {"failed_requests": 0, "in_maintenance_mode": True}
    assert step(sdk_steps, "execute_package_job") == {"failed_requests": 0}
    stop = step(sdk_steps, "stop_maintenance_right_after_package_job")
    assert stop == {"failed_requests": 0, "in_maintenance_mode": False}
    mid = step(sdk_steps, "start_maintenance_mid_reboot")
    assert mid["power_state_when_requested"] == "stopped" and mid["failed_requests"] == 0
    assert mid["in_maintenance_mode"] is True and mid["power_state_when_done"] == "started"
    assert step(sdk_steps, "execution_completed")["initiations"] >= 2
    assert step(sdk_steps, "stop_maintenance_after_patching")["in_maintenance_mode"] is False


def test_restore_rolls_back_then_delete(sdk_steps):
    """The snapshot was taken before patching: after RestoreSnapshot the same patches are
    applicable again; the patch history is kept; DeleteSnapshot removes it."""
    restored = step(sdk_steps, "restore_snapshot")
    assert restored == {
        "failed_requests": 0,
        "power_state": "started",
        "snapshots": 1,
        "executions_kept": True,
    }
    again = step(sdk_steps, "patch_again_after_restore")
    assert again["failed_requests"] == 0 and again["first_initiation"].startswith("Installed 3 updates: ")
    assert step(sdk_steps, "delete_snapshot") == {"failed_requests": 0, "snapshots": []}
