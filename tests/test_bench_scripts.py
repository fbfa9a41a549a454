"""The benchmark scripts keep working as the audit contract grows (their figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_report_build_bench_runs_on_a_small_fleet():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report_build.py"), "50"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "total for 50 servers" in done.stdout and "validation passed" in done.stdout
