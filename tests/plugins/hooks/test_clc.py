"""ClcHook against a live in-process fake CLC API: auth, retries, I1 and I6 behaviour."""

from __future__ import annotations

import logging
from email.utils import formatdate

import pytest

from include.clc.retry import RetryPolicy
from patchflow.exceptions import (
    ClcAccessDeniedError,
    ClcApiError,
    ClcAuthError,
    ClcConnectionError,
    ClcLoginRefusedError,
    ClcResponseError,
    ClcServiceUnavailableError,
    PossiblySubmittedError,
    is_permanent,
)
from patchflow.hooks.clc import ClcHook
from tests.plugins.fake_clc import PASSWORD, make_jwt

PKG = "c3c6642e-24e1-4c37-b56a-1cf1476ee360"


def hook(sleeps: list[float] | None = None, attempts: int = 4, **kw) -> ClcHook:
    record = sleeps.append if sleeps is not None else (lambda _s: None)
    policy = RetryPolicy(attempts=attempts, base=1.0, cap=8.0, sleep=record, rand=lambda: 0.5)
    return ClcHook(retry=policy, **kw)


def test_logs_in_once_and_reuses_the_token(fake_clc):
    h = hook()
    h.get_server("DEMO", "va1demoweb01")
    h.get_server("DEMO", "va1demoweb02")
    h.list_datacenters("DEMO")
    assert fake_clc.logins == 1
    assert h.account_alias == "DEMO"


def test_relogs_shortly_before_the_declared_lifetime_ends_on_our_clock(fake_clc):
    now = [50.0]  # a monotonic clock: its origin means nothing
    fake_clc.token_ttl = 3600
    h = hook(clock=lambda: now[0])
    h.get_server("DEMO", "va1demoweb01")
    now[0] += 3600 - 300 - 1  # the refresh margin is 300 s at time_scale 1
    h.get_server("DEMO", "va1demoweb01")
    assert fake_clc.logins == 1
    now[0] += 1
    h.get_server("DEMO", "va1demoweb01")
    assert fake_clc.logins == 2


@pytest.mark.parametrize("offset_days", [-3650, -1, 1, 3650])
def test_an_api_clock_far_from_ours_costs_one_login_not_one_per_request(fake_clc, offset_days):
    """I8: the token's exp is a time on the API's clock; comparing it with ours re-logged in
    before nearly every request when the API's clock was behind."""
    fake_clc.api_clock_offset = offset_days * 86400.0
    h = hook()
    for _ in range(10):
        h.get_server("DEMO", "va1demoweb01")
    assert fake_clc.logins == 1


def test_relogs_once_on_401_then_succeeds(fake_clc):
    h = hook()
    h.get_server("DEMO", "va1demoweb01")
    fake_clc.valid_tokens.clear()  # server-side revocation
    assert h.get_server("DEMO", "va1demoweb01")["id"] == "va1demoweb01"
    assert fake_clc.logins == 2


def test_persistent_401_raises_auth_error_without_looping(fake_clc):
    h = hook()
    h.login()
    denied = {"message": "Authorization has been denied"}
    fake_clc.fail_next("GET", r"/v2/servers/", 401, body=denied, times=5)
    with pytest.raises(ClcAuthError, match="HTTP 401: Authorization has been denied"):
        h.get_server("DEMO", "va1demoweb01")
    assert fake_clc.logins == 2


def test_bad_password_is_a_clear_auth_error_without_the_password(fake_clc, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", fake_clc.conn_json().replace(PASSWORD, "wrong-password-1"))
    with pytest.raises(ClcAuthError) as err:
        hook().login()
    assert "HTTP 400" in str(err.value) and "recognize" in str(err.value)
    assert "wrong-password-1" not in str(err.value)


def login_posts(fake_clc) -> int:
    return sum(1 for m, p, _ in fake_clc.requests if m == "POST" and p.endswith("/authentication/login"))


@pytest.mark.parametrize("status", [400, 401])
def test_a_refused_login_is_tried_once_and_is_permanent(fake_clc, monkeypatch, status):
    """One wrong password costs one login attempt: no backoff loop towards an account lockout."""
    sleeps: list[float] = []
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", fake_clc.conn_json().replace(PASSWORD, "wrong-password-1"))
    if status == 401:
        fake_clc.fail_next("POST", r"/authentication/login", 401, body={"message": "denied"})
    with pytest.raises(ClcLoginRefusedError) as err:
        hook(sleeps).get_server("DEMO", "va1demoweb01")
    assert login_posts(fake_clc) == 1 and sleeps == []
    assert is_permanent(err.value) and err.value.status == status


def test_a_login_503_is_retried_with_backoff_and_never_called_a_wrong_password(fake_clc):
    sleeps: list[float] = []
    fake_clc.fail_next(
        "POST", r"/authentication/login", 503, body={"message": "Service Unavailable"}, times=9
    )
    with pytest.raises(ClcServiceUnavailableError) as err:
        hook(sleeps, attempts=3).login()
    assert login_posts(fake_clc) == 3 and sleeps == [0.5, 1.0]
    assert not isinstance(err.value, ClcAuthError) and not is_permanent(err.value)
    assert str(err.value).endswith("failed with HTTP 503: Service Unavailable (service unavailable)")


def test_a_transient_login_503_heals_within_the_retries(fake_clc):
    fake_clc.fail_next("POST", r"/authentication/login", 503, times=2)
    h = hook(attempts=3)
    assert h.get_server("DEMO", "va1demoweb01")["id"] == "va1demoweb01"
    assert fake_clc.logins == 1 and login_posts(fake_clc) == 3


def test_a_forbidden_alias_is_a_permanent_access_error_asked_once(fake_clc):
    sleeps: list[float] = []
    h = hook(sleeps)
    with pytest.raises(ClcAccessDeniedError) as err:
        h.list_datacenters("OTHR")
    assert "HTTP 403" in str(err.value) and is_permanent(err.value) and sleeps == []
    assert sum(1 for _, p, _ in fake_clc.requests if "/datacenters/OTHR" in p) == 1


def test_429_honours_retry_after_seconds(fake_clc):
    sleeps: list[float] = []
    h = hook(sleeps)
    h.login()
    fake_clc.fail_next("GET", r"/status/", 429, headers={"Retry-After": "3"})
    job = fake_clc._new_job(["succeeded"])
    assert h.get_queue_status("DEMO", job) == "succeeded"
    assert sleeps == [3.0]


def test_429_honours_retry_after_http_date_capped(fake_clc):
    sleeps: list[float] = []
    h = hook(sleeps)
    h.login()
    import time

    later = formatdate(time.time() + 3600, usegmt=True)
    fake_clc.fail_next("GET", r"/status/", 429, headers={"Retry-After": later})
    job = fake_clc._new_job(["succeeded"])
    h.get_queue_status("DEMO", job)
    assert sleeps == [8.0]  # capped at the policy's cap


def test_5xx_backs_off_exponentially_with_full_jitter_then_gives_up(fake_clc):
    sleeps: list[float] = []
    h = hook(sleeps, attempts=4)
    h.login()
    fake_clc.fail_next("GET", r"/v2/servers/", 500, body={"message": "An error has occurred."}, times=10)
    with pytest.raises(ClcApiError) as err:
        h.get_server("DEMO", "va1demoweb01")
    assert str(err.value) == "GET /v2/servers/DEMO/va1demoweb01 failed with HTTP 500: An error has occurred."
    assert sleeps == [0.5, 1.0, 2.0]  # rand 0.5 x min(cap, base * 2**(n-1))


def test_dropped_connection_on_a_get_is_retried(fake_clc):
    h = hook()
    h.login()
    fake_clc.fail_next("GET", r"/v2/servers/", drop=True)
    assert h.get_server("DEMO", "va1demoweb01")["id"] == "va1demoweb01"


def test_unreachable_api_is_a_connection_error(fake_clc, monkeypatch):
    fake_clc.stop()
    h = hook(attempts=2)
    with pytest.raises(ClcConnectionError, match="after 2 attempts"):
        h.login()


def test_execute_package_lost_answer_is_never_replayed(fake_clc):
    h = hook()
    h.login()
    fake_clc.fail_next("POST", r"executePackage", after=True, drop=True)
    with pytest.raises(PossiblySubmittedError, match="not sent again"):
        h.execute_package("DEMO", ["va1demoweb01"], PKG, {"patch.debug.mode": "false"})
    assert fake_clc.execute_calls["va1demoweb01"] == 1


def test_execute_package_500_may_have_been_processed(fake_clc):
    h = hook()
    h.login()
    fake_clc.fail_next("POST", r"executePackage", 500, after=True)
    with pytest.raises(PossiblySubmittedError):
        h.execute_package("DEMO", ["va1demoweb01"], PKG)
    assert fake_clc.execute_calls["va1demoweb01"] == 1


def test_execute_package_retries_429_and_503_responses(fake_clc):
    h = hook()
    h.login()
    fake_clc.fail_next("POST", r"executePackage", 503)
    fake_clc.fail_next("POST", r"executePackage", 429)
    items = h.execute_package("DEMO", ["va1demoweb01", "va1demoweb02"], PKG, {"patch.debug.mode": "false"})
    assert {i.server for i in items} == {"va1demoweb01", "va1demoweb02"}
    assert len({i.job_id for i in items}) == 1  # one shared job per batch
    assert fake_clc.execute_bodies[0] == {
        "servers": ["va1demoweb01", "va1demoweb02"],
        "package": {"packageId": PKG, "parameters": {"patch.debug.mode": "false"}},
    }


def test_batch_refusal_with_400_array_is_returned_per_server(fake_clc):
    h = hook()
    fake_clc.servers["va1demoweb01"]["details"]["inMaintenanceMode"] = True
    items = h.start_maintenance("DEMO", ["va1demoweb01"])
    assert items[0].server == "va1demoweb01" and items[0].queued is False and items[0].error is None


def test_secrets_never_in_logs_or_errors(fake_clc, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    h = hook()
    h.login()
    token = h._token
    fake_clc.fail_next("GET", r"/v2/servers/", 404, body={"message": f"echo {token} {PASSWORD}"})
    with pytest.raises(ClcApiError) as err:
        h.get_server("DEMO", "va1demoweb01")
    assert token and token not in str(err.value) and PASSWORD not in str(err.value)
    fake_clc.fail_next("GET", r"/v2/servers/", drop=True, times=10)
    with pytest.raises(ClcConnectionError) as err2:
        h.get_server("DEMO", "va1demoweb01")
    # the requests exception (which holds the prepared request and its headers) is not chained
    assert err2.value.__cause__ is None and err2.value.__suppress_context__
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err  # Airflow's structlog output goes to stdout
    assert "Logged in to CLC" in logged and "ConnectionError; retry" in logged  # logging did happen
    assert token not in logged and PASSWORD not in logged


def test_own_extra_keys_are_never_sent_as_headers(fake_clc):
    hook().get_server("DEMO", "va1demoweb01")
    for headers in fake_clc.headers_seen:
        assert not {"account_alias", "patching_base_url", "retry_base", "timeout"} & set(headers)
    # and no basic auth anywhere: the bearer token or nothing
    assert all(h.get("authorization", "Bearer ").startswith("Bearer ") for h in fake_clc.headers_seen)


@pytest.mark.parametrize(
    ("method", "fail", "message"),
    [
        ("get_patch_summary", {"not": "a list"}, "body should be list, got dict"),
        ("get_patch_summary", [{"execution_id": "X", "status": "pending"}], "missing field '[0].start_time'"),
        ("get_queue_status", {"state": "done"}, "missing field 'status'"),
        ("get_queue_status", {"status": "weird"}, "unknown queue status 'weird'"),
        ("get_server", ["x"], "body should be dict"),
    ],
)
def test_malformed_answers_name_endpoint_and_problem(fake_clc, method, fail, message):
    h = hook()
    h.login()
    fake_clc.fail_next("GET", r".", 200, body=fail, times=10)  # damaged on every attempt
    with pytest.raises(ClcResponseError) as err:
        getattr(h, method)("DEMO", "va1demoweb01")
    assert message in str(err.value)
    assert "va1demoweb01" in str(err.value) or "status" in str(err.value)


def test_execute_package_malformed_answer_may_have_been_processed(fake_clc):
    h = hook()
    h.login()
    fake_clc.fail_next(
        "POST", r"executePackage", 200, body=[{"server": "va1demoweb01", "isQueued": True}], after=True
    )
    with pytest.raises(PossiblySubmittedError, match=r"missing field '\[0\].links'"):
        h.execute_package("DEMO", ["va1demoweb01"], PKG)


def test_inventory_walks_one_tree_per_data_center_and_flattens(fake_clc):
    h = hook()
    servers = h.inventory("DEMO", max_workers=2)
    by_id = {s["id"]: s for s in servers}
    assert set(by_id) == {"va1demoweb01", "va1demoweb02", "va1demodb01", "de1demoapp01"}
    assert by_id["va1demoweb01"]["group_path_names"] == ["VA1 Hardware", "Default Group", "Web"]
    assert by_id["va1demoweb01"]["group_path_ids"] == ["root-va1", "dg-va1", "g-va1-web"]
    assert by_id["de1demoapp01"]["data_center"] == "de1"
    assert by_id["va1demodb01"]["group_name"] == "DB" and by_id["va1demodb01"]["group_id"] == "g-va1-db"
    group_gets = [p for m, p, _ in fake_clc.requests if "/v2/groups/" in p]
    assert len(group_gets) == 2 and all("serverDetail=detailed" in p for p in group_gets)


def test_inventory_filters_data_centers_and_groups_and_dedupes(fake_clc):
    h = hook()
    assert {s["id"] for s in h.inventory("DEMO", data_centers=["DE1"])} == {"de1demoapp01"}
    rows = h.inventory("DEMO", group_ids=["g-va1-web", "g-va1-web"])
    assert sorted(s["id"] for s in rows) == ["va1demoweb01", "va1demoweb02"]
    assert rows[0]["group_path_names"] == ["Web"] and rows[0]["data_center"] == "va1"


def test_account_alias_falls_back_to_login(fake_clc, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", fake_clc.conn_json(account_alias=""))
    assert hook().account_alias == "DEMO"


def test_token_without_a_declared_lifetime_falls_back_to_fourteen_days():
    from include.clc.tokens import token_lifetime

    assert token_lifetime("not-a-jwt") == 14 * 24 * 3600
    assert token_lifetime(make_jwt(12345)) == 14 * 24 * 3600  # exp alone says nothing about a lifetime
    assert token_lifetime(make_jwt(12345, nbf=12000)) == 345


def test_inventory_lineage_keeps_sub_groups_and_slashes_in_names(fake_clc, monkeypatch):
    """Group ids include their sub-groups, and 'Prod' never selects a group named 'Finance/Prod'."""
    from include.patching.classification import Scope, classify

    def srv(sid: str) -> dict:
        return dict(fake_clc.servers["va1demoweb01"], id=sid, name=sid.upper())

    tree = {
        "id": "root",
        "name": "VA1 Hardware",
        "groups": [
            {"id": "fp", "name": "Finance/Prod", "servers": [srv("va1slash01")], "groups": []},
            {
                "id": "fin",
                "name": "Finance",
                "servers": [],
                "groups": [
                    {
                        "id": "prod",
                        "name": "Prod",
                        "servers": [srv("va1prod01")],
                        "groups": [{"id": "deep", "name": "Deep", "servers": [srv("va1deep01")]}],
                    }
                ],
            },
        ],
    }
    h = hook()
    monkeypatch.setattr(h, "list_datacenters", lambda alias: [{"id": "va1"}])
    monkeypatch.setattr(
        h,
        "get_datacenter",
        lambda alias, dc, group_links=True: {"id": dc, "links": [{"rel": "group", "id": "root"}]},
    )
    monkeypatch.setattr(h, "get_group", lambda alias, gid, detailed=True: tree)
    rows = {r["id"]: r for r in h.inventory("DEMO")}
    assert rows["va1deep01"]["group_path_ids"] == ["root", "fin", "prod", "deep"]
    assert rows["va1slash01"]["group_path_names"] == ["VA1 Hardware", "Finance/Prod"]

    def chosen(*groups: str) -> set[str]:
        scope = Scope.build(groups=groups)
        return {sid for sid, row in rows.items() if classify(row, scope).state is None}

    assert chosen("fin") == chosen("Finance") == {"va1prod01", "va1deep01"}  # by id as by name
    assert chosen("prod") == chosen("Prod") == {"va1prod01", "va1deep01"}
    assert chosen("Finance/Prod") == chosen("fp") == {"va1slash01"}


def test_a_damaged_job_status_answer_is_read_again_not_taken_for_an_answer(fake_clc):
    """A proxy's HTML page (or a cut-off body) on one poll is a failed read, not a final status."""
    h = hook()
    job = h.start_maintenance("DEMO", ["va1demoweb01"])[0].job_id
    fake_clc.fail_next("GET", r"/status/", 200, body="<html>bad gateway</html>", times=2)
    assert h.wait_for_job("DEMO", job, timeout=30, interval=0.01) == "succeeded"
