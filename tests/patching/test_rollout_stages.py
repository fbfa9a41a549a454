"""``Rollout`` with stages, cluster limits and health verdicts, against the in-memory client.

A stage starts only once the one before it has ended; an unhealthy server fails its stage and
halts the rollout (the rest ``not_attempted`` with the stage named); servers of one cluster are
never in flight together; the stage plan lives in the ledger, so a restarted task keeps it.
"""

from __future__ import annotations

from include.patching.health import HealthResult, HealthSpec
from include.patching.packages import LINUX_YUM
from include.patching.rollout import Rollout, RolloutConfig
from include.patching.rollout_state import Ledger, ledger_path, results_path
from include.patching.stages import ledger_fields
from include.patching.states import ServerState
from include.patching.watch import WatchState
from tests.patching.memory_api import TIMEOUT, MemoryApi, ours, report

ROWS = [
    {"id": "va1a01", "data_center": "VA1", "os": "centOS6_64Bit"},
    {"id": "va1a02", "data_center": "VA1", "os": "centOS6_64Bit"},
    {"id": "va1a03", "data_center": "VA1", "os": "centOS6_64Bit"},
    {"id": "uc1b01", "data_center": "UC1", "os": "redHat6_64Bit", "custom_fields": {"cluster": "db"}},
    {"id": "uc1b02", "data_center": "UC1", "os": "redHat6_64Bit", "custom_fields": {"cluster": "db"}},
    {"id": "uc1b03", "data_center": "UC1", "os": "redHat6_64Bit", "custom_fields": {"cluster": "db"}},
]
IDS = [r["id"] for r in ROWS]


def staged(tmp_path, api, waves, *, health=False, stop_after=None, max_concurrency=10, max_errors=0):
    header, fields, _ = ledger_fields(ROWS, IDS, waves, None)
    ledger = Ledger.open(
        ledger_path(tmp_path, LINUX_YUM.key),
        package_key=LINUX_YUM.key,
        package_id=LINUX_YUM.package_id,
        alias="DEMO",
        targets=[(sid, False) for sid in IDS],
        header=header,
        entry_fields=fields,
    )
    config = RolloutConfig(
        package=LINUX_YUM,
        alias="DEMO",
        max_concurrency=max_concurrency,
        max_errors=max_errors,
        server_timeout=60,
        maintenance_timeout=TIMEOUT,
        job_poll_interval=0.01,
        health=HealthSpec() if health else None,
        stop_after_stage=stop_after,
    )
    return Rollout(api, ledger, config)


def finish_round(api, rollout, started, unhealthy=()):
    api.start_queued()
    api.complete_all()
    outcomes = {}
    for sid in started:
        outcome = report(WatchState.COMPLETED, execution=ours(api, sid))
        if rollout.config.health is not None:
            verdict = HealthResult(
                sid not in unhealthy, "503 from its health URL" if sid in unhealthy else "ok"
            )
            outcome["health"] = verdict.as_dict()
        outcomes[sid] = outcome
    rollout.apply(outcomes)


def test_stages_run_one_after_another_and_a_cluster_is_never_two_in_flight(tmp_path):
    api = MemoryApi(IDS)
    rollout = staged(tmp_path, api, ["1", "2", "100%"])
    stage_of = {sid: e.stage for sid, e in rollout.entries.items()}
    order, in_flight_clusters = [], []
    while not rollout.finished:
        started = rollout.fill()
        assert started, "a stage must make progress"
        assert len({stage_of[s] for s in started}) == 1
        in_flight_clusters.append([rollout.entries[s].cluster for s in rollout.in_flight_ids()])
        order.append(stage_of[started[0]])
        finish_round(api, rollout, started)
    assert order == sorted(order) and set(order) == {1, 2, 3}
    for clusters in in_flight_clusters:
        named = [c for c in clusters if c]
        assert len(named) == len(set(named)), in_flight_clusters
    counts = rollout.finish(results_path(tmp_path, LINUX_YUM.key))
    assert counts.get(ServerState.PATCHED_NO_UPDATES, 0) + counts.get(ServerState.PATCHED, 0) == 6, counts


def test_an_unhealthy_server_fails_its_stage_and_halts_everything_after_it(tmp_path):
    api = MemoryApi(IDS)
    rollout = staged(tmp_path, api, ["1", "100%"], health=True, max_errors=5)
    canary = rollout.fill()
    assert len(canary) == 1
    (first,) = canary
    finish_round(api, rollout, canary, unhealthy={first})
    assert rollout.entries[first].state is ServerState.UNHEALTHY
    assert rollout.entries[first].reason == "patched, but unhealthy afterwards: 503 from its health URL"
    assert rollout.errors() == 1 and not rollout.budget_exhausted()  # within budget, still halted
    assert rollout.fill() == [] and rollout.finished
    rollout.finish(results_path(tmp_path, LINUX_YUM.key))
    rest = [e for sid, e in rollout.entries.items() if sid != first]
    assert {e.state for e in rest} == {ServerState.NOT_ATTEMPTED}
    assert all("stage 1 of 2 failed its health gate" in e.reason for e in rest)
    assert api.executed == [first]


def test_a_server_reverted_after_turning_unhealthy_still_fails_its_stage_gate(tmp_path):
    """Whatever order the revert and the gate check come in (a restarted task settles first)."""
    api = MemoryApi(IDS)
    rollout = staged(tmp_path, api, ["1", "100%"], health=True, max_errors=5)
    (first,) = rollout.fill()
    finish_round(api, rollout, [first], unhealthy={first})
    entry = rollout.entries[first]
    entry.failed_state, entry.state = entry.state, ServerState.REVERTED
    del rollout.ledger.data["halt"]  # as if the gate had not been checked before the revert
    rollout.gate.check(False, 1, 5)
    halt = rollout.gate.halt()
    assert halt is not None and halt["stage"] == 1 and "failed its health gate" in halt["reason"]


def test_a_canary_failure_with_no_budget_halts_the_rollout_after_stage_one(tmp_path):
    api = MemoryApi(IDS)
    rollout = staged(tmp_path, api, ["1", "2", "100%"])
    canary = rollout.fill()
    api.start_queued()
    rollout.apply({canary[0]: report(WatchState.JOB_FAILED, "queue job failed")})
    assert rollout.fill() == [] and rollout.finished
    rollout.finish(results_path(tmp_path, LINUX_YUM.key))
    reasons = {e.reason for sid, e in rollout.entries.items() if sid != canary[0]}
    assert reasons == {"rollout halted: stage 1 of 3 used up the error budget (1 errors > max_errors 0)"}


def test_pause_after_the_first_stage_and_a_restart_keeps_the_plan(tmp_path):
    api = MemoryApi(IDS)
    rollout = staged(tmp_path, api, ["1", "100%"], stop_after=1)
    finish_round(api, rollout, rollout.fill())
    assert rollout.fill() == [] and rollout.finished and rollout.gate.paused()
    assert not rollout.gate.halt()
    # the continuation task rebuilds the rollout from the ledger, without stopping
    ledger = Ledger.load(ledger_path(tmp_path, LINUX_YUM.key))
    resumed = Rollout(api, ledger, RolloutConfig(**{**rollout.config.__dict__, "stop_after_stage": None}))
    assert {sid: e.stage for sid, e in resumed.entries.items()} == {
        sid: e.stage for sid, e in rollout.entries.items()
    }
    started = resumed.fill()
    assert started and all(resumed.entries[s].stage == 2 for s in started)
