"""The one-line outcomes people read in Airflow: the run's note and the rollout's progress."""

from __future__ import annotations

from include.patching.rollout_state import LedgerEntry, Phase
from include.patching.run_outcome import (
    IN_PROGRESS,
    live_states,
    merge_note,
    package_progress,
    problem_lines,
    run_line,
    server_labels,
)
from include.patching.states import ServerState


def entry(phase: Phase, state: ServerState | None = None, reason: str = "") -> LedgerEntry:
    e = LedgerEntry()
    e.phase, e.state, e.reason = phase, state, reason
    return e


def test_the_run_line_counts_every_server_and_names_the_failed_ones():
    states = [(f"va1ok{i:02}", "patched") for i in range(19)]
    states += [("va1bad02", "failed"), ("va1bad01", "failed")]
    states += [(f"va1off{i:02}", "skipped_not_running") for i in range(6)]
    states += [(f"va1os{i:02}", "skipped_unsupported_os") for i in range(4)]
    assert run_line(states) == "patchflow: 19 patched · 2 failed (va1bad01, va1bad02) · 10 skipped"


def test_many_failures_are_counted_beyond_the_first_names():
    line = run_line([(f"s{i}", "timed_out") for i in range(5)] + [("x", IN_PROGRESS)])
    assert line == "patchflow: 5 timed out (s0, s1, s2, +2) · 1 in progress"


def test_a_dry_run_line_says_planned_and_an_unknown_state_is_never_hidden():
    line = run_line([("a", "planned_dry_run"), ("b", "planned_dry_run"), ("c", "exploded")])
    assert line == "patchflow: 2 planned (dry run) · 1 exploded (c)"


def test_live_states_take_the_ledger_state_else_in_progress():
    plan = {
        "servers": [
            {"id": "a", "package_key": "linux_yum", "state": None},
            {"id": "b", "package_key": "linux_yum", "state": None},
            {"id": "c", "package_key": "windows_2012", "state": None},
            {"id": "d", "package_key": None, "state": "skipped_template"},
        ]
    }
    ledger = {
        "servers": {
            "a": entry(Phase.DONE, ServerState.FAILED, "boom").to_json(),
            "b": entry(Phase.SUBMITTED).to_json(),
        }
    }
    assert live_states(plan, {"linux_yum": ledger, "windows_2012": None}) == [
        ("a", "failed"),
        ("b", IN_PROGRESS),
        ("c", IN_PROGRESS),
        ("d", "skipped_template"),
    ]


def test_the_progress_line_says_done_in_flight_failures_with_reasons_and_the_budget():
    entries = {
        "va1a": entry(Phase.DONE, ServerState.PATCHED),
        "va1b": entry(Phase.DONE, ServerState.FAILED, "1 of 2 patches failed"),
        "va1c": entry(Phase.SUBMITTED),
        "va1d": entry(Phase.QUEUED),
    }
    assert package_progress("linux_yum", entries, 4) == (
        "linux_yum: 2/4 done · 1 in flight · 1 failed (va1b: 1 of 2 patches failed) · budget 1/4"
    )
    # fleet-wide limit: the other package's errors count too, and the line says so
    assert package_progress("linux_yum", entries, 4, budget_errors=3).endswith(
        "1 failed (va1b: 1 of 2 patches failed) · fleet budget 3/4 (all packages)"
    )


def test_problem_lines_name_each_new_failure_once_with_name_and_reason():
    entries = {
        "va1old": entry(Phase.DONE, ServerState.FAILED, "earlier"),
        "va1new": entry(Phase.DONE, ServerState.TIMED_OUT, "execution X had not completed"),
        "va1ok": entry(Phase.DONE, ServerState.PATCHED),
        "va1n1": entry(Phase.DONE, ServerState.NOT_ATTEMPTED, "error budget exhausted"),
        "va1n2": entry(Phase.DONE, ServerState.NOT_ATTEMPTED, "error budget exhausted"),
    }
    labels = server_labels({"servers": [{"id": "va1new", "name": "VA1NEW", "description": "db server"}]})
    assert problem_lines({"va1old": "failed"}, entries, labels) == [
        "server va1new (VA1NEW, db server) timed_out: execution X had not completed",
        "2 server(s) not attempted (va1n1, va1n2): error budget exhausted",
    ]


def test_the_note_keeps_what_a_person_wrote_and_replaces_only_patchflows_line():
    assert merge_note(None, "patchflow: 1 patched") == "patchflow: 1 patched"
    note = merge_note("patchflow: 1 in progress\nchange ticket CHG-42", "patchflow: 1 patched")
    assert note == "patchflow: 1 patched\nchange ticket CHG-42"
    assert merge_note("ticket CHG-7", "patchflow: 2 patched") == "patchflow: 2 patched\nticket CHG-7"
