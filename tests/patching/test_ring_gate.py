"""The ring gate decides from the required ring's audited runs of the same patch cycle."""

from __future__ import annotations

import pytest

from include.patching.ring_gate import gate_verdict


def doc(
    run_id,
    *,
    dag_id="patch_ring_dev",
    cycle="2026-12",
    states=(),
    dry_run=False,
    ended="2026-12-10T23:00:00Z",
):
    return {
        "run": {
            "dag_id": dag_id,
            "run_id": run_id,
            "params": {"ring": "dev", "patch_cycle": cycle},
            "dry_run": dry_run,
            "started_at": ended,
            "ended_at": ended,
        },
        "servers": [{"server_id": f"s{i}", "state": s} for i, s in enumerate(states)],
    }


def verdict(documents):
    return gate_verdict(documents, ring="staging", requires="dev", cycle="2026-12")


def test_open_when_the_latest_run_of_the_cycle_had_no_failures():
    result = verdict(
        [
            doc("r1", states=["failed"]),
            doc("r2", states=["patched", "not_attempted"], ended="2026-12-11T01:00:00Z"),
        ]
    )
    assert result.open and result.evidence_run_id == "r2"


def test_closed_when_the_latest_run_had_failed_or_timed_out_servers_naming_them():
    result = verdict([doc("r1", states=["patched", "failed", "timed_out"])])
    assert not result.open
    assert result.reason == (
        "ring staging not started: ring dev's run r1 of patch cycle 2026-12 ended with 2 failed server(s): "
        "s1 (failed), s2 (timed_out)"
    )


@pytest.mark.parametrize("state", ["unhealthy", "reverted", "revert_failed"])
def test_a_patch_that_went_wrong_in_another_way_closes_the_gate_too(state):
    """Unhealthy after patching, or rolled back to the snapshot: not a result to go wider on."""
    result = verdict([doc("r1", states=["patched", state])])
    assert not result.open and f"s1 ({state})" in result.reason


def test_closed_without_a_run_of_this_cycle_dry_runs_and_other_dags_do_not_count():
    result = verdict(
        [
            doc("old", cycle="2026-11", states=["patched"]),
            doc("dry", dry_run=True, states=["planned_dry_run"]),
            doc("fleet", dag_id="patch_fleet", states=["patched"]),
        ]
    )
    assert not result.open
    assert result.reason == (
        "ring staging not started: it requires ring dev, which has no completed (audited, non-dry) run "
        "in patch cycle 2026-12"
    )
