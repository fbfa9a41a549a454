"""Median wall time to import each DAG file in a fresh interpreter, after Airflow's own import.

Each sample starts a new Python process, imports `airflow.sdk` (the fixed cost every DAG file
pays and no DAG can avoid), then times only the import of the DAG file. Prints one line per file.

    python bench/parse_time.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import importlib.util, json, sys, time
import airflow.sdk  # noqa: F401  (Airflow's own import, excluded from the figure)
t0 = time.perf_counter()
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def sample(path: Path) -> float:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for path in sorted((ROOT / "dags").glob("*.py")):
        times = [sample(path) for _ in range(args.runs)]
        print(
            f"{path.relative_to(ROOT)}: median {statistics.median(times) * 1000:.0f} ms "
            f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, {args.runs} runs; target < 1000 ms)"
        )


if __name__ == "__main__":
    main()
