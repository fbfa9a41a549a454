"""The reporting path at fleet scale: classify, the audit rows, the live board.

Builds an inventory of ``--servers`` generated servers (the simulator's generator and its Get
Server rendering, plus the fields the hook adds), then times each step a run and its board pay
per call: classify (one plan row per server), the audit join (``build_rows``), the board's read
model (``build_board``) over half-done ledgers. A step whose time
grows faster than the fleet shows up as a large per-1,000 figure at 10,000.

    python bench/reporting_scale.py [--servers 10000]
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from include.patching.audit_rows import build_rows  # noqa: E402
from include.patching.classification import Scope  # noqa: E402
from include.patching.progress import build_board  # noqa: E402
from include.patching.rollout_state import LedgerEntry, MaintenanceOwnership, Phase  # noqa: E402
from include.patching.states import ServerState  # noqa: E402
from simulator.core import Simulator, SimulatorSettings  # noqa: E402
from simulator.generator import generate_fleet  # noqa: E402
from simulator.views import server_dict  # noqa: E402


def inventory(n: int) -> list[dict]:
    sim = Simulator(generate_fleet(n, 7), SimulatorSettings(seed=7))
    now = sim.now()
    rows = []
    for server in sim.servers.values():
        group = sim.groups[server.group_id]
        rows.append(
            server_dict(sim, server, now)
            | {
                "data_center": server.data_center.lower(),
                "group_id": group.id,
                "group_name": group.name,
                "group_path_ids": [group.id],
                "group_path_names": [group.name],
            }
        )
    return rows


def half_done(plan: dict, package_key: str) -> dict:
    """A ledger of the package's targets, every other one patched, the rest in flight or queued."""
    servers, order = {}, []
    for i, row in enumerate(r for r in plan["servers"] if r["package_key"] == package_key and not r["state"]):
        entry = LedgerEntry.new()
        if i % 2 == 0:
            entry.phase, entry.maintenance = Phase.DONE, MaintenanceOwnership.OURS
            entry.state, entry.reason = ServerState.PATCHED, "3 patches installed"
            entry.execution_id, entry.job_id = f"VA1-{100000 + i}", f"va1-{80000 + i}"
            entry.request_time = entry.started_at = entry.ended_at = entry.observed_at = (
                "2026-12-01T10:00:00Z"
            )
            entry.patches = [{"name": f"pkg{k}", "status": "completed", "result_code": "2"} for k in range(3)]
            entry.wall_seconds = 300.0
        elif i % 5 == 1:
            entry.phase, entry.request_time = Phase.SUBMITTED, "2026-12-01T10:00:00Z"
        servers[row["id"]] = entry.to_json()
        order.append(row["id"])
    return {"package_key": package_key, "alias": "DEMO", "order": order, "servers": servers}


def timed(label: str, n: int, action):
    t = time.perf_counter()
    value = action()
    spent = time.perf_counter() - t
    print(f"{label}: {spent * 1000:.0f} ms ({spent * 1000 * 1000 / n:.1f} ms per 1,000 servers)")
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=10_000)
    args = parser.parse_args()
    from patchflow.operators.rollout import plan_targets
    from patchflow.tasks import plan_row

    n = args.servers
    servers = timed(f"inventory of {n:,} generated servers (setup)", n, lambda: inventory(n))
    scope = Scope.build(groups=[], allow=[], deny=[])
    settings = {"dry_run": False, "max_concurrency": "500", "max_errors": "100%"}
    rows = timed("classify (plan rows)", n, lambda: [plan_row(s, scope, dry_run=False) for s in servers])
    plan = {"account_alias": "DEMO", "settings": settings, "servers": sorted(rows, key=lambda r: r["id"])}
    ledgers = {key: half_done(plan, key) for key in ("linux_yum", "windows_2012")}
    results = {
        key: {"servers": [{"server_id": sid, **e} for sid, e in ledger["servers"].items() if e["state"]]}
        for key, ledger in ledgers.items()
    }
    timed("audit rows (build_rows)", n, lambda: build_rows(plan, results, ledgers))
    now = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)
    timed(
        "live board read model (build_board, every 5 s while a run goes)",
        n,
        lambda: build_board(
            inventory_present=True, plan=plan, ledgers=ledgers, targets=plan_targets, now=now
        ),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
