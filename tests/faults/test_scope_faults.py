"""Scope and bad input (issue 8 items 10-13): I5 from the jobs the simulator ran.

A refused run must touch nothing: its expectations allow no server at all, so any job the
simulator queued for it is an I5 violation naming the server.
"""

from __future__ import annotations

import pytest

from tests.faults.harness import ALIAS, FLEETS, assert_invariants

pytestmark = [pytest.mark.slow, pytest.mark.faults]

LOGIN = "POST /v2/authentication/login"
REFUSED_LOGIN_WORDS = ("autherror", "loginrefused", "password", "credentials")
REFUSAL_BOUND = 90.0
"""A run refused in preflight ends in seconds; retrying a permanent error takes minutes."""


def test_a_typo_in_the_deny_list_stops_the_run_before_anything_is_touched(make_lab):
    """Item 10: "va1fltweb0l" (letter l) was meant to protect VA1FLTWEB01. Silently accepted,
    the server it should protect is patched; the run must refuse and name the value instead."""
    lab = make_lab()
    conf = {"server_allow_list": ["va1fltweb01", "uc1fltapp01"], "server_deny_list": ["va1fltweb0l"]}
    result = lab.run(conf, bound=REFUSAL_BOUND)
    assert_invariants(
        result,
        lab.expectations(conf, refused=True),
        the_run_failed=result.run.state == "failed",
        the_bad_value_is_named="va1fltweb0l" in result.log,
    )


def test_every_bad_scope_value_is_named_at_once(make_lab):
    """Items 10 and 12: a data center, a group, an allow-list and a deny-list entry that do not
    exist in the alias are all named in one refusal, and nothing is touched."""
    lab = make_lab()
    bad = {"data_centers": ["GB3"], "groups": ["Webb"], "server_allow_list": ["va1fltweb99"]}
    conf = {**bad, "server_deny_list": ["va1fltdb0x"]}
    result = lab.run(conf)
    named = {value: value in result.log for values in conf.values() for value in values}
    assert_invariants(
        result,
        lab.expectations(conf, refused=True),
        the_run_failed=result.run.state == "failed",
        every_bad_value_is_named=all(named.values()),
    )


def test_a_group_selected_by_id_includes_its_sub_groups(make_lab):
    """Item 11: VA1/Web by id selects VA1FLTWEB02 too, which is in its sub-group VA1/Web/Deep."""
    lab = make_lab()
    web = lab.sim.group_id(ALIAS, "VA1/Web", lab.sim.login())
    conf = {"groups": [web], "max_concurrency": "4", "max_errors": "1"}
    selected = {"va1fltweb01", "va1fltweb02", "va1fltweb03", "va1fltwin01"}
    result = lab.run(conf)
    assert_invariants(
        result,
        lab.expectations(conf, in_scope=selected),
        the_sub_group_server_was_patched="va1fltweb02" in result.executed(),
        exactly_the_group_was_patched=result.executed() == selected,
    )


def test_a_group_name_with_a_slash_is_one_name(make_lab):
    """Item 11: selecting the group "Prod" must not select the group named "Finance/Prod"."""
    lab = make_lab(fleet=FLEETS / "groups.yaml")
    conf = {"groups": ["Prod"]}
    result = lab.run(conf)
    assert_invariants(
        result,
        lab.expectations(conf, in_scope={"va1fltprd01"}),
        only_prod_was_patched=result.executed() == {"va1fltprd01"},
    )


def test_a_forbidden_alias_is_refused_after_exactly_one_login(make_lab):
    """Item 13: the alias OTHR answers 403. Retrying cannot help and every login attempt brings
    the account closer to a lockout: one login, a named refusal, nothing touched."""
    lab = make_lab()
    conf = {"account_alias": "OTHR"}
    result = lab.run(conf, bound=REFUSAL_BOUND)
    assert_invariants(
        result,
        lab.expectations(conf, refused=True),
        the_run_failed=result.run.state == "failed",
        exactly_one_login_was_attempted=result.logins() == 1,
        no_task_crashed_with_a_TypeError="TypeError" not in result.log,
    )


def test_a_wrong_password_is_tried_exactly_once(make_lab):
    """Item 13: a wrong password is a permanent error: one failed login, never retried."""
    lab = make_lab()
    result = lab.run({}, password="not-the-password", bound=REFUSAL_BOUND)
    assert_invariants(
        result,
        lab.expectations({}, refused=True),
        the_run_failed=result.run.state == "failed",
        exactly_one_login_was_attempted=result.logins() == 1,
    )


def test_a_503_on_login_is_reported_as_unavailable_not_as_a_wrong_password(make_lab):
    """Item 13: the login endpoint answers 503 until the first attempt's retries are used up.
    That attempt must fail saying the service is unavailable, not that the credentials were
    refused; the service is back for the task's retry, which patches."""
    lab = make_lab()
    lab.sim.fault(kind="error", route=LOGIN, status=503, count=5)
    conf = {"server_allow_list": ["va1fltdb02"]}
    result = lab.run(conf)
    failure = "\n".join(result.error_lines()).lower()
    assert_invariants(
        result,
        lab.expectations(conf),
        the_first_attempt_failed_on_the_503=result.run.tasks.get("preflight", {}).get("try_number", 0) > 1,
        the_failure_says_unavailable="unavailable" in failure or "503" in failure,
        the_failure_does_not_blame_the_credentials=not any(w in failure for w in REFUSED_LOGIN_WORDS),
        the_retry_patched="va1fltdb02" in result.executed(),
    )
