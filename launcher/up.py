"""`make up`: Airflow standalone plus the CLC simulator, for using the UI at http://localhost:8080.

Ctrl-C stops both (and every process they started). Nothing is left running.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from launcher.env import (
    CLC_CONN_ENV,
    PROJECT_ROOT,
    airflow_env,
    clc_connection,
    time_scale_env,
)
from launcher.processes import SimulatorProcess, stop_process_group

HOME = PROJECT_ROOT / ".demo" / "airflow"
#: Slower than the demo's 0.01 so a person can follow a run in the UI (a 30-minute patch: 90 s).
UI_TIME_SCALE = 0.05
FLEET = PROJECT_ROOT / "simulator" / "fleets" / "demo.yaml"


def login_hint(home: Path, timeout: float = 120.0) -> str:
    """The generated admin password, once standalone has written it."""
    path = home / "simple_auth_manager_passwords.json.generated"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            users = json.loads(path.read_text())
            return ", ".join(f"user {u} / password {p}" for u, p in users.items())
        time.sleep(1)
    return f"see {path}"


def wait_healthy(proc: subprocess.Popen, timeout: float = 240.0) -> bool:
    """True once the API server reports a healthy scheduler and triggerer."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen("http://localhost:8080/api/v2/monitor/health", timeout=5) as resp:
                health = json.loads(resp.read())
            if all(health.get(c, {}).get("status") == "healthy" for c in ("scheduler", "triggerer")):
                return True
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(2)
    return False


def main() -> int:
    HOME.mkdir(parents=True, exist_ok=True)
    sim = SimulatorProcess(FLEET, time_scale=UI_TIME_SCALE, port=8899, log_path=HOME.parent / "simulator.log")
    base = sim.start()
    env = airflow_env(HOME, extra={CLC_CONN_ENV: clc_connection(base), **time_scale_env(UI_TIME_SCALE)})
    airflow = str(Path(sys.executable).parent / "airflow")
    proc = subprocess.Popen(
        [airflow, "standalone"],
        env=env,
        cwd=PROJECT_ROOT,
        start_new_session=True,
        stdout=(HOME.parent / "standalone.log").open("a"),
        stderr=subprocess.STDOUT,
    )
    print(f"CLC simulator: {base}   (admin API: {base}/_sim/health)")
    print("Airflow is starting at http://localhost:8080 (log: .demo/standalone.log) …")
    if not wait_healthy(proc):
        print("Airflow did not come up; the end of .demo/standalone.log:")
        print("\n".join((HOME.parent / "standalone.log").read_text(errors="replace").splitlines()[-25:]))
        stop_process_group(proc)
        sim.stop()
        return 1
    print(f"Log in with: {login_hint(HOME)}")
    print("Trigger 'patch_fleet' with the ▶ button and its form. Ctrl-C stops everything.")
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        while not stopping and proc.poll() is None:
            time.sleep(0.5)
    finally:
        print("\nStopping Airflow and the simulator…")
        stop_process_group(proc)
        sim.stop()
        print("Stopped.")
    return 0 if stopping else (proc.returncode or 1)


if __name__ == "__main__":
    sys.exit(main())
