"""The fault matrix on real Airflow components (one stack for the module, scenarios in sequence).

A triggerer killed while the rollout waits, a scheduler restarted mid-run, and the worker killed
right after each kind of POST (startMaintenance, executePackage, stopMaintenance) — before the
task could record the answer. Airflow retries or resumes; the invariants are judged from the
simulator's state after every scenario, as everywhere in the matrix.

The stack starts its own PostgreSQL and Redis on free ports (``launcher.services``), like
tests/integration/test_full_stack.py; no service of the machine is used.
"""

from __future__ import annotations

import pytest

from include.patching.chaos import (
    CRASH_AFTER_CREATE_SNAPSHOT,
    CRASH_AFTER_START_MAINTENANCE,
    CRASH_AFTER_STOP_MAINTENANCE,
    CRASH_AFTER_SUBMIT,
)
from tests.faults.harness import assert_invariants
from tests.faults.stack import FaultStack

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LINUX = ["va1fltweb01", "va1fltdb02", "uc1fltapp01"]
CONF = {"server_allow_list": LINUX, "max_concurrency": "3"}
LONG_WAIT = {**CONF, "maintenance_mode": False, "deferrable": True}
"""The disturbances need the rollout deferred for a while: every job starts 40 simulated minutes
late (24 s). Without maintenance mode, so that late maintenance jobs (item 2) stay out of it.
Deferrable, as the default is the worker's own loop."""
QUEUE_DELAY = 2400


@pytest.fixture(scope="module")
def fault_stack(make_module_lab, tmp_path_factory):
    lab = make_module_lab()
    stack = FaultStack(lab, tmp_path_factory.mktemp("stack"))
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def stack(fault_stack):
    fault_stack.reset()
    return fault_stack


def kill_when_deferred(component: str):
    def disturb(stack: FaultStack, run_id: str) -> bool:
        if not stack.wait_for_task_state(run_id, "patch_linux_yum.rollout", "deferred"):
            return False
        stack.kill_and_restart(component)
        return True

    return disturb


@pytest.mark.parametrize(
    "crash_point",
    [
        pytest.param(CRASH_AFTER_START_MAINTENANCE, id="after-startMaintenance"),
        pytest.param(CRASH_AFTER_SUBMIT, id="after-executePackage"),
        pytest.param(CRASH_AFTER_STOP_MAINTENANCE, id="after-stopMaintenance"),
    ],
)
def test_worker_killed_right_after_a_post(stack, crash_point):
    """The task process dies right after the POST was answered, before the answer was recorded;
    Airflow retries the task, which must reconcile instead of repeating or forgetting it."""
    stack.arm(crash_point)
    result = stack.run(CONF)
    assert_invariants(
        result,
        stack.lab.expectations(CONF),
        the_crash_point_fired=stack.fired(crash_point),
        the_run_succeeded=result.run.state == "success",
        every_server_ran_the_package=result.executed() == set(LINUX),
    )


def test_worker_killed_right_after_create_snapshot(stack):
    """The task process dies right after createSnapshot was answered: the retry takes no second
    snapshot and loses track of none (it adopts each server's new one), and patches."""
    conf = {**CONF, "snapshot": "best_effort"}
    stack.arm(CRASH_AFTER_CREATE_SNAPSHOT)
    result = stack.run(conf)
    queued = result.after.counters.get("operations_queued", {}).get("createSnapshot", 0)
    before = result.before.counters.get("operations_queued", {}).get("createSnapshot", 0)
    assert_invariants(
        result,
        stack.lab.expectations(conf),
        the_crash_point_fired=stack.fired(CRASH_AFTER_CREATE_SNAPSHOT),
        the_run_succeeded=result.run.state == "success",
        every_server_ran_the_package=result.executed() == set(LINUX),
        one_snapshot_request_per_server=queued - before == len(LINUX),
    )


def test_triggerer_killed_while_the_rollout_waits(stack):
    """SIGKILL of the triggerer while the rollout is deferred; a new triggerer takes the wait over."""
    stack.lab.sim.delay_queue(QUEUE_DELAY)
    result = stack.run(LONG_WAIT, disturb=kill_when_deferred("triggerer"))
    assert_invariants(
        result,
        stack.lab.expectations(LONG_WAIT),
        the_triggerer_was_killed_while_the_rollout_waited=stack.disturbed,
        the_run_succeeded=result.run.state == "success",
        every_server_ran_the_package=result.executed() == set(LINUX),
    )


def test_scheduler_restarted_mid_run(stack):
    """SIGKILL of the scheduler while the rollout is deferred, then a new scheduler."""
    stack.lab.sim.delay_queue(QUEUE_DELAY)
    result = stack.run(LONG_WAIT, disturb=kill_when_deferred("scheduler"))
    assert_invariants(
        result,
        stack.lab.expectations(LONG_WAIT),
        the_scheduler_was_killed_while_the_rollout_waited=stack.disturbed,
        the_run_succeeded=result.run.state == "success",
        every_server_ran_the_package=result.executed() == set(LINUX),
    )
