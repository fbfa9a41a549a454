"""The fault matrix's harness: a fresh simulator per scenario, faults, one run, three snapshots.

``Lab`` owns one simulator process (``--state-file`` on, so the checker can read the plan of
every execution: per-patch results and reboot windows). ``Lab.run`` snapshots the simulator,
runs ``patch_fleet`` with ``dag.test()`` in a subprocess (killed at the scenario's bound, I7),
snapshots it again, pushes the simulated clock hours ahead so that every job the run queued
lands, and snapshots the ``settled`` state the maintenance and scope checks need.

Timing: the simulator runs at ``TIME_SCALE`` (100x faster than real time) and every run gets
``AIRFLOW__PATCHFLOW__TIME_SCALE`` with the same value, so every patchflow timing (polls,
grace periods, maintenance and per-server timeouts, retry delays) shrinks by the same factor
and the races keep their production proportions.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from launcher.env import SIMULATOR_TIME_SCALE, time_scale_env
from launcher.processes import SimulatorProcess, stop_process_group
from simulator.fleet_file import FleetSpec, load_fleet_file
from tests.faults.invariants import (
    Expectations,
    RunRecord,
    SimSnapshot,
    Violation,
    check_invariants,
)
from tests.sim_client import SimulatorClient

ROOT = Path(__file__).resolve().parents[2]
FLEETS = Path(__file__).resolve().parent / "fleets"
FAULTS_FLEET = FLEETS / "faults.yaml"
ALIAS = "FLT"
USER = "flt.admin"
PLANTED_PASSWORD = "pw-PLANTED-5ecre7-c0ffee"
TIME_SCALE = SIMULATOR_TIME_SCALE
SETTLE_SECONDS = 6 * 3600
"""Simulated seconds the clock is pushed after a run so that every queued job has landed."""
DEFAULT_BOUND = 120.0
LINUX_PACKAGE = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"


class FaultKindUnsupported(AssertionError):
    """The simulator does not know a fault kind this scenario needs (not merged yet)."""


class SimAdmin(SimulatorClient):
    """The simulator's admin API, plus the few CLC calls a scenario needs to set the scene."""

    def state(self) -> dict:
        return self.call("GET", "/_sim/state")

    def clock(self) -> dict:
        return self.call("GET", "/_sim/clock")

    def advance(self, seconds: float) -> None:
        self.call("POST", "/_sim/clock/advance", {"seconds": seconds})

    def configure(self, **settings: Any) -> None:
        self.call("POST", "/_sim/config", settings)

    def fault(self, **spec: Any) -> dict:
        """Add one fault rule; a kind the simulator does not know fails the scenario by name."""
        try:
            return self.call("POST", "/_sim/faults", spec)
        except urllib.error.HTTPError as exc:
            message = exc.read().decode(errors="replace")
            if exc.code == 400 and "kind" in message:
                raise FaultKindUnsupported(
                    f"the simulator refused fault {spec}: {message} (fault kinds of issue 8 item 17)"
                ) from None
            raise

    def delay_queue(self, seconds: float, *, jobs: int | None = None) -> str:
        """Start queued jobs ``seconds`` (simulated) late: the ``queue_delay`` fault (for the next
        ``jobs`` jobs, or all) when the simulator has it, else its global ``queue_delay`` setting
        (every job). Returns which one was used."""
        spec: dict[str, Any] = {"kind": "queue_delay", "seconds": seconds}
        if jobs is not None:
            spec["count"] = jobs
        try:
            self.fault(**spec)
            return "fault"
        except FaultKindUnsupported:
            self.configure(queue_delay=seconds)
            return "config"

    def login(self, user: str = USER, password: str = PLANTED_PASSWORD) -> str:
        body = self.call("POST", "/v2/authentication/login", {"username": user, "password": password})
        return body["bearerToken"]

    def group_id(self, alias: str, path: str, token: str) -> str:
        """The id of the group at ``path`` (``VA1/Web/Deep``), found through the CLC API."""
        dc, *names = path.split("/")
        links = self.call("GET", f"/v2/datacenters/{alias}/{dc}?groupLinks=true", token=token)["links"]
        group = self.call(
            "GET", f"/v2/groups/{alias}/{next(x['id'] for x in links if x['rel'] == 'group')}", token=token
        )
        for name in names:
            group = next(g for g in group["groups"] if g["name"] == name)
        return group["id"]

    def execute_package(self, alias: str, ids: list[str], token: str) -> list[dict]:
        body = {"servers": ids, "package": {"packageId": LINUX_PACKAGE, "parameters": {}}}
        return self.call("POST", f"/v2/operations/{alias}/servers/executePackage", body, token=token)


def timing_env(scale: float = TIME_SCALE) -> dict[str, str]:
    """``[patchflow] time_scale`` equal to the simulator's: every patchflow timing shrinks alike."""
    return time_scale_env(scale)


def connection(base_url: str, *, password: str = PLANTED_PASSWORD, alias: str = ALIAS) -> str:
    base = base_url.rstrip("/")
    return json.dumps(
        {
            "conn_type": "http",
            "host": f"{base}/v2",
            "login": USER,
            "password": password,
            "extra": {"account_alias": alias, "patching_base_url": f"{base}/patching/rest", "timeout": 30},
        }
    )


def write_fleet(target: Path, source: Path = FAULTS_FLEET, *, clock_start: str | None = None) -> Path:
    """Copy a fleet file, optionally with the simulated clock's start (``clock.start``)."""
    doc = yaml.safe_load(source.read_text())
    if clock_start:
        doc["clock"] = {"start": clock_start}
    target.write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


@dataclass
class ScenarioResult:
    """The three snapshots of the simulator and what the run left behind."""

    before: SimSnapshot
    after: SimSnapshot
    settled: SimSnapshot
    run: RunRecord
    log: str

    def executed(self) -> set[str]:
        """Servers on which the simulator started an execution during the run."""
        return {
            sid
            for sid in self.after.server_ids
            if set(self.after.executions(sid)) - set(self.before.executions(sid))
        }

    def logins(self) -> int:
        return self.after.logins() - self.before.logins()

    def error_lines(self) -> list[str]:
        """Log lines of errors and exceptions: where a refused run names its reasons."""
        marks = ("[error", "exception", "error:", "invalid run parameter")
        return [line for line in self.log.splitlines() if any(m in line.lower() for m in marks)]


class Launcher:
    """Starts ``python -m tests.faults.runner <argv>`` as a process group of its own."""

    def start(self, argv: list[str], env: Mapping[str, str], log: Path) -> int:
        raise NotImplementedError

    def wait(self, pid: int, timeout: float) -> bool:
        """True when the run ended within ``timeout``; otherwise it is killed and False."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._alive(pid):
                return True
            time.sleep(0.2)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            gone = time.monotonic() + 3
            while self._alive(pid) and time.monotonic() < gone:
                time.sleep(0.1)
        return False

    def _alive(self, pid: int) -> bool:
        raise NotImplementedError

    def stop(self) -> None:
        """Nothing to stop by default."""


class SubprocessLauncher(Launcher):
    """A fresh interpreter per run (imports everything each time)."""

    def __init__(self) -> None:
        self.procs: dict[int, subprocess.Popen] = {}

    def start(self, argv: list[str], env: Mapping[str, str], log: Path) -> int:
        with log.open("w") as sink:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.runner", *argv],
                cwd=ROOT,
                env=dict(env),
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs[proc.pid] = proc
        return proc.pid

    def _alive(self, pid: int) -> bool:
        return self.procs[pid].poll() is None


class ForkLauncher(Launcher):
    """Forks each run from ``tests.faults.forkserver``, which has imported everything once."""

    def __init__(self, env: Mapping[str, str], log: Path) -> None:
        with log.open("w") as sink:
            self.server = subprocess.Popen(
                [sys.executable, "-m", "tests.faults.forkserver"],
                cwd=ROOT,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=sink,
                text=True,
                start_new_session=True,
            )
        assert self.server.stdout is not None
        first = self.server.stdout.readline()
        if not first.startswith("{") or not json.loads(first).get("ready"):
            self.stop()
            raise RuntimeError(f"the fork server did not start: {first!r} (see {log})")

    def start(self, argv: list[str], env: Mapping[str, str], log: Path) -> int:
        assert self.server.stdin is not None and self.server.stdout is not None
        self.server.stdin.write(json.dumps({"argv": argv, "env": dict(env), "log": str(log)}) + "\n")
        self.server.stdin.flush()
        return int(json.loads(self.server.stdout.readline())["pid"])

    def _alive(self, pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> None:
        stop_process_group(self.server, timeout=5)


def runner_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of every run: the test session's, the project's paths, the time scale."""
    env = dict(os.environ)
    env.update(timing_env())
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "plugins")])
    env.update(extra or {})
    return env


def start_launcher() -> Launcher:
    """The fork server when it starts, else (or with ``FAULTS_LAUNCHER=subprocess``) one
    interpreter per run."""
    if os.environ.get("FAULTS_LAUNCHER") == "subprocess":
        return SubprocessLauncher()
    log = Path(os.environ.get("AIRFLOW_HOME", tempfile.gettempdir())) / "faults-forkserver.log"
    try:
        return ForkLauncher(runner_env(), log)
    except (RuntimeError, OSError, ValueError) as exc:
        warnings.warn(f"fault matrix: one interpreter per run ({exc})", stacklevel=2)
        return SubprocessLauncher()


class Lab:
    """One simulator process for one scenario (see the module docstring)."""

    def __init__(self, home: Path, fleet_path: Path, launcher: Launcher) -> None:
        self.home, self.fleet_path, self.launcher = home, fleet_path, launcher
        self.state_file = home / "sim-state.json"
        self.fleet: FleetSpec = load_fleet_file(fleet_path)
        self.runs = 0
        self._process = SimulatorProcess(
            fleet_path,
            time_scale=TIME_SCALE,
            args=["--state-file", str(self.state_file)],
            log_path=home / "simulator.log",
        )
        self.sim = SimAdmin("")

    def start(self) -> Lab:
        self.sim = SimAdmin(self._process.start())
        return self

    def stop(self) -> None:
        self._process.stop()

    # --- snapshots -----------------------------------------------------------------------

    def snapshot(self) -> SimSnapshot:
        state, counters, clock = self.sim.state(), self.sim.counters(), self.sim.clock()
        wall = time.time()
        plans = {}
        if self.state_file.exists():
            saved = json.loads(self.state_file.read_text())
            plans = {e["id"]: e for e in saved.get("executions", [])}
        return SimSnapshot(state, counters, plans, float(clock["epoch"]), wall, float(clock["time_scale"]))

    # --- one run -------------------------------------------------------------------------

    def run(
        self,
        conf: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        bound: float = DEFAULT_BOUND,
        password: str = PLANTED_PASSWORD,
        extra_env: Mapping[str, str] | None = None,
    ) -> ScenarioResult:
        self.runs += 1
        folder = self.home / f"run{self.runs}"
        folder.mkdir(parents=True, exist_ok=True)
        before = self.snapshot()
        run, log = self._run_dag(dict(conf or {}), folder, run_id, bound, password, extra_env or {})
        after = self.snapshot()
        self.sim.advance(SETTLE_SECONDS)
        settled = self.snapshot()
        return ScenarioResult(before, after, settled, run, log)

    def _run_dag(
        self,
        conf: dict[str, Any],
        folder: Path,
        run_id: str | None,
        bound: float,
        password: str,
        extra_env: Mapping[str, str],
    ) -> tuple[RunRecord, str]:
        env = {"AIRFLOW_CONN_CLC_DEFAULT": connection(self.sim.base, password=password), **extra_env}
        started = time.monotonic()
        outcome, log = self.run_runner("patch_fleet", conf, folder, bound=bound, run_id=run_id, env=env)
        wall = time.monotonic() - started
        run_id = outcome.get("run_id")
        texts = {
            "run log": log,
            **files_as_text(self.home, self.home / "artifacts", self.home / "reports"),
            **_xcom_texts(run_id),
        }
        record = RunRecord(
            run_id=run_id,
            state=outcome.get("state"),
            wall_seconds=wall,
            bound_seconds=bound,
            audit=find_audit(self.home / "reports", run_id),
            texts=texts,
            tasks=outcome.get("tasks", {}),
        )
        return record, log

    def run_runner(
        self,
        dag_id: str,
        conf: Mapping[str, Any],
        folder: Path,
        *,
        bound: float = DEFAULT_BOUND,
        run_id: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], str]:
        """``dag.test()`` of ``dag_id`` in a process of its own, killed at ``bound``; (result, log)."""
        full_env = runner_env(
            {
                "PATCHFLOW_ARTIFACTS": str(self.home / "artifacts"),
                "PATCHFLOW_REPORTS": str(self.home / "reports"),
                **(env or {}),
            }
        )
        folder.mkdir(parents=True, exist_ok=True)
        result_file, log_file = folder / "result.json", folder / "run.log"
        argv = ["--dag-id", dag_id, "--conf", json.dumps(conf), "--result", str(result_file)]
        argv += ["--run-id", run_id] if run_id else []
        self.launcher.wait(self.launcher.start(argv, full_env, log_file), bound)
        outcome = json.loads(result_file.read_text()) if result_file.exists() else {}
        return outcome, log_file.read_text(errors="replace")

    # --- what the selection allows -------------------------------------------------------

    def servers_of(self, alias: str = ALIAS, data_centers: Iterable[str] = ()) -> frozenset[str]:
        dcs = {d.upper() for d in data_centers}
        return frozenset(
            s.name.lower()
            for s in self.fleet.servers
            if s.account == alias and (not dcs or s.data_center.upper() in dcs)
        )

    def expectations(
        self,
        conf: Mapping[str, Any] | None = None,
        *,
        in_scope: Iterable[str] | None = None,
        refused: bool = False,
        release_refused: Iterable[str] = (),
    ) -> Expectations:
        """Expectations of a run with ``conf``; ``refused``: it must stop before touching anything.

        Without ``in_scope`` the selection is the alias's servers in the selected data centers,
        narrowed by the allow- and deny-lists (groups: pass ``in_scope``).
        """
        conf = conf or {}
        alias = str(conf.get("account_alias") or ALIAS).upper()
        inventoried = self.servers_of(alias, conf.get("data_centers") or ())
        if in_scope is None:
            allow = {s.lower() for s in conf.get("server_allow_list") or []}
            deny = {s.lower() for s in conf.get("server_deny_list") or []}
            in_scope = {s for s in inventoried if (not allow or s in allow) and s not in deny}
        return Expectations(
            alias=alias,
            in_scope=frozenset() if refused else frozenset(s.lower() for s in in_scope),
            inventoried=None if refused else inventoried,
            secrets=(PLANTED_PASSWORD,),
            release_refused=frozenset(release_refused),
        )


def find_audit(reports: Path, run_id: str | None) -> dict | None:
    """The sealed audit document of ``run_id`` under ``reports``, found by the run id it records."""
    if not run_id:
        return None
    for path in sorted((reports / "runs").glob("*/audit.json")):
        document = json.loads(path.read_text())
        if (document.get("run") or {}).get("run_id") == run_id:
            return document
    return None


def files_as_text(root: Path, *folders: Path) -> dict[str, str]:
    """Every file under ``folders`` as text, keyed by its path relative to ``root`` (for I6)."""
    texts = {}
    for folder in folders:
        for path in folder.rglob("*") if folder.exists() else ():
            if path.is_file():
                texts[str(path.relative_to(root))] = path.read_text(errors="replace")
    return texts


def _xcom_texts(run_id: str | None) -> dict[str, str]:
    """Every XCom value and rendered template field of the run, from the metadata DB (SQLite)."""
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    match = re.match(r"sqlite:///(.+)", url)
    if not run_id or not match:
        return {}
    texts = {}
    with sqlite3.connect(match.group(1)) as db:
        for task_id, key, value in db.execute(
            "SELECT task_id, key, value FROM xcom WHERE dag_id = 'patch_fleet' AND run_id = ?", (run_id,)
        ):
            texts[f"XCom {task_id}.{key}"] = str(value)
        for task_id, fields in db.execute(
            "SELECT task_id, rendered_fields FROM rendered_task_instance_fields "
            "WHERE dag_id = 'patch_fleet' AND run_id = ?",
            (run_id,),
        ):
            texts[f"rendered fields of {task_id}"] = str(fields)
    return texts


def problems(result: ScenarioResult, expect: Expectations, **claims: bool) -> list[str]:
    """Every violated invariant (each naming its server) and every false scenario claim.

    ``claims`` are the scenario's own promises, by a name that says what should be true
    (``rollout_succeeded=...``); they are reported with the invariants, so one failure never
    hides another.
    """
    violations: list[Violation] = check_invariants(
        result.before, result.after, result.settled, result.run, expect
    )
    broken = [name.replace("_", " ") for name, holds in claims.items() if not holds]
    if not (violations or broken):
        return []
    return [
        f"run {result.run.run_id} (state {result.run.state}, {result.run.wall_seconds:.0f} s), "
        f"tasks {_task_states(result)}:",
        *(f"  - {v}" for v in violations),
        *(f"  - scenario: not true that {claim}" for claim in broken),
    ]


def assert_invariants(result: ScenarioResult, expect: Expectations, **claims: bool) -> None:
    """Fail with every violated invariant and false scenario claim of one run (see ``problems``)."""
    found = problems(result, expect, **claims)
    assert not found, "\n".join(found)


def _task_states(result: ScenarioResult) -> dict[str, str]:
    return {task: info.get("state", "?") for task, info in sorted(result.run.tasks.items())}
