"""preflight: every bad value and every scope entry that names nothing is reported at once, before
anything is touched; refused credentials fail without retries; an unavailable service is retried."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from patchflow.tasks import preflight
from tests.plugins.cloud import LOGIN, PASSWORD, Cloud


def run(params: dict) -> dict:
    return preflight(params, conn_id="clc_default")


def sent(cloud: Cloud) -> list[str]:
    return [f"{r.method} {r.path.split('?')[0]}" for r in cloud.requests]


def login_posts(cloud: Cloud) -> int:
    return sent(cloud).count("POST /v2/authentication/login")


def test_a_valid_scope_passes_and_is_normalised(cloud):
    settings = run(
        {
            "data_centers": ["va1"],
            "groups": ["Web", cloud.group_id("VA1/DB")],
            "server_allow_list": ["VA1DEMOWEB01", "va1demodb01"],
            "server_deny_list": ["de1demoapp01"],
            "max_concurrency": 5,
        }
    )
    assert settings["account_alias"] == "DEMO" and settings["max_concurrency"] == "5"
    assert settings["server_allow_list"] == ["va1demoweb01", "va1demodb01"]
    assert not [r for r in sent(cloud) if r.startswith("POST /v2/operations")]


def test_data_centers_alone_are_checked_with_one_light_request(cloud):
    assert run({"data_centers": ["va1", "DE1"]})["data_centers"] == ["VA1", "DE1"]
    with pytest.raises(AirflowFailException) as err:
        run({"data_centers": ["va1", "va2"]})
    assert str(err.value).splitlines()[1:] == [
        "  - data_centers: 'VA2' is not a data center of alias DEMO (did you mean 'VA1'?); "
        "the alias has DE1, VA1"
    ]
    assert not [r for r in sent(cloud) if "/v2/groups/" in r]  # no tree walk without group/server entries


def test_a_typo_in_the_deny_list_fails_without_retries_and_names_it(cloud):
    with pytest.raises(AirflowFailException) as err:
        run({"server_deny_list": ["va1demoweb01", "va1demowbe02"]})
    message = str(err.value)
    assert "nothing was touched" in message
    assert (
        "server_deny_list: 'va1demowbe02' is not a server of alias DEMO (did you mean 'va1demoweb02'?)"
        in (message)
    )
    assert "'va1demoweb01'" not in message
    assert all(r.startswith(("GET ", "POST /v2/authentication/login")) for r in sent(cloud))


def test_every_bad_value_and_missing_entry_is_named_in_one_failure(cloud):
    with pytest.raises(AirflowFailException) as err:
        run(
            {
                "data_centers": ["va1", "xx9"],
                "groups": ["Wbe", "DB"],
                "server_allow_list": ["va1demodb01", "nope01"],
                "server_deny_list": ["va1demoweb99", "bad id"],
                "max_concurrency": "abc",
                "max_errors": "\u0665\u0660",
            }
        )
    lines = [line.strip() for line in str(err.value).splitlines()[1:]]
    assert lines == [
        "- server_deny_list: 'bad id' is not a valid server id "
        "(letters, digits and '-' only, e.g. VA1DEMOWEB01)",
        "- max_concurrency: must be a count or a percentage like '10%', got 'abc'",
        "- max_errors: must be written with the digits 0-9, got '\u0665\u0660'",
        "- data_centers: 'XX9' is not a data center of alias DEMO; the alias has DE1, VA1",
        "- groups: 'Wbe' is neither the name nor the id of a group of alias DEMO (did you mean 'Web'?)",
        "- server_allow_list: 'nope01' is not a server of alias DEMO",
        "- server_deny_list: 'va1demoweb99' is not a server of alias DEMO (did you mean 'va1demoweb02'?)",
    ]
    assert str(err.value).startswith("Invalid run parameters (7 problems); nothing was touched:")


def test_a_malformed_alias_is_named_without_asking_the_api(cloud):
    with pytest.raises(AirflowFailException, match=r"account_alias: '\.\./x'"):
        run({"account_alias": "../x", "max_errors": "-1"})
    assert cloud.requests == []


@pytest.mark.parametrize("status", [400, 401])
def test_a_wrong_password_fails_at_once_with_one_login(cloud, monkeypatch, status):
    """A retried task would log in three times per run: an account-lockout risk."""
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json().replace(PASSWORD, "wrong-password-1"))
    if status == 401:
        cloud.fault(kind="garbage", route=LOGIN, status=401, body="empty", processed=False)
    with pytest.raises(AirflowFailException) as err:
        run({})
    assert "refused the login" in str(err.value) and "lockout" in str(err.value)
    assert "wrong-password-1" not in str(err.value)
    assert login_posts(cloud) == 1


def test_a_forbidden_alias_fails_at_once(cloud):
    with pytest.raises(
        AirflowFailException, match=r"denied access: GET /v2/datacenters/OTHR failed with HTTP 403"
    ):
        run({"account_alias": "OTHR", "server_deny_list": ["x1"]})


def test_an_unavailable_login_is_retryable_and_never_blamed_on_the_password(cloud):
    cloud.fault(kind="error", route=LOGIN, status=503, count=99)
    with pytest.raises(AirflowException) as err:
        run({})
    assert not isinstance(err.value, AirflowFailException)  # the task's own retries still apply
    message = str(err.value)
    assert message.startswith("CLC service unavailable: POST /v2/authentication/login failed with HTTP 503")
    assert "password" not in message and "refused" not in message
    assert login_posts(cloud) == 5  # the connection's retry_attempts, with backoff


def test_an_unreachable_api_is_retryable_service_unavailable(cloud):
    cloud.stop()
    with pytest.raises(AirflowException, match=r"CLC service unavailable: .* got no answer") as err:
        run({})
    assert not isinstance(err.value, AirflowFailException)
