"""`make demo`: the patch DAG end to end on the demo fleet, with no services at all.

Starts the CLC simulator on loopback, runs `airflow dags test patch_fleet` on an SQLite
metadata DB under a project-local AIRFLOW_HOME (`.demo/`), prints a run summary and the path
of the HTML audit report, then runs `airflow dags test compliance_report` over the same reports
(what the `patch_audit` asset would trigger) and prints the fleet's compliance, and stops
everything it started.

`--staged` (`make demo-staged`) is a second scenario on the same fleet: the packages roll out in
stages with a health check of every server's service; the demo fleet's UC1DEMOAPP03 turns
unhealthy once patched, so the Linux rollout halts at its stage — the run fails on purpose, and the
summary shows each stage, its gate and why the rest was not patched. It is a separate scenario so
that `make demo` keeps showing a whole fleet patched.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from include.patching.states import PROBLEM_STATES
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


def print_summary(pack: Path) -> None:
    audit = json.loads((pack / "audit.json").read_text())
    summary = audit["summary"]
    print(f"\nRun {audit['run']['run_id']}: {summary['total']} servers inventoried")
    for state, count in summary["by_state"].items():
        if count:
            print(f"  {state:<24} {count}")
    problems = [r for r in audit["servers"] if r["state"] in PROBLEM_STATES]
    for row in problems:
        print(f"  ! {row['server_id']}: {row['state']} — {row['reason']}")
    print_stages(audit["run"].get("stages") or {})
    print(f"\nHTML audit report: {pack / 'report.html'}")
    print(f"Evidence pack:     {pack}")
    print(f"Verify the chain:  .venv/bin/python -m include.reporting verify {pack.parent.parent}")


def print_stages(stages: dict) -> None:
    """A staged run's stages per package: size, gate, outcome; and why a rollout halted."""
    from include.patching.stage_report import report_lines

    lines, notes = report_lines(stages)
    if lines:
        print("\nStages:")
    for line in lines:
        head = f"  {line.package:<13} stage {line.index} ({line.spec}): {line.size} server(s)"
        print(f"{head}, gate {line.gate}; {line.counts}")
    for note in notes:
        print(f"  ! {note}")


def print_compliance(reports: Path) -> None:
    """The compliance the report DAG just computed: every server the run patched should count."""
    stored = json.loads((reports / "compliance" / "compliance.json").read_text())
    summary = stored["summary"]
    print(
        f"\nFleet compliance as of {stored['as_of']}: {summary['compliance_pct']} % "
        f"({summary['compliant']} compliant, {summary['non_compliant']} non-compliant, "
        f"{summary['not_patchable']} not patchable; {summary['runs_included']} run(s) included, "
        f"{summary.get('dry_runs', 0)} dry run(s) not counted)"
    )
    for server in stored["servers"]:
        if server["status"] == "non_compliant":
            print(f"  ! {server['server_id']}: {server['explanation']} (last state {server['last_state']})")
    validation = stored.get("validation") or {}
    verdict = "passed" if validation.get("success") else f"FAILED {validation.get('failed')}"
    print(f"  validation: {verdict}")
    print(f"Compliance report: {reports / 'compliance' / 'compliance.html'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m launcher.demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--staged", action="store_true", help="the staged-rollout scenario (make demo-staged)"
    )
    staged = parser.parse_args(argv).staged
    conf = STAGED_CONF if staged else DEMO_CONF
    if not FLEET.exists():
        print("The demo needs the CLC simulator's demo fleet (simulator/fleets/demo.yaml), which is missing.")
        return 1
    home = DEMO_DIR / "airflow"
    if home.exists():
        shutil.rmtree(home / "logs", ignore_errors=True)
    log = DEMO_DIR / "demo.log"
    DEMO_DIR.mkdir(exist_ok=True)
    log.write_text("")
    started = time.monotonic()
    with SimulatorProcess(FLEET, time_scale=SIMULATOR_TIME_SCALE, log_path=DEMO_DIR / "simulator.log") as sim:
        print(f"CLC simulator (demo fleet) at {sim.base_url}")
        extra = {CLC_CONN_ENV: clc_connection(sim.base_url), **time_scale_env(SIMULATOR_TIME_SCALE)}
        env = airflow_env(home, extra=extra)
        print(
            "Preparing the Airflow metadata DB (SQLite under .demo/airflow; the first time takes a minute)…"
        )
        if airflow(["db", "migrate"], env, log) != 0:
            print(f"airflow db migrate failed; see {log}")
            return 1
        print("Running patch_fleet (this takes about a minute; Airflow's output goes to .demo/demo.log)…")
        print(f"  conf: {conf}  (the demo fleet has deliberately failing servers)")
        code = airflow(["dags", "test", "patch_fleet", "-c", conf], env, log)
    reports = Path(env["PATCHFLOW_REPORTS"])
    pack = latest_pack(reports)
    compliance = 1
    if pack is not None:
        print_summary(pack)
        print("\nRunning compliance_report over the sealed evidence packs…")
        compliance = airflow(["dags", "test", "compliance_report"], env, log)
        if compliance == 0:
            print_compliance(reports)
    print(f"\nDone in {time.monotonic() - started:.0f} s; the simulator is stopped. Full log: {log}")
    if staged and code != 0 and pack is not None and compliance == 0:
        print(
            "The run failed as this scenario intends: a stage failed its health gate and halted the rollout."
        )
        return 0
    if code != 0 or pack is None or compliance != 0:
        print("A DAG run did not succeed: see the log above for the failing task.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
