"""Fleet-wide ``max_concurrency``/``max_errors`` across the package rollouts of one run.

The pure rules (shares, free slots, the lock-free fixed shares), then two real ``Rollout``s of
different packages sharing one run folder against the in-memory client, including two workers
admitting servers at the same moment.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.patching.fleet_budget import FleetBudget, PackageLoad, fixed_share, free_slots, share
from include.patching.packages import LINUX_YUM, WINDOWS_2012, PatchPackage
from include.patching.rollout import Rollout, RolloutConfig
from include.patching.rollout_state import Ledger, ledger_path, load_path
from include.patching.states import ERROR_STATES, ServerState
from include.patching.watch import WatchState
from include.timefmt import utc_text
from tests.patching.memory_api import TIMEOUT, MemoryApi, ours, report

LINUX = [f"va1lin{i:02d}" for i in range(6)]
WINDOWS = ["va1win01", "va1win02"]


def load(key: str, in_flight: int = 0, queued: int = 0, errors: int = 0) -> PackageLoad:
    return PackageLoad(key, in_flight, queued, errors)


# --- the rules ---------------------------------------------------------------------------------


def test_a_share_is_proportional_to_the_remaining_servers():
    assert share(10, load("a", queued=30), [load("b", queued=10)]) == 7  # 10 * 30/40 = 7.5
    assert share(10, load("b", queued=10), [load("a", queued=30)]) == 2  # 2.5, rounded down


def test_a_share_follows_the_remaining_work_once_durations_are_known():
    slow, fast = load("win", queued=10), load("lin", queued=20)
    assert share(10, slow, [fast]) == 3  # counts alone: 10 of 30
    slow = PackageLoad("win", 0, 10, 0, mean_seconds=200.0)
    fast = PackageLoad("lin", 0, 20, 0, mean_seconds=50.0)
    assert share(10, slow, [fast]) == 6  # 2000 s of work against 1000 s
    assert share(10, fast, [slow]) == 3
    unknown = PackageLoad("win", 0, 10, 0)  # none completed yet: the fleet's mean stands in
    assert share(10, unknown, [fast]) == 3


def test_servers_running_long_make_a_package_look_slow_before_any_completes():
    now = datetime.now(UTC)
    running = {
        f"w{i}": {"phase": "submitted", "request_time": utc_text(now - timedelta(seconds=300))}
        for i in range(2)
    }
    queued = {f"q{i}": {"phase": "queued"} for i in range(8)}
    slow = PackageLoad.of_servers("win", running | queued)
    assert slow.mean_seconds == pytest.approx(300, abs=5)
    fast = PackageLoad("lin", 0, 10, 0, mean_seconds=60.0)
    assert share(10, slow, [fast]) == 8  # 10 x 300 s of work against 10 x 60 s


def test_a_share_is_at_least_one_slot():
    assert share(10, load("a", queued=1), [load("b", queued=1000)]) == 1


def test_once_the_siblings_have_finished_one_package_may_use_every_slot():
    assert share(10, load("a", queued=3), [load("b", errors=2)]) == 10
    assert share(10, load("a", queued=3), [load("b", in_flight=1)]) < 10  # not finished yet


def test_free_slots_never_take_the_fleet_over_its_limit():
    # b still holds 9 slots from when it had more to do; a's share alone would allow 5
    mine, other = load("a", queued=10), load("b", in_flight=9, queued=1)
    assert share(10, mine, [other]) == 5
    assert free_slots(10, mine, [other]) == 1
    assert free_slots(10, load("a", in_flight=2, queued=8), [load("b", in_flight=8)]) == 0  # share: 5


def test_fixed_shares_add_up_to_the_limit_and_a_zero_share_waits_for_the_siblings():
    targets = {"a": 5, "b": 3, "c": 0}
    shares = [fixed_share(3, k, targets, set()) for k in targets]
    assert shares == [2, 1, 0] and sum(shares) == 3
    assert fixed_share(1, "b", targets, set()) == 0  # a gets the one slot first
    assert fixed_share(1, "b", targets, {"a"}) == 1


# --- two rollouts sharing one run folder -------------------------------------------------------


def rollout_of(
    folder: Path,
    api: MemoryApi,
    package: PatchPackage,
    servers: list[str],
    *,
    max_concurrency: int,
    max_errors: int = 0,
) -> Rollout:
    ledger = Ledger.open(
        ledger_path(folder, package.key),
        package_key=package.key,
        package_id=package.package_id,
        alias="DEMO",
        targets=[(s, False) for s in servers],
    )
    config = RolloutConfig(
        package=package,
        alias="DEMO",
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        server_timeout=60,
        maintenance_timeout=TIMEOUT,
        job_poll_interval=0.01,
    )
    planned = {LINUX_YUM.key: len(LINUX), WINDOWS_2012.key: len(WINDOWS)}
    fleet = FleetBudget(folder, package.key, planned, max_concurrency=max_concurrency, max_errors=max_errors)
    return Rollout(api, ledger, config, fleet=fleet)


def finish_all(api: MemoryApi, rollout: Rollout) -> None:
    api.start_queued()
    api.complete_all()
    ids = rollout.in_flight_ids()
    rollout.apply({sid: report(WatchState.COMPLETED, execution=ours(api, sid)) for sid in ids})


def fleet_in_flight(*rollouts: Rollout) -> int:
    return sum(len(r.in_flight_ids()) for r in rollouts)


def test_two_packages_share_the_fleet_limit_and_the_last_one_takes_every_slot(tmp_path):
    api = MemoryApi(LINUX + WINDOWS)
    linux = rollout_of(tmp_path, api, LINUX_YUM, LINUX, max_concurrency=4)
    windows = rollout_of(tmp_path, api, WINDOWS_2012, WINDOWS, max_concurrency=4)
    assert len(linux.fill()) == 3  # 4 x 6/8: windows has not started, its 2 targets count queued
    assert len(windows.fill()) == 1  # 4 x 2/8
    assert fleet_in_flight(linux, windows) == 4
    finish_all(api, windows)
    assert len(windows.fill()) == 1  # its last server
    finish_all(api, windows)
    assert windows.finished
    finish_all(api, linux)
    assert len(linux.fill()) == 3  # windows is done: every slot, for the 3 left
    assert fleet_in_flight(linux, windows) == 3


def test_errors_of_a_sibling_package_count_against_the_fleet_budget(tmp_path):
    api = MemoryApi(LINUX + WINDOWS)
    linux = rollout_of(tmp_path, api, LINUX_YUM, LINUX, max_concurrency=2, max_errors=1)
    windows = rollout_of(tmp_path, api, WINDOWS_2012, WINDOWS, max_concurrency=2, max_errors=1)
    windows.fill()
    failed = {sid: report(WatchState.JOB_FAILED, "queue job failed") for sid in windows.in_flight_ids()}
    windows.apply(failed)
    assert windows.errors() == 1 and not linux.budget_exhausted()
    windows.fill()
    windows.apply({sid: report(WatchState.JOB_FAILED, "queue job failed") for sid in windows.in_flight_ids()})
    assert linux.errors() == 0 and linux.budget_errors() == 2
    assert linux.budget_exhausted() and linux.fill() == []
    linux.finish(tmp_path / "results.json")
    assert {e.state for e in linux.entries.values()} == {ServerState.NOT_ATTEMPTED}
    assert "error budget exhausted: 2 errors > max_errors 1" in linux.entries[LINUX[0]].reason


@pytest.mark.parametrize("state", sorted(ERROR_STATES))
def test_every_error_state_of_a_sibling_counts_as_the_rollout_counts_it(tmp_path, state):
    """Unhealthy, reverted and revert_failed servers spend the budget like failed ones (the
    rollout's own ``errors()``): the fleet budget must agree, or one package stops while the
    other goes on."""
    api = MemoryApi(LINUX + WINDOWS)
    linux = rollout_of(tmp_path, api, LINUX_YUM, LINUX, max_concurrency=2, max_errors=0)
    windows = rollout_of(tmp_path, api, WINDOWS_2012, WINDOWS, max_concurrency=2, max_errors=0)
    windows.entries[WINDOWS[0]].end(ServerState(state), "test", utc_text(datetime.now(UTC)))
    windows.ledger.save()
    assert windows.errors() == 1 and linux.budget_errors() == 1
    assert linux.budget_exhausted() and linux.fill() == []


def test_a_staged_package_halts_cleanly_when_a_sibling_used_up_the_fleet_budget(tmp_path):
    """Found with make up: the stage gate looked for this package's own errors to name the stage
    and crashed (max() of nothing) on every retry when all the errors were the sibling's."""
    api = MemoryApi(LINUX + WINDOWS)
    linux = rollout_of(tmp_path, api, LINUX_YUM, LINUX, max_concurrency=2, max_errors=0)
    linux.ledger.data["stages"] = [{"index": 1, "spec": "1", "servers": LINUX[:1], "note": ""}]
    for sid in LINUX:
        linux.entries[sid].stage = 1 if sid == LINUX[0] else 2
    windows = rollout_of(tmp_path, api, WINDOWS_2012, WINDOWS, max_concurrency=2, max_errors=0)
    windows.entries[WINDOWS[0]].end(ServerState.FAILED, "patch failed", utc_text(datetime.now(UTC)))
    windows.ledger.save()
    assert linux.fill() == []
    assert linux.gate.halt_reason() == (
        "rollout halted: stage 1 of 1 stopped: the run's other packages used up the fleet-wide "
        "error budget (1 errors > max_errors 0)"
    )


def test_two_workers_admitting_at_the_same_moment_stay_within_the_limit(tmp_path):
    """With one slot, each package's share is that slot ("at least 1"); the second admission
    waits for the first one's ``submitting`` to be on disk (the lock) and gets none."""
    api = MemoryApi(LINUX + WINDOWS)
    linux = rollout_of(tmp_path, api, LINUX_YUM, LINUX, max_concurrency=1)
    windows = rollout_of(tmp_path, api, WINDOWS_2012, WINDOWS, max_concurrency=1)
    marking = threading.Event()
    admitted: dict[str, list[str]] = {}

    def slow_mark(ids: list[str]) -> None:
        marking.set()
        time.sleep(0.3)  # without the lock, the other admission reads the ledger meanwhile
        windows._mark_submitting(ids)

    def windows_admits() -> None:
        admitted["windows"] = windows.fleet.admit(windows.ledger, WINDOWS, slow_mark)  # type: ignore[union-attr]

    worker = threading.Thread(target=windows_admits)
    worker.start()
    assert marking.wait(5)
    admitted["linux"] = linux.fleet.admit(linux.ledger, LINUX, linux._mark_submitting)  # type: ignore[union-attr]
    worker.join(5)
    assert admitted == {"windows": [WINDOWS[0]], "linux": []}
    assert fleet_in_flight(linux, windows) == 1


@pytest.mark.parametrize("limit", [1, 2])
def test_a_small_limit_is_never_exceeded_by_the_at_least_one_rule(tmp_path, limit):
    api = MemoryApi(LINUX + WINDOWS)
    linux = rollout_of(tmp_path, api, LINUX_YUM, LINUX, max_concurrency=limit)
    windows = rollout_of(tmp_path, api, WINDOWS_2012, WINDOWS, max_concurrency=limit)
    linux.fill()
    windows.fill()
    assert fleet_in_flight(linux, windows) == limit


def test_siblings_read_each_others_load_from_a_small_digest_written_before_the_ledger(tmp_path):
    api = MemoryApi(LINUX + WINDOWS)
    linux = rollout_of(tmp_path, api, LINUX_YUM, LINUX, max_concurrency=4)
    windows = rollout_of(tmp_path, api, WINDOWS_2012, WINDOWS, max_concurrency=4)
    linux.fill()
    digest, ledger = load_path(tmp_path, LINUX_YUM.key), ledger_path(tmp_path, LINUX_YUM.key)
    assert digest.stat().st_size < 500 and digest.stat().st_mtime_ns <= ledger.stat().st_mtime_ns
    seen = windows.fleet.siblings()[0]
    assert (seen.in_flight, seen.queued, seen.errors) == (3, len(LINUX) - 3, 0)
    from_ledger = PackageLoad.of_servers(LINUX_YUM.key, json.loads(ledger.read_text())["servers"])
    assert seen.mean_seconds == pytest.approx(from_ledger.mean_seconds, abs=1.0)
    # without a digest (a ledger written before there was one) the ledger itself is read
    digest.unlink()
    old = windows.fleet.siblings()[0]
    assert (old.in_flight, old.queued, old.errors) == (3, len(LINUX) - 3, 0)
