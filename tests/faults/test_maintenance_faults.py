"""Maintenance mode under faults (issue 8 items 1-3 and 14): I2 from the simulator's flags.

Each scenario's I2 check runs on the *settled* simulator (its clock pushed hours ahead after
the run), so a maintenance job that lands after the run is seen as it would be in production.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import assert_invariants

pytestmark = [pytest.mark.slow, pytest.mark.faults]

START_MAINTENANCE = "POST /v2/operations/{alias}/servers/startMaintenance"
LINUX = ["va1fltweb01", "va1fltweb02", "va1fltdb02", "uc1fltapp01"]


def test_lost_start_maintenance_answer_still_releases_every_server(make_lab):
    """Item 1: the answer to startMaintenance is lost; the retry hears "already in maintenance".

    The run must still know it put the servers into maintenance and take them out again.
    """
    lab = make_lab()
    lab.sim.fault(kind="drop", route=START_MAINTENANCE, count=1)
    conf = {"server_allow_list": LINUX, "max_concurrency": "4"}
    result = lab.run(conf)
    assert_invariants(result, lab.expectations(conf), run_succeeded=result.run.state == "success")


def test_maintenance_job_slower_than_the_maintenance_timeout_is_still_released(make_lab):
    """Item 2: the maintenance job starts 900 simulated seconds late (> maintenance_timeout 600 s).

    Whether the rollout waits for it or gives up on the servers, a job that lands later must
    not leave a server in maintenance. (The first job of the run is the startMaintenance of its
    one wave; without the ``queue_delay`` fault kind every job is late.)
    """
    lab = make_lab()
    lab.sim.delay_queue(900, jobs=1)
    conf = {"server_allow_list": ["va1fltweb01", "uc1fltapp01"], "max_concurrency": "2"}
    result = lab.run(conf, bound=150)
    assert_invariants(result, lab.expectations(conf))


def test_server_that_never_returns_from_reboot_fails_loudly_and_the_evidence_says_so(make_lab):
    """Item 3: VA1FLTWEB01 never comes back from its reboot; the platform refuses the release.

    I2 cannot hold for it, so the run must fail and its audit row must say the server was left
    in maintenance; every other server is released.
    """
    lab = make_lab()
    lab.sim.fault(kind="no_return_from_reboot", server="va1fltweb01")
    # 2 minutes (scaled like every timing): VA1FLTWEB01 starts its reboot about 50 s in
    conf = {"server_allow_list": ["va1fltweb01", "uc1fltapp01"], "server_timeout_minutes": 2}
    result = lab.run(conf, bound=150)
    row = result.run.rows().get("va1fltweb01", {})
    assert_invariants(
        result,
        lab.expectations(conf, release_refused={"va1fltweb01"}),
        release_was_refused_by_the_platform=result.settled.in_maintenance("va1fltweb01"),
        run_failed_loudly=result.run.state == "failed",
        server_reported_timed_out_or_failed=row.get("state") in ("timed_out", "failed"),
    )


def test_failed_maintenance_ahead_is_not_counted_against_the_error_budget(make_lab):
    """Item 14: the maintenance-ahead step of the next server fails (503 until retries run out).

    That server was never started: it must not count as an error, so with max_errors 0 the
    rollout carries on and the server after it is still patched.
    """
    lab = make_lab()
    # VA1FLTDB01 (first in plan order) is in maintenance before the run, so the first
    # startMaintenance request is the one sent ahead for VA1FLTDB02.
    lab.sim.fault(kind="error", route=START_MAINTENANCE, status=503, count=5)
    conf = {
        "server_allow_list": ["va1fltdb01", "va1fltdb02", "va1fltweb01"],
        "max_concurrency": "1",
        "max_errors": "0",
    }
    result = lab.run(conf)
    rows = result.run.rows()
    assert_invariants(
        result,
        lab.expectations(conf),
        the_rollout_kept_its_error_budget=result.run.tasks["patch_linux_yum.rollout"]["state"] == "success",
        no_server_failed_without_an_execution=not [
            s for s, r in rows.items() if r["state"] == "failed" and s not in result.executed()
        ],
        the_server_after_it_was_patched="va1fltweb01" in result.executed(),
    )
