"""A server's outcome is what the patching service finally did, observed (I8)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from include.patching.watch import WatchState
from include.timefmt import parse_utc_text
from tests.patching.memory_api import MemoryApi, make_rollout, ours, patch_attempt, report

SID = "va1demoapp01"
OPENSSL = "openssl-1.0.1e-42.el6_7.4.x86_64"
SUDO = "sudo-1.8.6p3-20.el6_7.x86_64"


def patched_once(tmp_path, patches: list[dict], initiations: int = 3) -> dict:
    api = MemoryApi([SID])
    api.patches[SID] = patches
    rollout = make_rollout(tmp_path, api)
    rollout.fill()
    api.start_queued()
    api.complete_all(initiations=initiations)
    rollout.apply({SID: report(WatchState.COMPLETED, execution=ours(api, SID))})
    rollout.finish(tmp_path / "results.json")
    (row,) = json.loads((tmp_path / "results.json").read_text())["servers"]
    return row


def test_a_patch_that_failed_once_and_then_installed_is_patched(tmp_path):
    """VA1DEMOAPP01's case: openssl fails in cycle 1 and installs in cycle 2 (§12 #36)."""
    row = patched_once(
        tmp_path,
        [
            patch_attempt(OPENSSL, "failed", 1),
            patch_attempt(SUDO, "completed", 5),
            patch_attempt(OPENSSL, "completed", 20),
        ],
    )
    assert row["state"] == "patched" and row["reason"] == ""
    assert (row["patches_installed"], row["patches_failed"]) == (2, 0)
    assert {p["name"]: (p["status"], p["attempts"]) for p in row["patches"]} == {
        OPENSSL: ("completed", 2),
        SUDO: ("completed", 1),
    }


def test_a_patch_whose_last_attempt_failed_fails_the_server(tmp_path):
    row = patched_once(
        tmp_path, [patch_attempt(OPENSSL, "completed", 1), patch_attempt(OPENSSL, "failed", 20)]
    )
    assert row["state"] == "failed" and row["reason"] == "1 of 1 patches failed"
    assert row["patches_failed"] == 1


def test_reboots_are_not_inferred_and_attempts_are_observed(tmp_path):
    """I8 (item 9): the service lists initiations; it never says how many reboots happened."""
    row = patched_once(tmp_path, [patch_attempt(SUDO, "completed", 1)], initiations=3)
    assert row["attempts"] == 3
    assert row["reboots"] is None


def test_an_outcome_is_dated_on_our_clock_and_the_apis_own_times_are_kept(tmp_path):
    """Issue 10: the API's clock (here 5 hours ahead) dates the execution; ``observed_at`` is ours."""
    api = MemoryApi([SID, "va1demoapp02"], api_offset=timedelta(hours=5))
    rollout = make_rollout(tmp_path, api, max_errors=10, server_timeout=3600)
    before = datetime.now(UTC).replace(microsecond=0)
    rollout.fill()
    api.start_queued()
    api.complete_all()
    rollout.apply(
        {
            SID: report(WatchState.COMPLETED, execution=ours(api, SID)),
            "va1demoapp02": report(WatchState.JOB_FAILED, "queue job failed"),
        }
    )
    rollout.finish(tmp_path / "results.json")
    after = datetime.now(UTC)
    rows = {r["server_id"]: r for r in json.loads((tmp_path / "results.json").read_text())["servers"]}
    for row in rows.values():
        assert before <= parse_utc_text(row["observed_at"]) <= after, row  # our clock
    patched = rows[SID]
    assert patched["state"] == "patched"
    assert parse_utc_text(patched["ended_at"]) - parse_utc_text(patched["observed_at"]) > timedelta(hours=4)
    assert rows["va1demoapp02"]["state"] == "failed"


def test_a_completion_seen_in_the_detail_is_judged_from_it_without_reading_it_again(tmp_path, monkeypatch):
    api = MemoryApi([SID])
    rollout = make_rollout(tmp_path, api)
    rollout.fill()
    api.start_queued()
    api.complete_all()
    reads: list[str] = []
    monkeypatch.setattr(api, "get_patch_detail", lambda *args: reads.append(args[1]))
    outcome = report(WatchState.COMPLETED, execution=ours(api, SID))
    rows = [
        {
            "name": OPENSSL,
            "kb": None,
            "result_code": 4,
            "status": "failed",
            "start_time": None,
            "end_time": None,
        }
    ]
    rollout.apply({SID: outcome | {"patches": rows}})
    rollout.finish(tmp_path / "results.json")
    (row,) = json.loads((tmp_path / "results.json").read_text())["servers"]
    assert reads == []  # one read saw the completion and the patches
    assert row["state"] == "failed" and row["patches_failed"] == 1
