"""`make up`: the Airflow UI on the demo fleet — api-server, scheduler, dag-processor and triggerer
(what `airflow standalone` runs) plus the CLC simulator, on this machine only.

The launcher starts each component itself rather than through `airflow standalone`, so that it
knows each one: a component that dies while starting is reported at once with its own log
lines, and a stop (Ctrl-C, SIGTERM, closed terminal) at any moment stops every process group
it started and waits until each process is gone before saying "Stopped.".
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from launcher.env import (
    CLC_CONN_ENV,
    PROJECT_ROOT,
    SIMPLE_AUTH_MANAGER,
    airflow_api_connection,
    airflow_env,
    clc_connection,
    side_ports_env,
    time_scale_env,
)
from launcher.ports import port_in_use
from launcher.processes import ComponentExited, Components, SimulatorProcess, log_tail, stop_groups

STATE = PROJECT_ROOT / ".demo"
#: Slower than the demo's 0.01 so a person can follow a run in the UI (a 30-minute patch: 90 s).
UI_TIME_SCALE = 0.05
FLEET = PROJECT_ROOT / "simulator" / "fleets" / "demo.yaml"
#: LocalExecutor starts `[core] parallelism` worker processes up front (32 by default, ~150 MB
#: each); a handful is plenty for the demo fleet on a laptop.
LOCAL_WORKERS = 4
#: what `airflow standalone` runs, each started as `airflow <name>`
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
HEALTH_TIMEOUT = 240.0
#: how much of a failed component's log to show (its error is at the end)
ERROR_LINES = 20
STOP_GRACE = 15.0
#: the UI user `make up` creates (simple auth manager, Admin role)
ADMIN = "admin"


@dataclass(frozen=True)
class Settings:
    """What the user chose: the two ports, the address both servers listen on, where state goes."""

    port: int
    sim_port: int
    bind: str
    #: AIRFLOW_HOME (metadata DB, generated password) is ``airflow/`` in it, the logs ``up/``
    state: Path = STATE

    @property
    def home(self) -> Path:
        return self.state / "airflow"

    @property
    def logs(self) -> Path:
        return self.state / "up"


def parse_args(argv: list[str] | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Command line first, then PATCHFLOW_* variables, then the defaults."""
    env = os.environ if environ is None else environ
    p = argparse.ArgumentParser(prog="make up", description="Airflow UI + CLC simulator on this machine")
    p.add_argument("--port", type=_port, default=env.get("PATCHFLOW_PORT", "8080"), help="Airflow UI/API")
    p.add_argument("--sim-port", type=_port, default=env.get("PATCHFLOW_SIM_PORT", "8899"), help="simulator")
    p.add_argument(
        "--bind",
        default=env.get("PATCHFLOW_BIND", "127.0.0.1"),
        help="address both servers listen on (0.0.0.0: every interface)",
    )
    p.add_argument("--state-dir", type=Path, default=STATE, help="AIRFLOW_HOME and logs (default .demo/)")
    args = p.parse_args(argv)
    if args.port == args.sim_port:
        p.error(f"the Airflow port and the simulator port are both {args.port}")
    return Settings(port=args.port, sim_port=args.sim_port, bind=args.bind, state=args.state_dir.resolve())


def _port(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a TCP port: {text!r}")
    return int(text)


def busy_ports_message(settings: Settings) -> str:
    """One line naming every chosen port already taken (and how to pick another), or ''."""
    busy = [
        f"{port} ({what}; choose another with {knob})"
        for port, what, knob in (
            (settings.port, "Airflow UI", "PORT=… or PATCHFLOW_PORT"),
            (settings.sim_port, "CLC simulator", "SIM_PORT=… or PATCHFLOW_SIM_PORT"),
        )
        if port_in_use(settings.bind, port)
    ]
    if not busy:
        return ""
    return f"make up: port already in use on {settings.bind}: " + ", ".join(busy)


def local_host(bind: str) -> str:
    """How this machine reaches a server listening on ``bind`` (URL form)."""
    host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(bind, bind)
    return f"[{host}]" if ":" in host else host


class StopRequest:
    """SIGINT, SIGTERM and SIGHUP only note the request; the launcher's loops act on it.

    Nothing is interrupted half-way (a process started but not yet recorded, a log half
    written), and no KeyboardInterrupt traceback reaches the user. Every wait below polls
    ``requested`` at least every half second.
    """

    def __init__(self) -> None:
        self.signum = 0
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._note)

    def _note(self, signum: int, _frame: object) -> None:
        self.signum = self.signum or signum

    @property
    def requested(self) -> bool:
        return self.signum != 0


class Stopped(Exception):
    """The user asked to stop before the stack was up."""


class Up:
    """One `make up` session: what it started, so that everything can be stopped."""

    def __init__(self, settings: Settings, stop: StopRequest) -> None:
        self.settings, self.stop = settings, stop
        self.components = Components(settings.logs)
        self.sim = SimulatorProcess(
            FLEET,
            time_scale=UI_TIME_SCALE,
            port=settings.sim_port,
            host=settings.bind,
            log_path=settings.logs / "simulator.log",
        )
        self.url = f"http://{local_host(settings.bind)}:{settings.port}"

    def start(self) -> None:
        """Simulator, database migration, the four components; returns once Airflow is healthy."""
        self.settings.logs.mkdir(parents=True, exist_ok=True)
        self.sim.start()
        sim_url = f"http://{local_host(self.settings.bind)}:{self.settings.sim_port}"
        print(f"CLC simulator: {sim_url}   (admin API: {sim_url}/_sim/health)", flush=True)
        password = admin_password(self.settings.home)
        env = airflow_env(self.settings.home, extra=self._airflow_settings(sim_url, password))
        airflow = str(Path(sys.executable).parent / "airflow")
        self._check_stop()
        self.components.start("db-migrate", [airflow, "db", "migrate"], env)
        self._wait(self._migrated, "the database migration")
        for name in COMPONENTS:
            self.components.start(name, [airflow, name], env)
        print(f"Airflow is starting at {self.url} (logs: {self.settings.logs}/) …", flush=True)
        self._wait(self._healthy, "Airflow to become healthy")

    def _airflow_settings(self, sim_url: str, password: str) -> dict[str, str]:
        return {
            CLC_CONN_ENV: clc_connection(sim_url),
            # the rollout and the audit keep the run's note up to date as the admin user
            "AIRFLOW_CONN_AIRFLOW_API": airflow_api_connection(self.url, login=ADMIN, password=password),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file(self.settings.home)),
            **time_scale_env(UI_TIME_SCALE),
            **side_ports_env(),
            "AIRFLOW__CORE__AUTH_MANAGER": SIMPLE_AUTH_MANAGER,
            "AIRFLOW__API__HOST": self.settings.bind,
            "AIRFLOW__API__PORT": str(self.settings.port),
            "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", str(LOCAL_WORKERS)),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
        }

    def _check_stop(self) -> None:
        if self.stop.requested:
            raise Stopped

    def _wait(self, done: Callable[[], bool], what: str) -> None:
        """Poll ``done()`` until true; a stop request or an exited component ends the wait at once."""
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while not done():
            self._check_stop()
            self.components.check(ERROR_LINES)
            if time.monotonic() > deadline:
                raise TimeoutError(f"gave up waiting for {what} after {HEALTH_TIMEOUT:.0f} s")
            time.sleep(0.5)

    def _migrated(self) -> bool:
        proc = self.components.procs["db-migrate"]
        if proc.poll() == 0:
            del self.components.procs["db-migrate"]
            return True
        return False

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/monitor/health", timeout=2) as resp:
                health = json.loads(resp.read())
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return all(health.get(c, {}).get("status") == "healthy" for c in ("scheduler", "triggerer"))

    def serve(self) -> None:
        """Until a stop request; a component (or the simulator) that exits ends it too."""
        while not self.stop.requested:
            self.components.check(ERROR_LINES)
            if self.sim.proc is not None and self.sim.proc.poll() is not None:
                raise ComponentExited(
                    "simulator", self.sim.proc.returncode, log_tail(self.settings.logs / "simulator.log")
                )
            time.sleep(0.5)

    def shutdown(self) -> bool:
        """Stop everything started; True once every process is gone."""
        procs = [*self.components.procs.values(), *([self.sim.proc] if self.sim.proc else [])]
        if not procs:
            return True
        print(("\n" if self.stop.requested else "") + "Stopping Airflow and the simulator …", flush=True)
        left = stop_groups(procs, STOP_GRACE)
        self.components.procs.clear()
        self.sim.proc = None
        if left:
            print(f"make up: processes {left} survived SIGKILL; see `ps -p {','.join(map(str, left))}`")
            return False
        print("Stopped.", flush=True)
        return True


def passwords_file(home: Path) -> Path:
    """Where the simple auth manager keeps the UI users' passwords (in AIRFLOW_HOME, kept across runs)."""
    return home / "simple_auth_manager_passwords.json.generated"


def admin_password(home: Path) -> str:
    """The admin's password: the one from an earlier `make up`, else a new one written before start.

    Known before the api-server starts, so the tasks' ``airflow_api`` connection can log in with it.
    """
    path = passwords_file(home)
    users = json.loads(path.read_text()) if path.exists() else {}
    if not users.get(ADMIN):
        users[ADMIN] = secrets.token_urlsafe(12)
        home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(users))
        path.chmod(0o600)
    return str(users[ADMIN])


def login_hint(home: Path) -> str:
    """The UI login, as the simple auth manager has it."""
    path = passwords_file(home)
    if not path.exists():
        return f"see {path}"
    users = json.loads(path.read_text())
    return ", ".join(f"user {u} / password {p}" for u, p in users.items())


def main(argv: list[str] | None = None) -> int:
    stop = StopRequest()
    settings = parse_args(argv)
    busy = busy_ports_message(settings)
    if busy:
        print(busy, file=sys.stderr)
        return 2
    up = Up(settings, stop)
    code = 0
    try:
        up.start()
        if settings.bind not in ("127.0.0.1", "localhost", "::1"):
            print(
                f"Listening on {settings.bind} ({socket.gethostname()}): anyone who can reach it can log in"
            )
        print(f"Airflow UI: {up.url}   log in with: {login_hint(settings.home)}")
        print("Trigger 'patch_fleet' with the ▶ button and its form. Ctrl-C stops everything.", flush=True)
        up.serve()
    except Stopped:
        pass
    except (ComponentExited, TimeoutError, RuntimeError) as exc:
        print(f"make up: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        if not up.shutdown():
            code = 1
    return code


if __name__ == "__main__":
    sys.exit(main())
