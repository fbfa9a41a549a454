"""Exactly once and the source of truth under faults (issue 8 items 4-7): I1, I4 and I8.

Every verdict is the simulator's: how many Execute Package requests reached it per server,
which executions it ran in this run and how they ended.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.faults.harness import ALIAS, assert_invariants, problems

pytestmark = [pytest.mark.slow, pytest.mark.faults]

EXECUTE = "POST /v2/operations/{alias}/servers/executePackage"
LINUX = ["va1fltweb01", "va1fltweb02", "va1fltdb02", "uc1fltapp01"]
MAX_LOGINS = 20
"""A run of this size logs in about a dozen times (one per task and trigger): far below one per request."""


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_lost_execute_answer_with_late_starting_executions_is_never_sent_again(make_lab):
    """Item 4: the answer to Execute Package is lost and executions start 500 simulated seconds
    after the request (a backed-up queue), longer than the old ``not_found_grace`` (300 s): the
    package must not be sent again and the audit must say what the executions did."""
    lab = make_lab()
    # Every job is late, so maintenance jobs would be too (item 2, its own scenario): patch
    # without maintenance mode to see this class alone.
    conf = {"server_allow_list": LINUX, "max_concurrency": "4", "maintenance_mode": False}
    lab.sim.delay_queue(500)
    lab.sim.fault(kind="drop", route=EXECUTE, count=1)
    result = lab.run(conf, bound=150)
    assert_invariants(
        result, lab.expectations(conf), every_server_ran_the_package=result.executed() >= set(LINUX)
    )


def test_lost_request_that_never_reached_the_service_adopts_no_older_execution(make_lab):
    """Item 5: VA1FLTDB02 already has an execution from before the run, stamped later than the
    run's request by the API's clock (15 minutes ahead of ours); the run's Execute Package gets
    a 500 and is not processed. Whatever the rollout then does (send again, or give up at the
    deadline), it must not adopt the older execution nor report it as this run's."""
    lab = make_lab()
    lab.sim.advance(900)  # the API's clock runs 15 minutes ahead of ours
    token = lab.sim.login()
    lab.sim.execute_package(ALIAS, ["va1fltdb02"], token)
    lab.sim.advance(900)  # the earlier execution completes before the run
    older = lab.snapshot().executions("va1fltdb02")
    lab.sim.fault(kind="error", route=EXECUTE, status=500, count=1)
    conf = {"server_allow_list": ["va1fltdb02"], "server_timeout_minutes": 10}
    result = lab.run(conf)
    row = result.run.rows().get("va1fltdb02", {})
    assert_invariants(
        result,
        lab.expectations(conf),
        the_audit_names_no_older_execution=row.get("execution_id") not in older,
        the_server_is_patched_only_if_the_package_ran_again=(
            row.get("state") not in ("patched", "patched_no_updates") or "va1fltdb02" in result.executed()
        ),
    )


@pytest.mark.parametrize(
    "offset",
    [
        pytest.param(None, id="docs-example-2016"),
        pytest.param(timedelta(minutes=-10), id="10-min-behind"),
        pytest.param(timedelta(minutes=10), id="10-min-ahead"),
    ],
)
def test_an_api_clock_behind_or_ahead_of_ours_changes_no_outcome(make_lab, offset):
    """Item 6: the API's clock is far behind (the docs' own ``clock.start: 2016…`` example),
    10 minutes behind or 10 minutes ahead of ours. Completed executions must be found, and
    token expiry must not force a login before nearly every request."""
    start = "2016-03-14T02:00:00Z" if offset is None else _iso(datetime.now(UTC) + offset)
    lab = make_lab(clock_start=start)
    conf = {"server_allow_list": ["va1fltweb01", "uc1fltapp01"], "server_timeout_minutes": 30}
    result = lab.run(conf)
    states = {s: r["state"] for s, r in result.run.rows().items() if s in conf["server_allow_list"]}
    assert_invariants(
        result,
        lab.expectations(conf),
        every_server_was_patched=states == dict.fromkeys(conf["server_allow_list"], "patched"),
        logins_stayed_few=result.logins() <= MAX_LOGINS,
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param("fault__2026-03-10T03:00:00", "fault__2026-03-10T03-00-00", id="colon-vs-dash"),
        pytest.param("fault__" + "x" * 200 + "-one", "fault__" + "x" * 200 + "-two", id="beyond-200-chars"),
    ],
)
def test_run_ids_that_differ_only_in_their_folder_spelling_are_separate_runs(make_lab, first, second):
    """Item 7: two runs whose ids map to the same folder name must not share artifacts: the
    second run patches its servers itself and seals its own evidence pack."""
    lab = make_lab()
    conf = {"server_allow_list": ["va1fltdb02", "uc1fltapp01"]}
    one = lab.run(conf, run_id=first)
    two = lab.run(conf, run_id=second)
    found = problems(one, lab.expectations(conf)) + problems(
        two,
        lab.expectations(conf),
        the_second_run_ran_the_package=two.executed() == set(conf["server_allow_list"]),
        the_second_run_sealed_its_own_pack=two.run.audit is not None,
    )
    assert not found, "\n".join(found)
