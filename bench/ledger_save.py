"""Cost of one rollout-ledger save and load at fleet scale.

The rollout rewrites its package's whole ledger before and after every side effect (a few
times per wave), so a package of N servers pays many saves of an O(N) file. Prints the file
size and the time of ``Ledger.save`` and ``Ledger.load`` for a ledger of ``--servers`` entries
(default 5,000) in the state of a rollout half done (entries with submissions and patch lists).

    python bench/ledger_save.py [--servers 5000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from include.patching.rollout_state import Ledger, MaintenanceOwnership, Phase  # noqa: E402
from include.patching.states import ServerState  # noqa: E402


def half_done_ledger(path: Path, n: int) -> Ledger:
    targets = [(f"va1demon{i:06d}", i % 50 == 0) for i in range(n)]
    ledger = Ledger.open(path, package_key="linux_yum", package_id="c3c6642e", alias="DEMO", targets=targets)
    for i, (_sid, entry) in enumerate(ledger.ordered()):
        if i % 2:
            continue
        entry.phase, entry.maintenance = Phase.DONE, MaintenanceOwnership.OURS
        entry.request_time = entry.started_at = entry.ended_at = entry.observed_at = "2026-12-01T10:00:00Z"
        entry.job_id, entry.execution_id = f"va1-{80000 + i}", f"VA1-{100000 + i:06d}"
        entry.submissions = [
            {"request_time": entry.request_time, "job_id": entry.job_id, "result": "submitted"}
        ]
        entry.known_executions = []
        entry.state, entry.reason = ServerState.PATCHED, "3 patches installed"
        entry.patches = [
            {"name": f"openssl-1.0.1e-42.el6_7.{k}.x86_64", "status": "succeeded", "result_code": "2"}
            for k in range(3)
        ]
        entry.patches_installed, entry.attempts, entry.wall_seconds = 3, 2, 312.5
    return ledger


def timed(action, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollout_linux_yum.ledger.json"
        ledger = half_done_ledger(path, args.servers)
        save = timed(ledger.save, args.repeat)
        load = timed(lambda: Ledger.load(path), args.repeat)
        size = path.stat().st_size
    print(
        f"ledger of {args.servers:,} servers (half done): {size / 1e6:.2f} MB; "
        f"save {save * 1000:.0f} ms, load {load * 1000:.0f} ms (best of {args.repeat})"
    )
    print(f"the rollout saves it a few times per wave: 1,000 saves cost ~{1000 * save:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
