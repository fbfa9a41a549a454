"""The invariant checker itself: each check passes a clean run and names a broken one.

Fast (no process): synthetic simulator snapshots, audit rows and texts. A checker that could not
fail would make the whole fault matrix worthless, so every check is shown failing here.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.faults.invariants import (
    Expectations,
    Invariant,
    RunRecord,
    SimSnapshot,
    check_invariants,
    declares_left_in_maintenance,
)

pytestmark = pytest.mark.faults

NOW = 10_000.0
SECRET = "pw-PLANTED-test"


def plan(ex_id: str, server: str, *, patches: list[tuple[str, bool]], reboot: bool = False) -> dict:
    """An execution that ran ``patches`` (message, ok) in one initiation, then a clean one."""
    first = {
        "start": 100.0,
        "end": 200.0,
        "patches": [{"begin_message": m, "end": 150.0, "ok": ok} for m, ok in patches],
        "reboot": [200.0, 260.0] if reboot else None,
    }
    last = {"start": 300.0, "end": 400.0, "patches": [], "reboot": None}
    return {"id": ex_id, "server": server, "end": 400.0, "halt_at": None, "initiations": [first, last]}


def snapshot(
    servers: dict[str, dict[str, Any]],
    plans: list[dict] = (),
    *,
    jobs: dict[str, dict] | None = None,
    counters: dict | None = None,
    status: str = "completed",
) -> SimSnapshot:
    state = {
        "servers": {
            sid: {"account": "FLT", "powerState": "started", "inMaintenanceMode": False, "executions": []}
            | info
            for sid, info in servers.items()
        },
        "jobs": jobs or {},
        "executions": {p["id"]: {"status": status} for p in plans},
    }
    return SimSnapshot(state, counters or {}, {p["id"]: p for p in plans}, NOW, NOW, 0.01)


def row(sid: str, state: str, **extra: Any) -> dict:
    return {
        "server_id": sid,
        "state": state,
        "execution_id": None,
        "reboots": None,
        "patches_failed": 0,
    } | extra


def record(rows: list[dict], *, texts: dict | None = None, state: str | None = "success") -> RunRecord:
    return RunRecord("run1", state, 10.0, 60.0, {"servers": rows}, texts or {"run log": "all fine"})


EXPECT = Expectations("FLT", frozenset({"a", "b"}), frozenset({"a", "b"}), (SECRET,))
BEFORE = snapshot({"a": {}, "b": {}})


def clean_run() -> tuple[SimSnapshot, RunRecord]:
    after = snapshot(
        {"a": {"executions": ["X-1"]}, "b": {}},
        [plan("X-1", "a", patches=[("openssl", True)], reboot=True)],
        counters={"executions_per_server": {"a": 1}},
        jobs={"j1": {"kind": "executePackage", "servers": ["a"]}},
    )
    rows = [row("a", "patched", execution_id="X-1", reboots=1), row("b", "skipped_unsupported_os")]
    return after, record(rows)


def found(after: SimSnapshot, run: RunRecord, expect: Expectations = EXPECT, settled=None) -> set:
    return {(v.invariant, v.server) for v in check_invariants(BEFORE, after, settled or after, run, expect)}


def test_a_clean_run_has_no_violation():
    after, run = clean_run()
    assert found(after, run) == set()


def test_i1_a_second_execute_package_refused_by_the_lock_is_a_violation():
    after, run = clean_run()
    counters = {"executions_per_server": {"a": 1}, "duplicate_executions_rejected": {"a": 1}}
    after = SimSnapshot(after.state, counters, after.plans, NOW, NOW, 0.01)
    assert (Invariant.I1, "a") in found(after, run)


def test_i2_left_in_maintenance_unless_before_or_declared_when_the_platform_refused():
    after, run = clean_run()
    left = snapshot(
        {"a": {"inMaintenanceMode": True, "executions": ["X-1"]}, "b": {}}, list(after.plans.values())
    )
    assert (Invariant.I2, "a") in found(after, run, settled=left)
    refused = Expectations(
        "FLT", EXPECT.in_scope, EXPECT.inventoried, (SECRET,), release_refused=frozenset({"a"})
    )
    assert (Invariant.I2, "a") in found(after, run, refused, settled=left)
    declared = record([run.audit["servers"][0] | {"maintenance": "left_on"}, run.audit["servers"][1]])
    assert (Invariant.I2, "a") not in found(after, declared, refused, settled=left)


def test_i2_a_server_in_maintenance_before_the_run_must_stay_in_it():
    before = snapshot({"a": {}, "b": {"inMaintenanceMode": True}})
    after, run = clean_run()
    violations = check_invariants(before, after, after, run, EXPECT)
    assert (Invariant.I2, "b") in {(v.invariant, v.server) for v in violations}


def test_i3_missing_duplicate_and_unknown_rows():
    after, run = clean_run()
    rows = [run.audit["servers"][0], run.audit["servers"][0] | {"state": "mostly_fine"}]
    assert {(Invariant.I3, "a"), (Invariant.I3, "b")} <= found(after, record(rows))
    assert (Invariant.I3, None) in found(after, RunRecord("run1", "success", 1.0, 60.0, None, {}))


def test_i4_rows_must_match_the_executions_of_the_run():
    after, run = clean_run()
    never = record([row("a", "not_attempted"), row("b", "patched", execution_id="X-0")])
    assert {(Invariant.I4, "a"), (Invariant.I4, "b")} <= found(after, never)
    other = record([row("a", "patched", execution_id="X-0", reboots=1), row("b", "skipped_unsupported_os")])
    assert (Invariant.I4, "a") in found(after, other)
    pending = snapshot({"a": {"executions": ["X-1"]}, "b": {}}, list(after.plans.values()), status="pending")
    assert (Invariant.I4, "a") in found(pending, run)


def test_i4_timed_out_although_completed_long_before_the_run_gave_up():
    after, _ = clean_run()  # X-1 ended at simulated 400 s; NOW (10,000 s) maps to our wall clock
    early = "1970-01-01T02:46:40Z"  # wall 10,000 s = simulated 10,000 s: long after the end
    late_row = row("a", "timed_out", execution_id="X-1", ended_at=early)
    assert (Invariant.I4, "a") in found(after, record([late_row, row("b", "skipped_unsupported_os")]))
    given_up_first = row("a", "timed_out", execution_id="X-1", ended_at="1970-01-01T02:46:36Z")
    in_time = snapshot(after.state["servers"], list(after.plans.values()))
    in_time = SimSnapshot(in_time.state, in_time.counters, in_time.plans, 500.0, NOW, 0.01)
    assert (Invariant.I4, "a") not in found(
        in_time, record([given_up_first, row("b", "skipped_unsupported_os")])
    )


def test_i8_each_patch_judged_by_its_last_attempt_and_counts_never_guessed():
    fail_once = plan("X-1", "a", patches=[("openssl", False), ("openssl", True)])
    after = snapshot(
        {"a": {"executions": ["X-1"]}, "b": {}}, [fail_once], counters={"executions_per_server": {"a": 1}}
    )
    wrong = record(
        [row("a", "failed", execution_id="X-1", patches_failed=1), row("b", "skipped_unsupported_os")]
    )
    assert (Invariant.I8, "a") in found(after, wrong)
    guessed = record([row("a", "patched", execution_id="X-1", reboots=1), row("b", "skipped_unsupported_os")])
    assert (Invariant.I8, "a") in found(after, guessed)  # it never rebooted
    unreported = record(
        [row("a", "patched", execution_id="X-1", attempts=2), row("b", "skipped_unsupported_os")]
    )
    assert found(after, unreported) == set()


def test_i5_a_job_on_a_server_outside_the_selection():
    after, run = clean_run()
    narrow = Expectations("FLT", frozenset({"b"}), EXPECT.inventoried, (SECRET,))
    assert (Invariant.I5, "a") in found(after, run, narrow)


def test_i6_a_planted_secret_or_a_bearer_token_anywhere():
    after, _ = clean_run()
    rows = [row("a", "patched", execution_id="X-1", reboots=1), row("b", "skipped_unsupported_os")]
    leaked = record(rows, texts={"run log": f"login with {SECRET}"})
    token = "eyJhbGciOiJIUzI1NiJ9.eyJ1bmlxdWVfbmFtZSI6ImZsdCJ9.c2lnbmF0dXJlLWJ5dGVz"
    jwt = record(rows, texts={"XCom x": f"Bearer {token}"})
    assert (Invariant.I6, None) in found(after, leaked)
    assert (Invariant.I6, None) in found(after, jwt)


def test_i7_killed_or_over_its_bound():
    after, run = clean_run()
    killed = RunRecord("run1", None, 61.0, 60.0, run.audit, {})
    slow = RunRecord("run1", "success", 90.0, 60.0, run.audit, {})
    assert (Invariant.I7, None) in found(after, killed)
    assert (Invariant.I7, None) in found(after, slow)


@pytest.mark.parametrize(
    ("columns", "declared"),
    [
        ({"maintenance": "left_on", "maintenance_note": "release refused"}, True),
        ({"maintenance": "released"}, False),
        (
            {"maintenance": "kept_preexisting", "maintenance_note": "in maintenance before the run; left on"},
            False,
        ),
        ({"maintenance_state": "still on"}, True),
        ({}, False),
    ],
)
def test_the_maintenance_column_is_read_for_what_it_says(columns, declared):
    assert declares_left_in_maintenance({"server_id": "a", **columns}) is declared
