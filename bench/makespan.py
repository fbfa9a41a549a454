"""Makespan of a real patch run over a generated fleet, against the ideal the durations allow.

Starts the simulator with a generated fleet (`--generate N --seed 7`) and a real Airflow stack
(api-server, scheduler, dag-processor, triggerer, Celery worker; PostgreSQL + Redis), triggers
`patch_fleet` over the REST API and prints:

- wall makespan / ideal makespan. The ideal is what a zero-overhead orchestrator achieves with the
  same concurrency limit: per package, the servers' real execution durations (from the patching
  service's records, scaled to wall time) list-scheduled onto `max_concurrency` slots in the
  rollout's order; packages run side by side, so the ideal is the longest package.
- API requests per patched server (the simulator's counters, admin API excluded);
- task instances per run, for the full fleet and for a 100-server run (an allow-list).

    python bench/makespan.py [--servers 1000] [--time-scale 0.1] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from launcher.env import clc_connection, time_scale_env  # noqa: E402
from launcher.processes import SimulatorProcess  # noqa: E402
from launcher.stack import AirflowStack  # noqa: E402

ATTEMPTED = {"patched", "patched_no_updates", "failed", "timed_out"}


def scaled_tuning(time_scale: float) -> dict[str, str]:
    """Every patchflow timing compressed by the same factor as the patch durations.

    The simulator runs patches ``1/time_scale`` times faster than real; ``[patchflow]
    time_scale`` scales every poll interval, window, margin and timeout (and the form's
    per-server timeout) by the same factor, so the ratio measures the production settings.
    """
    return time_scale_env(time_scale)


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def list_schedule(durations: list[float], slots: int) -> float:
    """Makespan of starting each job, in order, on the first free slot (no overhead)."""
    free = [0.0] * min(slots, max(len(durations), 1))
    heapq.heapify(free)
    end = 0.0
    for d in durations:
        start = heapq.heappop(free)
        heapq.heappush(free, start + d)
        end = max(end, start + d)
    return end


def ideal_makespan(artifacts: Path, slots: int, time_scale: float) -> tuple[float, int]:
    """Longest per-package ideal, in wall seconds, from the rollout ledgers' order and durations."""
    worst, patched = 0.0, 0
    for ledger_file in artifacts.rglob("rollout_*.ledger.json"):
        ledger = json.loads(ledger_file.read_text())
        durations = []
        for sid in ledger["order"]:
            e = ledger["servers"][sid]
            if e["state"] in ATTEMPTED and e.get("execution_id") and e.get("ended_at"):
                durations.append((ts(e["ended_at"]) - ts(e["started_at"])) * time_scale)
                patched += 1
        worst = max(worst, list_schedule(durations, slots))
    return worst, patched


def run_once(stack: AirflowStack, conf: dict) -> tuple[dict, list[dict], float]:
    started = time.monotonic()
    run_id = stack.trigger("patch_fleet", conf)
    run = stack.wait_for_run("patch_fleet", run_id, timeout=3600)
    return run, stack.task_instances("patch_fleet", run_id), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=50)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="patchflow-bench-"))
    sim = SimulatorProcess(
        None, time_scale=args.time_scale, args=["--generate", str(args.servers)], log_path=home / "sim.log"
    )
    base = sim.start()
    tuning = scaled_tuning(args.time_scale)
    stack = AirflowStack(home, extra_env={"AIRFLOW_CONN_CLC_DEFAULT": clc_connection(base), **tuning})
    try:
        stack.start()
        stack.wait_for_dag("patch_fleet")
        # real minutes, scaled by time_scale like every other timing
        conf = {"max_concurrency": str(args.concurrency), "max_errors": "100%", "server_timeout_minutes": 600}
        run, tis, wall = run_once(stack, conf)
        counters = json.loads(_get(base + "/_sim/counters"))
        requests = sum(
            n
            for route, by_status in counters["requests"].items()
            if "/_sim/" not in route
            for n in by_status.values()
        )
        rollouts = [t for t in tis if t["task_id"].endswith(".rollout") and t["start_date"] and t["end_date"]]
        phase = max(ts(t["end_date"]) for t in rollouts) - min(ts(t["start_date"]) for t in rollouts)
        ideal, patched = ideal_makespan(home / "artifacts", args.concurrency, args.time_scale)
        few = sorted(counters["executions_per_server"])[:100]
        _, tis_100, _ = run_once(stack, conf | {"server_allow_list": few})
        print(
            f"fleet: {args.servers} generated servers, {patched} patched; "
            f"max_concurrency {args.concurrency}; time scale {args.time_scale}"
        )
        print(f"run state: {run['state']}; tuning: {tuning}")
        print(
            f"wall makespan (trigger to run end): {wall:.0f} s; rollout phase: {phase:.0f} s; "
            f"ideal: {ideal:.0f} s"
        )
        print(f"makespan ratio (rollout phase / ideal): {phase / ideal:.2f}  (target <= 1.3)")
        print(f"makespan ratio (whole run / ideal): {wall / ideal:.2f}")
        print(
            f"API requests per patched server: {requests / max(patched, 1):.1f}  (target <= 10; "
            f"{requests} requests)"
        )
        print(
            f"task instances per run: {len(tis)} for {args.servers} servers, {len(tis_100)} for 100 servers"
        )
    finally:
        stack.stop()
        sim.stop()
    return 0


def _get(url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read().decode()


if __name__ == "__main__":
    sys.exit(main())
