"""`make demo`: the patch DAG end to end on the demo fleet, with no services at all.

Two scenarios, run side by side, each on its own CLC simulator (its own copy of the demo fleet)
and its own AIRFLOW_HOME with its own SQLite metadata DB, reports and artifacts under
``.demo/<scenario>/`` — nothing is shared, so neither can see or disturb the other:

- **full**: the whole fleet at once with the snapshot safety net as strict as it goes, so its
  report shows a snapshot per patched server, a failed server reverted and two servers that
  cannot have a snapshot left alone.
- **staged**: the packages in stages (1, 3, 50%, rest), each server's service health-checked
  after patching; UC1DEMOAPP03 turns unhealthy once patched, so the Linux rollout halts at its
  stage — that run fails on purpose, and the summary shows each stage, its gate and why the rest
  was not patched.

Each runs ``airflow dags test patch_fleet`` and then ``airflow dags test compliance_report`` over
its own sealed reports (what the ``patch_audit`` asset would trigger). The summaries are printed
one after the other once both are done, then where every report is. ``--staged``
(``make demo-staged``) runs the staged scenario alone.

Within one run the packages roll out side by side, as in a deployment: ``dags test
--use-executor`` on LocalExecutor, with the Execution API and a triggerer the scenario starts
(``launcher.demo_executor``). ``--one-at-a-time`` is plain ``dags test``: one task after another.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from include.patching.states import PROBLEM_STATES
from launcher.demo_executor import airflow_cmd, deployment_parts, run_watched
from launcher.env import (
    CLC_CONN_ENV,
    PROJECT_ROOT,
    SIMULATOR_TIME_SCALE,
    airflow_env,
    clc_connection,
    time_scale_env,
)
from launcher.processes import SimulatorProcess

DEMO_DIR = PROJECT_ROOT / ".demo"
FLEET = PROJECT_ROOT / "simulator" / "fleets" / "demo.yaml"
# 10% error budget per package: the demo fleet's two failing servers stay within it.
# The snapshot safety net on, as strict as it gets, so the report shows all of it: every patched
# server snapshotted first (kept for the default 3 days), the failing IIS server (VA1DEMOWIN02)
# restored to its snapshot (`reverted`), and the two servers that cannot have one of this run —
# VA1DEMODB01 (its owner's snapshot) and UC1DEMOBIG01 (2 TB) — not patched (`skipped_no_snapshot`).
DEMO_CONF = json.dumps({"max_errors": "10%", "snapshot": "required", "revert_on_failure": True})
# Staged: a canary, then 3, then half, then the rest, each server's service checked after patching.
STAGED_CONF = json.dumps(
    {"max_errors": "10%", "waves": ["1", "3", "50%", "100%"], "health_probe": "{custom[healthUrl]}"}
)
#: How the packages of one run roll out (README, "make demo").
SIDE_BY_SIDE_NOTE = (
    "Within a run the packages roll out side by side, as in a deployment: `airflow dags test "
    "--use-executor` (LocalExecutor) with an Execution API server and a triggerer per scenario."
)
SEQUENTIAL_NOTE = (
    "Within a run the packages roll out one after the other (--one-at-a-time: plain `airflow dags "
    "test` runs one task at a time, deferred waits inline)."
)


@dataclass(frozen=True)
class Scenario:
    """One demo run: what it shows, its trigger conf, and whether its DAG run fails on purpose."""

    key: str
    title: str
    shows: str
    conf: str
    halts_on_purpose: bool = False

    def state(self, root: Path = DEMO_DIR) -> Path:
        """Its own folder: AIRFLOW_HOME (``airflow/``), reports, artifacts, logs, token cache."""
        return root / self.key


FULL = Scenario(
    "full",
    "whole fleet, snapshot safety net",
    "every package at once; a snapshot before each patch, a failed server reverted to it",
    DEMO_CONF,
)
STAGED = Scenario(
    "staged",
    "staged rollout with health gates",
    "stages 1, 3, 50%, rest; each server's service checked; UC1DEMOAPP03 turns unhealthy "
    "on purpose, so the Linux rollout halts at its stage",
    STAGED_CONF,
    halts_on_purpose=True,
)
SCENARIOS = (FULL, STAGED)


@dataclass
class Outcome:
    """How one scenario went, judged from exit codes and its own sealed evidence."""

    scenario: Scenario
    state: Path
    dag_code: int = 1
    pack: Path | None = None
    compliance_code: int = 1
    seconds: float = 0.0
    error: str = ""

    @property
    def log(self) -> Path:
        return self.state / "demo.log"

    @property
    def reports(self) -> Path:
        return self.state / "reports"

    def halted(self) -> bool:
        """The sealed audit records a rollout halted by a failed stage gate."""
        if self.pack is None:
            return False
        stages = json.loads((self.pack / "audit.json").read_text())["run"].get("stages") or {}
        halts = [info["halt"] for info in stages.values() if info.get("halt")]
        return any(halt.get("kind", "gate") == "gate" for halt in halts)

    def verdict(self) -> tuple[bool, str]:
        """(as intended?, one line saying how the scenario ended)."""
        if self.error:
            return False, self.error
        if self.pack is None:
            return False, f"patch_fleet sealed no evidence pack (exit {self.dag_code}); see {self.log}"
        if self.compliance_code != 0:
            return False, f"compliance_report failed (exit {self.compliance_code}); see {self.log}"
        if self.scenario.halts_on_purpose:
            if self.dag_code != 0 and self.halted():
                return True, "patch_fleet failed, as this scenario intends: a stage failed its health gate"
            if self.dag_code == 0:
                return False, "patch_fleet succeeded, but this scenario should have halted at a health gate"
            return False, f"patch_fleet failed without a halted stage; see {self.log}"
        if self.dag_code != 0:
            return False, f"patch_fleet failed; see {self.log} for the failing task"
        return True, "patch_fleet succeeded"


def airflow(args: list[str], env: dict[str, str], log: Path) -> int:
    """Run an Airflow CLI command, its output going to ``log``."""
    with log.open("a") as sink:
        sink.write(f"\n$ airflow {' '.join(args)}\n")
        sink.flush()
        return subprocess.call(
            [str(Path(sys.executable).parent / "airflow"), *args],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )


def latest_pack(reports: Path) -> Path | None:
    runs = sorted((reports / "runs").glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    return runs[-1].parent if runs else None


def fresh_state(state: Path) -> None:
    """Clear what a previous demo left, except the migrated metadata DB (slow to create).

    Each demo starts a new simulator, so reports, artifacts and tokens of an earlier one
    describe a fleet that no longer exists: compliance would count their servers.
    """
    for name in ("reports", "artifacts", "tokens", "airflow/logs"):
        shutil.rmtree(state / name, ignore_errors=True)
    state.mkdir(parents=True, exist_ok=True)
    for name in ("demo.log", "simulator.log"):
        (state / name).write_text("")


class Stopped(Exception):
    """Ctrl-C in the launcher: the scenario stops where it is."""


def run_scenario(
    scenario: Scenario,
    state: Path,
    say: Callable[[str], None],
    stop: threading.Event | None = None,
    side_by_side: bool = True,
) -> Outcome:
    """Simulator, metadata DB, patch_fleet and compliance_report for one scenario; all stopped after."""
    stop = stop or threading.Event()
    outcome = Outcome(scenario, state)
    started = time.monotonic()
    fresh_state(state)
    home = state / "airflow"

    def check_stop() -> None:
        if stop.is_set():
            raise Stopped

    try:
        sim_log = state / "simulator.log"
        with SimulatorProcess(FLEET, time_scale=SIMULATOR_TIME_SCALE, log_path=sim_log) as sim:
            say(f"CLC simulator (its own demo fleet) at {sim.base_url}")
            extra = {
                CLC_CONN_ENV: clc_connection(sim.base_url),
                "AIRFLOW__PATCHFLOW__TOKEN_CACHE_DIR": str(state / "tokens"),
                **time_scale_env(SIMULATOR_TIME_SCALE),
            }
            env = airflow_env(home, extra=extra)
            say(f"preparing the metadata DB {_rel(home / 'airflow.db')} (the first time takes a minute)")
            check_stop()
            if airflow(["db", "migrate"], env, outcome.log) != 0:
                outcome.error = f"airflow db migrate failed; see {outcome.log}"
                return outcome
            check_stop()
            outcome.dag_code = patch_run(scenario, env, outcome.log, state, say, check_stop, side_by_side)
        outcome.pack = latest_pack(outcome.reports)
        expected = "; this scenario expects a halt" if scenario.halts_on_purpose and outcome.dag_code else ""
        say(f"patch_fleet ended (exit {outcome.dag_code}{expected}); now compliance_report on its reports")
        if outcome.pack is not None:
            check_stop()
            outcome.compliance_code = airflow(["dags", "test", "compliance_report"], env, outcome.log)
    except Stopped:
        outcome.error = "stopped by Ctrl-C"
    except Exception as exc:  # a part that died, a simulator that never came up: say it, never hang
        outcome.error = f"{type(exc).__name__}: {exc}"
    finally:
        outcome.seconds = time.monotonic() - started
    ok, line = outcome.verdict()
    say(f"{'done' if ok else 'NOT AS INTENDED'} in {outcome.seconds:.0f} s: {line}")
    return outcome


def patch_run(
    scenario: Scenario,
    env: dict[str, str],
    log: Path,
    state: Path,
    say: Callable[[str], None],
    check_stop: Callable[[], None],
    side_by_side: bool,
) -> int:
    """``airflow dags test patch_fleet``: through LocalExecutor with its helpers, or in-process."""
    args = ["dags", "test", "patch_fleet", "-c", scenario.conf]
    if not side_by_side:
        say(f"running patch_fleet, one task at a time, with {scenario.conf}")
        return airflow(args, env, log)
    say("starting its Execution API and triggerer (the packages' tasks then run side by side)")
    with deployment_parts(env, state / "parts") as (executor_env, parts):
        say(f"running patch_fleet on LocalExecutor with {scenario.conf}")
        cmd = airflow_cmd(*args[:2], "--use-executor", *args[2:])
        return run_watched(cmd, executor_env, log, parts, PROJECT_ROOT, check_stop)


def _rel(path: Path) -> str:
    """A path as a person at the project root would type it."""
    try:
        return str(path.relative_to(PROJECT_ROOT))
    except ValueError:
        return str(path)


def summary_lines(pack: Path) -> list[str]:
    """How each server ended, the problems by name, the stages (if staged) and the pack's paths."""
    audit = json.loads((pack / "audit.json").read_text())
    summary = audit["summary"]
    out = [f"Run {audit['run']['run_id']}: {summary['total']} servers inventoried"]
    out += [f"  {state:<24} {count}" for state, count in summary["by_state"].items() if count]
    out += [
        f"  ! {row['server_id']}: {row['state']} — {row['reason']}"
        for row in audit["servers"]
        if row["state"] in PROBLEM_STATES
    ]
    out += stage_lines(audit["run"].get("stages") or {})
    out += [
        f"HTML audit report: {pack / 'report.html'}",
        f"Evidence pack:     {pack}",
        f"Verify the chain:  .venv/bin/python -m include.reporting verify {pack.parent.parent}",
    ]
    return out


def stage_lines(stages: dict) -> list[str]:
    """A staged run's stages per package: size, gate, outcome; and why a rollout halted."""
    from include.patching.stage_report import report_lines

    lines, notes = report_lines(stages)
    if not lines:
        return []
    out = ["Stages:"]
    for line in lines:
        head = f"  {line.package:<13} stage {line.index} ({line.spec}): {line.size} server(s)"
        detail = f" — {line.detail}" if line.detail else ""
        out.append(f"{head}, gate {line.gate}; {line.counts}{detail}")
    out += [f"  ! {note}" for note in notes]
    return out


def compliance_lines(reports: Path) -> list[str]:
    """The compliance the report DAG just computed: every server the run patched should count."""
    stored = json.loads((reports / "compliance" / "compliance.json").read_text())
    summary = stored["summary"]
    out = [
        f"Fleet compliance as of {stored['as_of']}: {summary['compliance_pct']} % "
        f"({summary['compliant']} compliant, {summary['non_compliant']} non-compliant, "
        f"{summary['not_patchable']} not patchable; {summary['runs_included']} run(s) included, "
        f"{summary.get('dry_runs', 0)} dry run(s) not counted)"
    ]
    out += [
        f"  ! {server['server_id']}: {server['explanation']} (last state {server['last_state']})"
        for server in stored["servers"]
        if server["status"] == "non_compliant"
    ]
    validation = stored.get("validation") or {}
    verdict = "passed" if validation.get("success") else f"FAILED {validation.get('failed')}"
    out += [f"  validation: {verdict}", f"Compliance report: {reports / 'compliance' / 'compliance.html'}"]
    return out


def report_block(number: int, outcome: Outcome) -> list[str]:
    """One scenario's part of the final output: what it shows, how it ended, its run and compliance."""
    scenario = outcome.scenario
    ok, line = outcome.verdict()
    rule = "═" * 4
    out = [
        "",
        f"{rule} {number}. {scenario.key}: {scenario.title} {rule}",
        f"Shows:  {scenario.shows}",
        f"Conf:   {scenario.conf}",
        f"Result: {line}" + ("" if ok else "  <-- not what the demo expects"),
    ]
    if outcome.pack is not None:
        out += ["", *summary_lines(outcome.pack)]
    if (outcome.reports / "compliance" / "compliance.json").exists() and outcome.compliance_code == 0:
        out += ["", *compliance_lines(outcome.reports)]
    out.append(f"Airflow's output: {outcome.log}")
    return out


def index_lines(outcomes: list[Outcome]) -> list[str]:
    """Every HTML file the demo wrote, one per line, to open in a browser."""
    out = ["", "Reports to open in a browser:"]
    for outcome in outcomes:
        if outcome.pack is not None:
            out.append(f"  {outcome.scenario.key:<7} audit       {outcome.pack / 'report.html'}")
        compliance = outcome.reports / "compliance" / "compliance.html"
        if outcome.compliance_code == 0 and compliance.exists():
            out.append(f"  {outcome.scenario.key:<7} compliance  {compliance}")
    return out


class Console:
    """Progress lines from scenarios running at once, whole lines only, each tagged with its scenario."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._lock = threading.Lock()

    def sayer(self, key: str) -> Callable[[str], None]:
        def say(text: str) -> None:
            with self._lock:
                print(f"[{key:<{self.width}}] {text}", flush=True)

        return say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--staged", action="store_true", help="the staged-rollout scenario alone (make demo-staged)"
    )
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="plain `airflow dags test`: every task in turn, no Execution API or triggerer process",
    )
    parser.add_argument(
        "--state-dir", type=Path, default=DEMO_DIR, help="where the scenarios' folders go (default .demo/)"
    )
    args = parser.parse_args(argv)
    root = args.state_dir.resolve()
    chosen = [STAGED] if args.staged else list(SCENARIOS)
    side_by_side = not args.one_at_a_time
    if not FLEET.exists():
        print("The demo needs the CLC simulator's demo fleet (simulator/fleets/demo.yaml), which is missing.")
        return 1
    started = time.monotonic()
    together = "side by side, " if len(chosen) > 1 else ""
    print(f"patchflow demo: {len(chosen)} scenario(s), {together}each on its own simulator and SQLite DB")
    for number, scenario in enumerate(chosen, 1):
        print(f"  {number}. {scenario.key}: {scenario.shows}  (state in {_rel(scenario.state(root))}/)")
    print(f"  {SIDE_BY_SIDE_NOTE if side_by_side else SEQUENTIAL_NOTE}")
    print("  This takes a few minutes; progress below, the summaries at the end.\n")
    console = Console(max(len(s.key) for s in chosen))
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        futures = [
            pool.submit(run_scenario, s, s.state(root), console.sayer(s.key), stop, side_by_side)
            for s in chosen
        ]
        try:
            outcomes = [f.result() for f in futures]
        except KeyboardInterrupt:
            stop.set()
            print("\nStopping: waiting for the running steps to end (their simulators are stopped)…")
            raise
    for number, outcome in enumerate(outcomes, 1):
        print("\n".join(report_block(number, outcome)))
    print("\n".join(index_lines(outcomes)))
    verdicts = [o.verdict()[0] for o in outcomes]
    print(f"\nDone in {time.monotonic() - started:.0f} s; every process the demo started is stopped.")
    if not all(verdicts):
        print("A scenario did not end as the demo expects: see its Result line and its log above.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
