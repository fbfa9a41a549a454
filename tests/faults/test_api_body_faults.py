"""Malformed and truncated API answers (issue 8 item 17, with the simulator's ``truncate`` and
``garbage`` fault kinds): a damaged answer is never taken for a real one.

A damaged read is retried or ends the server honestly; a damaged answer to Execute Package
means "may have been processed" and is reconciled, never sent again (I1).
"""

from __future__ import annotations

import pytest

from tests.faults.harness import assert_invariants

pytestmark = [pytest.mark.slow, pytest.mark.faults]

SUMMARY = "GET /patching/rest/servers/{alias}/server/{serverId}/patch"
JOB_STATUS = "GET /v2/operations/{alias}/status/{jobId}"
GROUP = "GET /v2/groups/{alias}/{groupId}"
EXECUTE = "POST /v2/operations/{alias}/servers/executePackage"
LINUX = ["va1fltweb01", "va1fltdb02", "uc1fltapp01"]


def test_truncated_and_garbage_reads_change_no_outcome(make_lab):
    """A truncated patch summary, an HTML page for a job status and JSON of the wrong type for
    the inventory's group read, twice each: the run retries and ends as without faults."""
    lab = make_lab()
    lab.sim.fault(kind="truncate", route=SUMMARY, count=2)
    lab.sim.fault(kind="garbage", route=JOB_STATUS, body="html", count=2)
    lab.sim.fault(kind="garbage", route=GROUP, body="wrong_type", count=1)
    conf = {"server_allow_list": LINUX, "max_concurrency": "3"}
    result = lab.run(conf)
    assert_invariants(
        result,
        lab.expectations(conf),
        the_run_succeeded=result.run.state == "success",
        every_server_ran_the_package=result.executed() == set(LINUX),
    )


def test_a_truncated_answer_to_execute_package_is_reconciled_not_resent(make_lab):
    """The Execute Package request is processed but its answer breaks off mid-body: the rollout
    must treat it as possibly submitted and adopt the executions it started."""
    lab = make_lab()
    lab.sim.fault(kind="truncate", route=EXECUTE, count=1)
    conf = {"server_allow_list": LINUX, "max_concurrency": "3"}
    result = lab.run(conf)
    assert_invariants(
        result,
        lab.expectations(conf),
        the_run_succeeded=result.run.state == "success",
        every_server_ran_the_package=result.executed() == set(LINUX),
    )
