"""Makespan of a real patch run over a generated fleet, against the ideal and a peer.

Starts the simulator with a generated fleet (``--generate N --seed S``) and a real Airflow stack
(api-server, scheduler, dag-processor, triggerer, Celery worker; PostgreSQL + Redis), triggers
``patch_fleet`` over the REST API; then patches the same fleet, at the same concurrency and time
scale, with a script on the published SDK (clc-sdk 2.51, ``bench/peer/clc_sdk_script.py`` run by
``.sdk-venv/bin/python`` against a fresh simulator with the same fleet) and prints both side by
side, judged by the simulator's own timeline (``/_sim/timeline``), not by what each tool believed:

- makespan: patchflow's rollout phase and whole run; the peer's believed end and its TRUE end
  (when its servers' executions really completed); each against the ideal: every package's
  servers, with their real execution durations, list-scheduled together onto
  ``max_concurrency`` fleet-wide slots in the order the rollout started them (zero overhead);
- API requests per patched server and logins (the simulator's counters, admin API excluded);
- "early done": servers reported done before their execution completed;
- real peak concurrency (overlapping executions) and servers patched outside maintenance;
- scale: peak CPU and RSS of the triggerer's process tree, the scheduler loop time (Airflow's
  OpenTelemetry metrics, received by the bench), the largest XCom (the stack's PostgreSQL), the
  artifact, ledger and evidence-pack sizes, the audit task's duration; task instances per run
  for the full fleet and for a 100-server allow-list.

    python bench/makespan.py [--servers 1000] [--seed 7] [--time-scale 0.1] [--concurrency 50]
                             [--no-peer] [--no-small-run] [--conf JSON] [--price JSON]

``--price JSON`` prices a feature: two patchflow runs on the same fleet, each on its own fresh
simulator and stack, the second with that conf on top (e.g. ``'{"waves": ["1", "5", "20%", "100%"]}'``
for a 4-stage rollout against one stage), and prints both and the difference; the peer and the
100-server run are skipped (they price nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from launcher.bench_metrics import early_done, fleet_ideal, timeline_figures  # noqa: E402
from launcher.bench_probes import OtlpMetricsSink, TreeSampler  # noqa: E402
from launcher.env import clc_connection, time_scale_env  # noqa: E402
from launcher.processes import SimulatorProcess  # noqa: E402
from launcher.stack import AirflowStack  # noqa: E402

ATTEMPTED = {"patched", "patched_no_updates", "failed", "timed_out"}
PEER_SCRIPT = ROOT / "bench" / "peer" / "clc_sdk_script.py"
SDK_PYTHON = Path(os.environ.get("CLC_SDK_PYTHON", str(ROOT / ".sdk-venv" / "bin" / "python")))
SDK_POLL_SECONDS = 2.0  # WaitUntilComplete's default poll_freq, scaled by --time-scale
#: ledger times (observed_at) have 1 s resolution
DONE_TOLERANCE = 1.0


def scaled_tuning(time_scale: float) -> dict[str, str]:
    """Every patchflow timing compressed by the same factor as the patch durations.

    The simulator runs patches ``1/time_scale`` times faster than real; ``[patchflow]
    time_scale`` scales every poll interval, window, margin and timeout (and the form's
    per-server timeout) by the same factor, so the ratio measures the production settings.
    """
    return time_scale_env(time_scale)


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _get(url: str) -> Any:
    import urllib.request

    with urllib.request.urlopen(url, timeout=120) as resp:
        return json.loads(resp.read().decode())


def api_requests(counters: dict) -> int:
    return sum(
        n
        for route, by_status in counters["requests"].items()
        if "/_sim/" not in route
        for n in by_status.values()
    )


def ledgers(artifacts: Path) -> list[tuple[Path, dict]]:
    return [(p, json.loads(p.read_text())) for p in sorted(artifacts.rglob("rollout_*.ledger.json"))]


def requests_by_route(counters: dict, per: int) -> str:
    """``GET /rest/…/patch 4.1, …``: the API requests per patched server of each route, most first."""
    routes = Counter(
        {
            route: sum(by_status.values())
            for route, by_status in counters["requests"].items()
            if "/_sim/" not in route
        }
    )
    return ", ".join(f"{route} {n / max(per, 1):.2f}" for route, n in routes.most_common())


def summary_reads(counters: dict, per: int, time_scale: float) -> str:
    """Where the summary and detail reads fell (the simulator's ``summary_reads``/``detail_reads``)
    per patched server, and how late the first read showing each completion came (wall seconds):
    what a read plan costs."""

    def per_phase(phases: dict) -> str:
        ranked = sorted(phases.items(), key=lambda kv: -kv[1])
        return ", ".join(f"{k} {n / max(per, 1):.2f}" for k, n in ranked)

    parts = "; ".join(
        f"{kind}: {per_phase(phases)}"
        for kind in ("summary", "detail")
        if (phases := counters.get(f"{kind}_reads"))
    )
    if not parts:
        return "not counted by this simulator"
    delays = sorted(d * time_scale for d in counters.get("completion_seen_after") or [])
    if delays:
        pick = lambda share: delays[min(len(delays) - 1, int(len(delays) * share))]  # noqa: E731
        parts += (
            f"; completion seen after (wall s): median {pick(0.5):.1f}, p90 {pick(0.9):.1f}, "
            f"max {delays[-1]:.1f}, mean {sum(delays) / len(delays):.1f}"
        )
    return parts


def ideal_makespan(timelines: list[dict], servers: list[str], slots: int) -> float:
    """Fleet-wide ideal: the servers' real execution durations (wall), in the order they really
    started, list-scheduled onto ``slots`` slots shared by every package. A server is taken from
    the first timeline where its execution completed (the same fleet gives the same durations:
    the peer's timeline stands in for servers patchflow never sent the package)."""
    jobs = []
    for sid in servers:
        for rank, timeline in enumerate(timelines):
            executions = timeline["servers"].get(sid, {}).get("executions") or []
            done = [e for e in executions if e["completed"]]
            if done:
                order = (rank, done[0]["start_wall"])
                jobs.append((order, done[-1]["end_wall"] - done[0]["start_wall"]))
                break
    return fleet_ideal(jobs, slots)


def planned_targets(artifacts: Path) -> list[tuple[str, str]]:
    """``(server id, package id)`` of every server the run's plan sends a package."""
    [plan_file] = sorted(artifacts.rglob("plan.json"))
    plan = json.loads(plan_file.read_text())
    return [(r["id"], r["package_id"]) for r in plan["servers"] if r.get("package_id") and not r.get("state")]


def run_once(stack: AirflowStack, conf: dict) -> tuple[dict, list[dict], float, float]:
    began = time.time()
    started = time.monotonic()
    run_id = stack.trigger("patch_fleet", conf)
    run = stack.wait_for_run("patch_fleet", run_id, timeout=6 * 3600)
    return run, stack.task_instances("patch_fleet", run_id), time.monotonic() - started, began


def largest_xcom(stack: AirflowStack) -> str:
    sql = (
        "SELECT task_id || ' ' || key || ': ' || pg_column_size(value) || ' bytes' FROM xcom "
        "ORDER BY pg_column_size(value) DESC LIMIT 1"
    )
    out = subprocess.run(
        [*stack.services.psql_args(stack.db), "-Atc", sql], capture_output=True, text=True, timeout=60
    )
    return out.stdout.strip() or f"(query failed: {out.stderr.strip()[:200]})"


def folder_bytes(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files), len(files)


def task_seconds(tis: list[dict], suffix: str) -> float | None:
    spans = [
        ts(t["end_date"]) - ts(t["start_date"])
        for t in tis
        if t["task_id"].endswith(suffix) and t["end_date"]
    ]
    return max(spans) if spans else None


def generated_simulator(args: argparse.Namespace, log: Path) -> SimulatorProcess:
    """A simulator process on the generated fleet: the same fleet for patchflow and the peer."""
    return SimulatorProcess(
        None, time_scale=args.time_scale, seed=args.seed, args=["--generate", str(args.servers)], log_path=log
    )


def run_patchflow(args: argparse.Namespace, home: Path, extra_conf: str = "{}") -> dict[str, Any]:
    home.mkdir(parents=True, exist_ok=True)
    sink = OtlpMetricsSink().start()
    sim = generated_simulator(args, home / "sim.log")
    base = sim.start(timeout=600)
    tuning = scaled_tuning(args.time_scale)
    stack = AirflowStack(
        home, extra_env={"AIRFLOW_CONN_CLC_DEFAULT": clc_connection(base), **tuning, **sink.airflow_env()}
    )
    out: dict[str, Any] = {"tuning": tuning}
    try:
        stack.start()
        stack.wait_for_dag("patch_fleet")
        sampler = TreeSampler(stack.procs["triggerer"].pid).start()
        # real minutes, scaled by time_scale like every other timing
        conf = {"max_concurrency": str(args.concurrency), "max_errors": "100%", "server_timeout_minutes": 600}
        conf |= json.loads(args.conf)  # e.g. {"deferrable": false} or {"snapshot": "best_effort"}
        conf |= json.loads(extra_conf)  # --price: the feature being priced
        out["conf"] = conf
        run, tis, wall, began = run_once(stack, conf)
        sampler.stop()
        counters, timeline = _get(base + "/_sim/counters"), _get(base + "/_sim/timeline")
        rollouts = [
            t
            for t in tis
            if t["task_id"].endswith((".rollout", ".rollout_rest")) and t["start_date"] and t["end_date"]
        ]
        believed: dict[str, float] = {}
        targets = planned_targets(home / "artifacts")
        ledger_sizes = []
        outcomes: Counter[str] = Counter()
        for path, ledger in ledgers(home / "artifacts"):
            ledger_sizes.append((path.stat().st_size, len(ledger["servers"])))
            for sid, e in ledger["servers"].items():
                outcomes[str(e.get("state"))] += 1
                if e.get("state") in ATTEMPTED and e.get("execution_id") and e.get("observed_at"):
                    believed[sid] = ts(e["observed_at"]) + DONE_TOLERANCE
        out.update(
            run=run,
            wall=wall,
            began=began,
            phase=max(ts(t["end_date"]) for t in rollouts) - min(ts(t["start_date"]) for t in rollouts),
            phase_start=min(ts(t["start_date"]) for t in rollouts),
            tis=len(tis),
            counters=counters,
            timeline=timeline,
            targets=targets,
            outcomes=outcomes,
            believed=believed,
            triggerer_cpu=sampler.peak_cpu_percent,
            triggerer_rss=sampler.peak_rss_bytes,
            triggerer_pss=sampler.peak_pss_bytes,
            triggerer_process_rss=sampler.peak_process_rss_bytes,
            triggerer_first=(sampler.first_rss_bytes, sampler.first_pss_bytes),
            triggerer_processes=sampler.processes,
            loop=sink.histogram("scheduler_loop_duration"),
            xcom=largest_xcom(stack),
            artifacts=folder_bytes(home / "artifacts"),
            reports=folder_bytes(home / "reports"),
            ledger_sizes=ledger_sizes,
            audit_seconds=task_seconds(tis, "audit"),
            classify_seconds=task_seconds(tis, "classify"),
            inventory_seconds=task_seconds(tis, "inventory"),
        )
        if args.small_run:
            few = sorted(counters["executions_per_server"])[:100]
            out["tis_100"] = len(run_once(stack, conf | {"server_allow_list": few})[1])
    finally:
        stack.stop()
        sim.stop()
        sink.stop()
    return out


def run_peer(args: argparse.Namespace, home: Path, targets: list[tuple[str, str]]) -> dict[str, Any]:
    """The SDK script on a fresh simulator with the same fleet, the same servers and limit."""
    sim = generated_simulator(args, home / "sim-peer.log")
    base = sim.start(timeout=600)
    targets_file = home / "peer-targets.json"
    targets_file.write_text(json.dumps({"alias": "DEMO", "servers": targets}))
    poll = args.peer_poll if args.peer_poll is not None else SDK_POLL_SECONDS * args.time_scale
    try:
        began = time.time()
        done = subprocess.run(
            [str(SDK_PYTHON), str(PEER_SCRIPT), base, str(targets_file), str(args.concurrency), str(poll)],
            capture_output=True,
            text=True,
            timeout=6 * 3600,
        )
        if done.returncode != 0:
            raise RuntimeError(f"the SDK peer failed:\n{done.stderr[-3000:]}")
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        summary = next(line["summary"] for line in lines if "summary" in line)
        per_server = [line for line in lines if "server" in line]
        # the executions may still run when the script thinks it is done: wait for them
        deadline = time.monotonic() + 3600
        while time.monotonic() < deadline:
            timeline = _get(base + "/_sim/timeline")
            running = [
                sid
                for sid, _ in targets
                for ex in timeline["servers"].get(sid, {}).get("executions", [])
                if not ex["completed"] and not ex["halted"]
            ]
            if not running:
                break
            time.sleep(2)
        counters = _get(base + "/_sim/counters")
    finally:
        sim.stop()
    return {
        "began": began,
        "summary": summary,
        "believed": {r["server"]: r["done"] for r in per_server if not r["error"]},
        "errors": [r for r in per_server if r["error"]],
        "timeline": timeline,
        "counters": counters,
        "poll": poll,
    }


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def report(args: argparse.Namespace, pf: dict[str, Any], peer: dict[str, Any] | None) -> None:
    servers = [sid for sid, _ in pf["targets"]]
    timelines = [pf["timeline"]] + ([peer["timeline"]] if peer is not None else [])
    ideal = ideal_makespan(timelines, servers, args.concurrency)
    pf_fig = timeline_figures(pf["timeline"], servers)
    load = os.getloadavg()
    print(
        f"fleet: {args.servers} generated servers (seed {args.seed}), {len(servers)} planned for patching; "
        f"max_concurrency {args.concurrency} (fleet-wide in the ideal); time scale {args.time_scale}; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores"
    )
    print(f"patchflow run state: {pf['run']['state']}; conf beyond the defaults: {args.conf}")
    print(f"tuning: {pf['tuning']}")
    print(f"patchflow outcomes (ledgers): {dict(pf['outcomes'].most_common())}")
    print(f"ideal makespan (fleet-wide list schedule of the real execution durations): {ideal:.0f} s")
    rows: list[tuple[str, str, str]] = [
        ("servers with a completed execution", f"{pf_fig.completed} of {len(servers)}", "")
    ]
    pf_true = (pf_fig.last_end - pf["phase_start"]) if pf_fig.last_end is not None else float("nan")
    rows.append(
        (
            "makespan believed (s)",
            f"{pf['phase']:.0f} rollout phase / {pf['wall']:.0f} whole run",
            "",
        )
    )
    rows.append(
        ("makespan TRUE: last execution completed (s)", f"{pf_true:.0f} from the rollout's start", "")
    )
    rows.append(
        (
            "makespan ratio (true / ideal)",
            f"{pf_true / ideal:.2f} (target <= 1.10 at 1,000 servers, 1.15 at 10,000)"
            if ideal and pf_fig.completed
            else "n/a",
            "",
        )
    )
    pf_req = api_requests(pf["counters"])
    rows.append(
        ("API requests per patched server", f"{pf_req / max(pf_fig.completed, 1):.1f} ({pf_req})", "")
    )
    rows.append(("logins", str(pf["counters"]["logins"]["succeeded"]), ""))
    pf_early = early_done(pf["believed"], pf["timeline"])
    rows.append(("early done (done before execution completed)", str(len(pf_early)), ""))
    rows.append(("real peak concurrency (executions)", str(pf_fig.peak_concurrency), ""))
    rows.append(("patched outside maintenance", str(len(pf_fig.outside_maintenance)), ""))
    if peer is not None:
        fig = timeline_figures(peer["timeline"], servers)
        believed = peer["summary"]["believed_done"] - peer["began"]
        true = max(fig.last_end or 0, peer["summary"]["believed_done"]) - peer["began"]
        req = api_requests(peer["counters"])
        early = early_done(peer["believed"], peer["timeline"])
        values = [
            f"{fig.completed} of {len(servers)}",
            f"{believed:.0f} (script returned)",
            f"{true:.0f} from the script's start",
            f"{true / ideal:.2f}" if ideal else "n/a",
            f"{req / max(fig.completed, 1):.1f} ({req})",
            str(peer["counters"]["logins"]["succeeded"]),
            str(len(early)),
            str(fig.peak_concurrency),
            str(len(fig.outside_maintenance)),
        ]
        rows = [(a, b, v) for (a, b, _), v in zip(rows, values, strict=True)]
    width = max(len(r[0]) for r in rows)
    col = max(len(r[1]) for r in rows)
    print(f"{'':{width}}  {'patchflow':{col}}  clc-sdk 2.51 script" + (" (not run)" if peer is None else ""))
    for name, a, b in rows:
        print(f"{name:{width}}  {a:{col}}  {b}")
    if pf_fig.peak_concurrency > args.concurrency:
        print(
            f"note: patchflow ran {pf_fig.peak_concurrency} executions at once, above max_concurrency "
            f"{args.concurrency}: its limit counted per package, the ideal's is fleet-wide"
        )
    if peer is not None:
        print(
            f"peer: {len(peer['errors'])} servers ended in an exception; WaitUntilComplete poll "
            f"{peer['poll']:.3f} s (the SDK's 2 s, scaled)"
        )
    by_route = requests_by_route(pf["counters"], pf_fig.completed)
    print(f"patchflow's requests per patched server by route: {by_route}")
    reads = summary_reads(pf["counters"], pf_fig.completed, args.time_scale)
    print(f"patchflow's patch reads per patched server, by phase: {reads}")
    print("scale:")
    print(
        f"  triggerer process tree: peak CPU {pf['triggerer_cpu']:.0f}% of one core, "
        f"peak RSS {_mb(pf['triggerer_rss'])} summed over {pf.get('triggerer_processes', '?')} processes"
    )
    if "triggerer_pss" in pf:  # runs saved before PSS was sampled have only the RSS sum
        first_rss, first_pss = pf["triggerer_first"]
        print(
            f"  triggerer memory counting each shared page once (PSS): peak {_mb(pf['triggerer_pss'])}; "
            f"before the run: RSS {_mb(first_rss)}, PSS {_mb(first_pss)} (Airflow's own baseline)"
        )
    if "triggerer_process_rss" in pf:
        print(f"  triggerer's largest single process: peak RSS {_mb(pf['triggerer_process_rss'])}")
    loop = pf["loop"]
    if loop is not None and loop.count:
        print(
            f"  scheduler loop (Airflow OTel scheduler_loop_duration): {loop.count} loops, "
            f"mean {loop.total / loop.count:.0f} ms, max {loop.max:.0f} ms"
        )
    else:
        print("  scheduler loop: no OTel metric received")
    print(f"  largest XCom: {pf['xcom']}")
    size, count = pf["artifacts"]
    print(f"  run artifacts: {_mb(size)} in {count} files; evidence pack(s): {_mb(pf['reports'][0])}")
    for nbytes, entries in pf["ledger_sizes"]:
        print(f"  ledger: {_mb(nbytes)} for {entries} servers")
    for name in ("inventory", "classify", "audit"):
        secs = pf[f"{name}_seconds"]
        print(f"  {name} task: {secs:.1f} s" if secs is not None else f"  {name} task: n/a")
    small = f", {pf['tis_100']} for 100 servers" if "tis_100" in pf else ""
    print(f"  task instances per run: {pf['tis']} for {args.servers} servers{small}")


def true_makespan(pf: dict[str, Any]) -> tuple[float, float]:
    """(true makespan from the rollout's start, ideal) of one patchflow run, by its own timeline."""
    servers = [sid for sid, _ in pf["targets"]]
    fig = timeline_figures(pf["timeline"], servers)
    true = (fig.last_end - pf["phase_start"]) if fig.last_end is not None else float("nan")
    return true, ideal_makespan([pf["timeline"]], servers, int(pf["conf"]["max_concurrency"]))


def price_report(args: argparse.Namespace, base: dict[str, Any], priced: dict[str, Any]) -> None:
    """The two runs side by side and what the priced conf costs."""
    rows = []
    for name, pf in (("without", base), ("with", priced)):
        servers = [sid for sid, _ in pf["targets"]]
        fig = timeline_figures(pf["timeline"], servers)
        true, ideal = true_makespan(pf)
        req = api_requests(pf["counters"])
        rows.append(
            {
                "run": f"{name} {args.price}",
                "state": pf["run"]["state"],
                "outcomes": dict(pf["outcomes"].most_common()),
                "phase": pf["phase"],
                "true": true,
                "ideal": ideal,
                "req": req / max(fig.completed, 1),
                "completed": fig.completed,
                "peak": fig.peak_concurrency,
                "outside": len(fig.outside_maintenance),
                "routes": requests_by_route(pf["counters"], fig.completed),
                "logins": pf["counters"]["logins"]["succeeded"],
            }
        )
    load = os.getloadavg()
    print(
        f"price of {args.price}: {args.servers} generated servers (seed {args.seed}), max_concurrency "
        f"{args.concurrency}, time scale {args.time_scale}, conf beyond the defaults {args.conf}; "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} cores"
    )
    for r in rows:
        print(
            f"  {r['run']}: run {r['state']}; rollout phase {r['phase']:.0f} s; true makespan "
            f"{r['true']:.0f} s, ideal {r['ideal']:.0f} s, ratio {r['true'] / r['ideal']:.2f}; "
            f"{r['completed']} executions completed; {r['req']:.1f} API requests per patched server; "
            f"real peak concurrency {r['peak']}; patched outside maintenance {r['outside']}"
        )
        print(f"    outcomes: {r['outcomes']}; logins {r['logins']}")
        print(f"    requests per patched server by route: {r['routes']}")
    a, b = rows
    print(
        f"cost: rollout phase {b['phase'] - a['phase']:+.0f} s (x{b['phase'] / a['phase']:.2f}); "
        f"true makespan {b['true'] - a['true']:+.0f} s (x{b['true'] / a['true']:.2f}); "
        f"requests per patched server {b['req'] - a['req']:+.1f}"
    )


def _stop_cleanly(signum: int, _frame: object) -> None:
    """SIGTERM (and SIGINT, which a shell's background job ignores) unwind like Ctrl-C, so
    every ``finally`` stops the stack, the simulators and the metrics sink it started."""
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    signal.signal(signal.SIGTERM, _stop_cleanly)
    signal.signal(signal.SIGINT, _stop_cleanly)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--time-scale", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--no-peer", dest="peer", action="store_false", help="skip the clc-sdk script")
    parser.add_argument(
        "--no-small-run", dest="small_run", action="store_false", help="skip the 100-server run"
    )
    parser.add_argument(
        "--peer-poll", type=float, default=None, help="the peer's poll_freq (default 2 s scaled)"
    )
    parser.add_argument(
        "--conf",
        default="{}",
        help='more run conf as JSON, e.g. \'{"deferrable": false}\', \'{"snapshot": "best_effort"}\', '
        '\'{"waves": ["1", "5", "20%%", "100%%"]}\' (compare two runs to price a feature)',
    )
    parser.add_argument(
        "--price",
        default=None,
        help="price a feature: a second run with this conf on top, e.g. "
        '\'{"waves": ["1", "5", "20%%", "100%%"]}\'; prints both runs and the difference',
    )
    parser.add_argument("--report-from", default=None, help="print the report of a saved run and exit")
    args = parser.parse_args()
    if args.peer and not SDK_PYTHON.exists():
        print(f"no clc-sdk interpreter at {SDK_PYTHON} (make test creates .sdk-venv): the peer is skipped")
        args.peer = False
    if args.report_from:  # print again from a saved run (e.g. after changing the report)
        with open(args.report_from, "rb") as fh:
            saved = pickle.load(fh)
        if "priced" in saved:
            price_report(saved["args"], saved["patchflow"], saved["priced"])
        else:
            report(saved["args"], saved["patchflow"], saved["peer"])
        return 0
    home = Path(tempfile.mkdtemp(prefix="patchflow-bench-"))
    if args.price:
        json.loads(args.price)  # refuse a bad JSON before anything starts
        args.small_run = False  # it prices nothing
        base = run_patchflow(args, home / "without")
        priced = run_patchflow(args, home / "with", args.price)
        with open(home / "bench-result.pickle", "wb") as fh:
            pickle.dump({"args": args, "patchflow": base, "priced": priced}, fh)
        print(f"raw figures: {home / 'bench-result.pickle'} (--report-from prints them again)")
        price_report(args, base, priced)
        return 0
    pf = run_patchflow(args, home)
    peer = run_peer(args, home, pf["targets"]) if args.peer else None
    with open(home / "bench-result.pickle", "wb") as fh:
        pickle.dump({"args": args, "patchflow": pf, "peer": peer}, fh)
    print(f"raw figures: {home / 'bench-result.pickle'} (--report-from prints them again)")
    report(args, pf, peer)
    return 0


if __name__ == "__main__":
    sys.exit(main())
