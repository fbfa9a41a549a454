"""The benchmark scripts keep working as the audit contract grows (their figures are not asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from launcher.bench_metrics import early_done, timeline_figures
from launcher.processes import SimulatorProcess
from simulator.generator import generate_fleet_doc

LINUX_PACKAGE = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"

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


@pytest.mark.slow
def test_the_sdk_peer_patches_and_the_timeline_shows_what_really_happened(tmp_path):
    """bench/peer/clc_sdk_script.py on the published SDK against a real simulator: every server
    it was given is patched; it calls them done when the queue job ends (before the executions
    complete) and takes maintenance off while they run — which the timeline shows."""
    sdk_python = Path(os.environ.get("CLC_SDK_PYTHON", str(ROOT / ".sdk-venv" / "bin" / "python")))
    if not sdk_python.exists():
        pytest.skip(f"no clc-sdk interpreter at {sdk_python} (make test creates .sdk-venv)")
    doc = generate_fleet_doc(40, 7)
    linux = [s["name"].lower() for s in doc["servers"] if s["os"].startswith(("centOS6", "redHat6"))]
    linux = [sid for sid in linux if next(s for s in doc["servers"] if s["name"].lower() == sid)["patches"]]
    targets = [[sid, LINUX_PACKAGE] for sid in linux[:4]]
    (tmp_path / "targets.json").write_text(json.dumps({"alias": "DEMO", "servers": targets}))
    with SimulatorProcess(None, time_scale=0.01, seed=7, args=["--generate", "40"]) as sim:
        done = subprocess.run(
            [
                str(sdk_python),
                str(ROOT / "bench/peer/clc_sdk_script.py"),
                sim.base_url,
                str(tmp_path / "targets.json"),
                "2",
                "0.02",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        with urllib.request.urlopen(sim.base_url + "/_sim/timeline", timeout=30) as resp:
            timeline = json.loads(resp.read())
    per_server = {r["server"]: r for r in lines if "server" in r}
    assert set(per_server) == {sid for sid, _ in targets}
    assert all(r["error"] is None for r in per_server.values()), per_server
    assert lines[-1]["summary"]["servers"] == 4
    figures = timeline_figures(timeline, list(per_server))
    assert figures.executions == 4
    assert early_done({sid: r["done"] for sid, r in per_server.items()}, timeline) == list(per_server)
    assert sorted(figures.outside_maintenance) == sorted(per_server)
