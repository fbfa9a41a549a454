"""``deferrable=False``: the rollout keeps its loop in the worker, polls and refills at once — and two
packages rolled out at the same time stay within the fleet-wide limit (real simulator, in-process)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk.exceptions import TaskDeferred

from include.patching.packages import WINDOWS_2012
from include.patching.rollout_state import Ledger, Phase, ledger_path
from include.patching.states import ServerState
from patchflow.triggers.patching import PatchCompletionTrigger
from tests.plugins.cloud import Cloud
from tests.plugins.operators.conftest import Driver, row, write_plan

LINUX = [f"va1demolin0{i}" for i in range(1, 6)]
WINDOWS = [f"va1demowin0{i}" for i in range(1, 4)]
PATCH = [{"package": "tzdata-2016b-1.el6.noarch", "duration": 30}]
KB = [{"name": "Security Update for Windows Server 2012 R2", "kb": "KB3138615", "duration": 30}]


def fleet() -> dict[str, dict[str, Any]]:
    servers = {sid: {"os": "centOS6_64Bit", "patches": PATCH} for sid in LINUX}
    windows = {"os": "windows2012R2DataCenter_64Bit", "patches": KB, "group": "Win"}
    servers |= dict.fromkeys(WINDOWS, windows)
    return servers


class InFlightWatch:
    """Reads both ledgers as fast as it can; remembers the most servers in flight at once."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.most = folder, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        while not self._stop.is_set():
            total = 0
            for ledger in self.folder.glob("rollout_*.ledger.json"):
                try:
                    servers = json.loads(ledger.read_text())["servers"]
                except (OSError, ValueError):
                    continue
                total += sum(1 for e in servers.values() if e["phase"] in ("submitting", "submitted"))
            self.most = max(self.most, total)

    def __enter__(self) -> InFlightWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def rollout(plan: Path, package: str, **kwargs: Any) -> Driver:
    return Driver(
        plan_path=str(plan),
        task_id=f"rollout_{package}",
        package_key=package,
        fleet_wide=True,
        deferrable=False,
        max_concurrency=2,
        max_errors=0,
        **kwargs,
    )


def test_in_the_worker_two_packages_finish_within_the_fleet_limit_without_deferring(start_cloud, tmp_path):
    cloud: Cloud = start_cloud(fleet())
    rows = [row(s) for s in LINUX] + [row(s, package="windows_2012") for s in WINDOWS]
    plan = write_plan(tmp_path, rows)
    out: dict[str, Any] = {}

    def run(package: str) -> None:
        out[package] = rollout(plan, package).turn()  # no TaskDeferred: the loop stays here

    with InFlightWatch(tmp_path) as watch:
        threads = [threading.Thread(target=run, args=(p,)) for p in ("linux_yum", "windows_2012")]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert set(out) == {"linux_yum", "windows_2012"}, "a rollout did not finish"
    assert out["linux_yum"]["counts"] == {"patched": 5, "total": 5}
    assert out["windows_2012"]["counts"] == {"patched": 3, "total": 3}
    assert 1 <= watch.most <= 2  # fleet-wide max_concurrency 2, both packages filling at once
    assert all(cloud.executions_started(s) == 1 for s in LINUX + WINDOWS)  # I1
    cloud.settle()
    assert not any(cloud.in_maintenance(s) for s in LINUX + WINDOWS)  # I2


def test_with_every_fleet_slot_held_by_a_sibling_the_rollout_waits_for_one(start_cloud, tmp_path):
    """Nothing of its own in flight and no slot free: it defers for a poll interval (not finishing
    its queued servers as not attempted), then starts once the sibling has ended its servers."""
    start_cloud(fleet())
    rows = [row(s) for s in LINUX] + [row(s, package="windows_2012") for s in WINDOWS]
    plan = write_plan(tmp_path, rows)
    sibling = Ledger.open(
        ledger_path(tmp_path, WINDOWS_2012.key),
        package_key=WINDOWS_2012.key,
        package_id=WINDOWS_2012.package_id,
        alias="DEMO",
        targets=[(s, False) for s in WINDOWS],
    )
    for sid in WINDOWS[:2]:
        sibling.servers[sid].phase = Phase.SUBMITTED
    sibling.save()
    driver = Driver(plan_path=str(plan), fleet_wide=True, max_concurrency=2)
    with pytest.raises(TaskDeferred) as waiting:
        driver.turn()
    assert isinstance(waiting.value.trigger, TimeDeltaTrigger)
    for sid in WINDOWS:
        sibling.servers[sid].end(ServerState.PATCHED, "", "2026-12-01T00:00:00Z")
    sibling.save()
    with pytest.raises(TaskDeferred) as started:
        driver.turn("resume", {"event": "2026-12-01T00:00:00+00:00"})  # the time trigger's event
    assert isinstance(started.value.trigger, PatchCompletionTrigger)
    assert len(started.value.trigger.servers) == 2  # the sibling has finished: every slot
