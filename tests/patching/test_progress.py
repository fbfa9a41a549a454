"""The run board's read model: ledgers and plan -> what each server is doing, counts, budget, ETA."""

from __future__ import annotations

import json
import shlex
from datetime import timedelta

from include.patching.progress import BUDGET_GONE, BoardStatus, Stage, build_board
from include.patching.rerun import rerun_for
from include.patching.states import ServerState
from include.timefmt import duration_text
from patchflow.operators.rollout import plan_targets
from tests.patching.run_artifacts import NOW, SETTINGS, done, entry, in_flight_run, ledger_json, plan_row


def board_of(rows, entries, settings=SETTINGS, **kwargs):
    plan = None if rows is None else {"settings": settings, "servers": rows}
    ledgers = {"linux_yum": None if entries is None else ledger_json(entries)}
    return build_board(
        inventory_present=kwargs.pop("inventory_present", True),
        plan=plan,
        ledgers=ledgers,
        targets=plan_targets,
        now=NOW,
        **kwargs,
    )


def test_in_flight_rollout_shows_each_server_where_it_is():
    board = board_of(*in_flight_run(), started_at=NOW - timedelta(minutes=10))
    statuses = {row.server_id: row.status for row in board.packages[0].rows}
    assert statuses == {
        "va1demo01": BoardStatus.DONE,
        "va1demo02": BoardStatus.FAILED,
        "va1demo03": BoardStatus.IN_FLIGHT,
        "va1demo04": BoardStatus.IN_MAINTENANCE,
        "va1demo05": BoardStatus.WAITING,
    }
    assert board.stage is Stage.ROLLING_OUT
    assert board.counts[BoardStatus.FAILED] == 1 and board.counts[BoardStatus.WAITING] == 1
    assert board.elapsed_seconds == 600
    flying = board.packages[0].rows[2]
    assert flying.elapsed_seconds == 30 and "job va1-42" in flying.detail
    assert board.packages[0].rows[0].attempts == 2
    assert [r.detail for r in board.failures] == ["1 of 3 patches failed"]
    assert board.not_patched_by_plan == {"skipped_not_running": 1}


def test_error_budget_and_eta_come_from_the_settings_and_the_durations_seen():
    package = board_of(*in_flight_run()).packages[0]
    assert (package.errors, package.max_errors, package.max_concurrency) == (1, 1, 2)
    assert not package.budget_exhausted  # SSM semantics: stops once errors exceed max_errors
    assert package.mean_seconds == 100
    # the in-flight server needs ~70 s more, then the two still queued go in one wave of 2
    assert package.remaining_seconds == 70 + 100


def test_exhausted_budget_marks_queued_servers_as_never_starting():
    rows, entries = in_flight_run()
    entries["va1demo01"] = done(ServerState.TIMED_OUT, reason="no completion in 240 min")
    board = board_of(rows, entries)
    package = board.packages[0]
    assert package.budget_exhausted and package.errors == 2
    queued = [r for r in package.rows if r.server_id in ("va1demo04", "va1demo05")]
    assert {r.status for r in queued} == {BoardStatus.NOT_ATTEMPTED} and queued[0].detail == BUDGET_GONE
    assert package.remaining_seconds == 70  # only the server in flight is still to come


def test_no_estimate_before_any_server_completed():
    rows, entries = in_flight_run()
    entries = {sid: e for sid, e in entries.items() if sid not in ("va1demo01", "va1demo02")}
    board = board_of(rows, entries)
    assert board.remaining_seconds is None and board.packages[0].mean_seconds is None


def test_finished_run_lists_what_a_new_run_should_retry():
    rows, _ = in_flight_run()
    entries = {
        "va1demo01": done(ServerState.PATCHED),
        "va1demo02": done(ServerState.FAILED, reason="refused"),
        "va1demo03": done(ServerState.TIMED_OUT, reason="timed out"),
        "va1demo04": done(ServerState.NOT_ATTEMPTED, wall=None, reason="budget"),
        "va1demo05": done(ServerState.PATCHED_NO_UPDATES),
    }
    board = board_of(
        rows, entries, ended_at=NOW - timedelta(minutes=1), started_at=NOW - timedelta(minutes=5)
    )
    assert board.stage is Stage.ROLLOUTS_DONE and board.remaining_seconds == 0
    assert [r.server_id for r in board.not_patched] == ["va1demo02", "va1demo03", "va1demo04"]
    assert board.elapsed_seconds == 240  # stops at the run's end


def test_missing_or_partial_artifacts_say_what_is_awaited():
    assert board_of(None, None, inventory_present=False).stage is Stage.WAITING_FOR_INVENTORY
    assert board_of(None, None).stage is Stage.WAITING_FOR_PLAN
    rows, _ = in_flight_run()
    board = board_of(rows, None)  # plan written, rollout task not started yet
    package = board.packages[0]
    assert not package.started and len(package.rows) == 5
    assert {r.status for r in package.rows} == {BoardStatus.WAITING}
    assert board.remaining_seconds is None


def test_unreadable_ledger_is_named_not_guessed():
    rows, _ = in_flight_run()
    board = build_board(
        inventory_present=True,
        plan={"settings": SETTINGS, "servers": rows},
        ledgers={"linux_yum": "artifact x is not valid JSON"},
        targets=plan_targets,
        now=NOW,
    )
    assert board.packages[0].problem == "artifact x is not valid JSON"


def test_dry_run_has_no_rollout():
    rows = [{"id": "va1demo01", "name": "A", "package_key": "linux_yum", "state": "planned_dry_run"}]
    board = board_of(rows, None, settings=SETTINGS | {"dry_run": True})
    assert board.stage is Stage.DRY_RUN and board.dry_run and board.packages == []
    assert board.not_patched_by_plan == {"planned_dry_run": 1}


def test_rerun_keeps_the_settings_and_allows_only_the_servers():
    rerun = rerun_for("patch_fleet", SETTINGS, ["va1demo02", "va1demo03", "va1demo02"])
    assert rerun is not None
    assert rerun.conf["server_allow_list"] == ["va1demo02", "va1demo03"]
    assert rerun.conf["max_errors"] == "1" and rerun.conf["dry_run"] is False
    assert "server_timeout_seconds" not in rerun.conf  # not a form parameter
    argv = shlex.split(rerun.cli)
    assert argv[:4] == ["airflow", "dags", "trigger", "patch_fleet"] and json.loads(argv[5]) == rerun.conf
    body = shlex.split(rerun.curl)[-1]
    assert json.loads(body) == {"logical_date": None, "conf": rerun.conf}
    assert rerun_for("patch_fleet", SETTINGS, []) is None


def test_rerun_commands_stay_one_shell_word_whatever_the_values():
    rerun = rerun_for("patch_fleet", {"groups": ["it's; rm -rf /"]}, ["va1demo01"])
    assert rerun is not None
    assert json.loads(shlex.split(rerun.cli)[5])["groups"] == ["it's; rm -rf /"]


def test_duration_text():
    assert [duration_text(s) for s in (None, 0, 45.4, 192, 7500)] == [
        "\u2014",
        "0s",
        "45s",
        "3m 12s",
        "2h 05m",
    ]


def test_rerun_keeps_the_snapshot_safety_net():
    settings = SETTINGS | {"snapshot": "required", "revert_on_failure": True, "snapshot_keep": False}
    rerun = rerun_for("patch_fleet", settings, ["va1demo02"])
    assert rerun is not None
    assert (rerun.conf["snapshot"], rerun.conf["revert_on_failure"], rerun.conf["snapshot_keep"]) == (
        "required",
        True,
        False,
    )


def test_budget_and_limits_count_across_packages_as_the_rollout_does():
    """max_errors and max_concurrency are fleet-wide: the board counts every package's errors and
    takes a percentage of every package's servers, so it never says "within budget" while the
    rollouts (include.patching.fleet_budget) have stopped starting servers."""
    rows, linux = in_flight_run()  # 5 linux servers, one failed
    rows += [plan_row(f"va1win0{i}", package_key="windows_2012") for i in range(1, 6)]
    windows = {f"va1win0{i}": entry() for i in range(1, 6)}
    windows["va1win01"] = done(ServerState.FAILED, reason="patch failed")
    board = build_board(
        inventory_present=True,
        plan={"settings": SETTINGS | {"max_errors": "10%", "max_concurrency": "30%"}, "servers": rows},
        ledgers={"linux_yum": ledger_json(linux), "windows_2012": ledger_json(windows)},
        targets=plan_targets,
        now=NOW,
    )
    for package in board.packages:
        # 10 % and 30 % of all ten servers, and both packages' failures
        assert (package.max_errors, package.max_concurrency, package.budget_errors) == (1, 3, 2)
        assert package.errors == 1 and package.budget_exhausted
