"""``CanaryApprovalOperator`` and the decision it hands to the continuation (``include.patching.approval``).

The person's answer itself is driven through Airflow in tests/integration/test_staged_rollout_dag.py
(approve and reject); Airflow's own timeout sweep is not run by ``dag.test``, so the timeout's
event (the scheduler answers the default, *Reject*, with nobody as responder) is fed here.
"""

from __future__ import annotations

from datetime import UTC, datetime

from include.patching.approval import Decision, canary_summary, decision_from_xcom, from_hitl
from patchflow.operators.approval import CanaryApprovalOperator

AT = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def operator(**kw) -> CanaryApprovalOperator:
    return CanaryApprovalOperator(task_id="approve", plan_path="p", package_key="linux_yum", **kw)


def test_no_approval_asked_answers_at_once_without_a_person():
    decision = decision_from_xcom(operator(required=False).execute({}))
    assert decision.approved and not decision.asked


def test_a_person_approving_or_rejecting_is_recorded_with_who_when_and_the_comment():
    op = operator(required=True)
    event = {
        "chosen_options": ["Reject"],
        "params_input": {"comment": "disk alarms on the canary"},
        "responded_at": AT,
        "responded_by_user": {"id": "7", "name": "alice"},
        "timedout": False,
    }
    decision = decision_from_xcom(op.execute_complete({}, event))
    assert decision == Decision(
        approved=False, by="alice", at="2026-12-01T10:00:00Z", note="disk alarms on the canary"
    )
    assert decision.halt_reason() == (
        "rollout stopped after stage 1: rejected by alice at 2026-12-01T10:00:00Z (disk alarms on the canary)"
    )
    approved = op.execute_complete({}, event | {"chosen_options": ["Approve"]})
    assert decision_from_xcom(approved).approved


def test_a_timeout_is_no_approval_and_says_so():
    op = operator(required=True)
    swept = {
        "chosen_options": ["Reject"],
        "params_input": {},
        "responded_at": AT,
        "responded_by_user": None,
        "timedout": True,
    }
    decision = decision_from_xcom(op.execute_complete({}, swept))
    assert not decision.approved and decision.timed_out and decision.by is None
    assert decision.halt_reason().startswith(
        "rollout stopped after stage 1: no approval before the approval timed out"
    )
    failed = decision_from_xcom(op.execute_complete({}, {"error": "timeout", "error_type": "timeout"}))
    assert not failed.approved and failed.timed_out


def test_anything_but_a_recorded_decision_stops_the_rollout():
    for raw in (None, "yes", {}, {"chosen_options": ["Approve"]}):
        decision = decision_from_xcom(raw)
        assert not decision.approved and "no approval decision was recorded" in decision.halt_reason()


def test_from_hitl_reads_the_payload_without_a_user():
    decision = from_hitl({"chosen_options": ["Approve"], "responded_at": AT, "responded_by_user": None})
    assert decision.approved and decision.by is None and decision.at == "2026-12-01T10:00:00Z"


def test_the_question_shows_the_first_stage_and_what_comes_next():
    ledger = {
        "stages": [{"index": 1, "servers": ["a"]}, {"index": 2, "servers": ["b", "c"]}],
        "servers": {
            "a": {"stage": 1, "state": "patched", "health": "healthy after 1 check(s)", "reason": "x|y"},
            "b": {"stage": 2, "phase": "queued"},
        },
    }
    text = canary_summary("linux_yum", ledger, {"a": "VA1A01", "b": "VA1B01"})
    assert "| VA1A01 | patched | healthy after 1 check(s) | - | x/y |" in text
    assert "the other 2 servers in 1 more stage:" in text
    assert "- stage 2: VA1B01, c" in text


def test_the_question_leaves_out_an_empty_reason_column_and_shortens_long_stages():
    ids = [f"s{i}" for i in range(10)]
    ledger = {
        "stages": [
            {"index": 1, "servers": ["a"]},
            {"index": 2, "servers": ids},
            {"index": 3, "servers": ["z"]},
        ],
        "servers": {"a": {"stage": 1, "state": "patched", "patches_installed": 3}},
    }
    text = canary_summary("linux_yum", ledger)
    assert "| server | state | health | patches installed |" in text and "reason" not in text
    assert "| a | patched | not checked | 3 |" in text
    assert "the other 11 servers in 2 more stages:" in text
    assert "- stage 2: s0, s1, s2, s3, s4, s5, s6, s7 and 2 more" in text
