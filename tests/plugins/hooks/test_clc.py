"""ClcHook against the real simulator in-process: auth, retries, I1 and I6 behaviour."""

from __future__ import annotations

import logging

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
from tests.plugins.cloud import (
    EXECUTE,
    JOB_STATUS,
    LINUX_PACKAGE,
    LOGIN,
    PASSWORD,
    SERVER,
    SUMMARY,
    Cloud,
)

PKG = LINUX_PACKAGE


def hook(sleeps: list[float] | None = None, attempts: int = 4, **kw) -> ClcHook:
    record = sleeps.append if sleeps is not None else (lambda _s: None)
    policy = RetryPolicy(attempts=attempts, base=1.0, cap=8.0, sleep=record, rand=lambda: 0.5)
    return ClcHook(retry=policy, **kw)


def login_posts(cloud: Cloud) -> int:
    return len(cloud.sent(method="POST", containing="/authentication/login"))


def wrong_password(cloud: Cloud, monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json().replace(PASSWORD, password))


def test_logs_in_once_and_reuses_the_token(cloud):
    h = hook()
    h.get_server("DEMO", "va1demoweb01")
    h.get_server("DEMO", "va1demoweb02")
    h.list_datacenters("DEMO")
    assert cloud.logins == 1
    assert h.account_alias == "DEMO"


def test_relogs_shortly_before_the_declared_lifetime_ends_on_our_clock(start_cloud):
    cloud = start_cloud(token_lifetime=3600)
    now = [50.0]  # a monotonic clock: its origin means nothing
    h = hook(clock=lambda: now[0])
    h.get_server("DEMO", "va1demoweb01")
    now[0] += 3600 - 300 - 1  # the refresh margin is 300 s at time_scale 1
    h.get_server("DEMO", "va1demoweb01")
    assert cloud.logins == 1
    now[0] += 1
    h.get_server("DEMO", "va1demoweb01")
    assert cloud.logins == 2


@pytest.mark.parametrize("offset_days", [-3650, -1, 1, 3650])
def test_an_api_clock_far_from_ours_costs_one_login_not_one_per_request(start_cloud, offset_days):
    """I8: the token's exp is a time on the API's clock; comparing it with ours re-logged in
    before nearly every request when the API's clock was behind."""
    cloud = start_cloud(api_clock_offset=offset_days * 86400.0)
    h = hook()
    for _ in range(10):
        h.get_server("DEMO", "va1demoweb01")
    assert cloud.logins == 1


def test_relogs_once_on_401_then_succeeds(cloud):
    h = hook()
    h.get_server("DEMO", "va1demoweb01")
    cloud.revoke_tokens()  # server-side revocation
    assert h.get_server("DEMO", "va1demoweb01")["id"] == "va1demoweb01"
    assert cloud.logins == 2


def test_persistent_401_raises_auth_error_without_looping(cloud):
    h = hook()
    h.login()
    cloud.fault(kind="token_expiry", seconds=0)  # every token, the fresh one too, is refused
    with pytest.raises(ClcAuthError, match="HTTP 401: Authorization has been denied"):
        h.get_server("DEMO", "va1demoweb01")
    assert cloud.logins == 2


def test_bad_password_is_a_clear_auth_error_without_the_password(cloud, monkeypatch):
    wrong_password(cloud, monkeypatch, "wrong-password-1")
    with pytest.raises(ClcAuthError) as err:
        hook().login()
    assert "HTTP 400" in str(err.value) and "recognize" in str(err.value)
    assert "wrong-password-1" not in str(err.value)


@pytest.mark.parametrize("status", [400, 401])
def test_a_refused_login_is_tried_once_and_is_permanent(cloud, monkeypatch, status):
    """One wrong password costs one login attempt: no backoff loop towards an account lockout."""
    sleeps: list[float] = []
    wrong_password(cloud, monkeypatch, "wrong-password-1")
    if status == 401:
        cloud.fault(kind="garbage", route=LOGIN, status=401, body="empty", processed=False)
    with pytest.raises(ClcLoginRefusedError) as err:
        hook(sleeps).get_server("DEMO", "va1demoweb01")
    assert login_posts(cloud) == 1 and sleeps == []
    assert is_permanent(err.value) and err.value.status == status


def test_a_login_503_is_retried_with_backoff_and_never_called_a_wrong_password(cloud):
    sleeps: list[float] = []
    cloud.fault(kind="error", route=LOGIN, status=503, count=9)
    with pytest.raises(ClcServiceUnavailableError) as err:
        hook(sleeps, attempts=3).login()
    assert login_posts(cloud) == 3 and sleeps == [0.5, 1.0]
    assert not isinstance(err.value, ClcAuthError) and not is_permanent(err.value)
    assert str(err.value).endswith("failed with HTTP 503: The service is unavailable. (service unavailable)")


def test_a_transient_login_503_heals_within_the_retries(cloud):
    cloud.fault(kind="error", route=LOGIN, status=503, count=2)
    h = hook(attempts=3)
    assert h.get_server("DEMO", "va1demoweb01")["id"] == "va1demoweb01"
    assert cloud.logins == 1 and login_posts(cloud) == 3


def test_a_forbidden_alias_is_a_permanent_access_error_asked_once(cloud):
    sleeps: list[float] = []
    h = hook(sleeps)
    with pytest.raises(ClcAccessDeniedError) as err:
        h.list_datacenters("OTHR")
    assert "HTTP 403" in str(err.value) and is_permanent(err.value) and sleeps == []
    assert len(cloud.sent(containing="/datacenters/OTHR")) == 1


def landed_job(cloud: Cloud) -> str:
    job = cloud.start_maintenance(["va1demoweb01"])
    cloud.settle()
    return job


def test_429_honours_retry_after_seconds(cloud):
    sleeps: list[float] = []
    h = hook(sleeps)
    h.login()
    job = landed_job(cloud)
    cloud.fault(kind="rate_limit", route=JOB_STATUS, retry_after=3, count=1)
    assert h.get_queue_status("DEMO", job) == "succeeded"
    assert sleeps == [3.0]


def test_429_retry_after_is_capped(cloud):
    """A hostile Retry-After cannot stall the run (I7); HTTP-date values: tests/clc/test_retry.py."""
    sleeps: list[float] = []
    h = hook(sleeps)
    h.login()
    job = landed_job(cloud)
    cloud.fault(kind="rate_limit", route=JOB_STATUS, retry_after=3600, count=1)
    h.get_queue_status("DEMO", job)
    assert sleeps == [8.0]  # capped at the policy's cap


def test_5xx_backs_off_exponentially_with_full_jitter_then_gives_up(cloud):
    sleeps: list[float] = []
    h = hook(sleeps, attempts=4)
    h.login()
    cloud.fault(kind="error", route=SERVER, status=500, count=10)
    with pytest.raises(ClcApiError) as err:
        h.get_server("DEMO", "va1demoweb01")
    assert str(err.value) == "GET /v2/servers/DEMO/va1demoweb01 failed with HTTP 500: An error has occurred."
    assert sleeps == [0.5, 1.0, 2.0]  # rand 0.5 x min(cap, base * 2**(n-1))


def test_dropped_connection_on_a_get_is_retried(cloud):
    h = hook()
    h.login()
    cloud.fault(kind="drop", route=SERVER, count=1)
    assert h.get_server("DEMO", "va1demoweb01")["id"] == "va1demoweb01"
    assert cloud.counted(SERVER) == 2


def test_unreachable_api_is_a_connection_error(cloud):
    cloud.stop()
    h = hook(attempts=2)
    with pytest.raises(ClcConnectionError, match="after 2 attempts"):
        h.login()


def test_execute_package_lost_answer_is_never_replayed(cloud):
    h = hook()
    h.login()
    cloud.fault(kind="drop", route=EXECUTE, count=1)  # processed, then the connection is cut
    with pytest.raises(PossiblySubmittedError, match="not sent again"):
        h.execute_package("DEMO", ["va1demoweb01"], PKG, {"patch.debug.mode": "false"})
    assert cloud.executions_started("va1demoweb01") == 1
    assert len(cloud.sent(containing="executePackage")) == 1


def test_execute_package_500_may_have_been_processed(cloud):
    h = hook()
    h.login()
    cloud.fault(kind="garbage", route=EXECUTE, status=500, body="html", processed=True, count=1)
    with pytest.raises(PossiblySubmittedError):
        h.execute_package("DEMO", ["va1demoweb01"], PKG)
    assert cloud.executions_started("va1demoweb01") == 1
    assert len(cloud.sent(containing="executePackage")) == 1


def test_execute_package_retries_429_and_503_responses(cloud):
    h = hook()
    h.login()
    cloud.fault(kind="error", route=EXECUTE, status=503, count=1)
    cloud.fault(kind="rate_limit", route=EXECUTE, retry_after=0, count=1)
    items = h.execute_package("DEMO", ["va1demoweb01", "va1demoweb02"], PKG, {"patch.debug.mode": "false"})
    assert {i.server for i in items} == {"va1demoweb01", "va1demoweb02"}
    assert len({i.job_id for i in items}) == 1  # one shared job per batch
    bodies = [r.body for r in cloud.sent(containing="executePackage")]
    assert len(bodies) == 3  # 503, 429, then accepted
    assert bodies[-1] == {
        "servers": ["va1demoweb01", "va1demoweb02"],
        "package": {"packageId": PKG, "parameters": {"patch.debug.mode": "false"}},
    }
    assert cloud.executions_started("va1demoweb01") == 1


def test_batch_refusal_with_400_array_is_returned_per_server(start_cloud):
    start_cloud({"va1demoweb01": {"maintenance": True}})
    items = hook().start_maintenance("DEMO", ["va1demoweb01"])
    assert items[0].server == "va1demoweb01" and items[0].queued is False and items[0].error is None


def test_secrets_never_in_logs_or_errors(cloud, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    h = hook()
    h.login()
    token = h._token
    # the API echoes a package id it does not know: here one that carries both secrets
    with pytest.raises(ClcApiError) as err:
        h.execute_package("DEMO", ["va1demoweb01"], f"{PASSWORD} {token}")
    assert f"The package '{PASSWORD}" in cloud_answer(h, token)  # the API did echo them
    assert "The package '***" in str(err.value)
    assert token not in str(err.value) and PASSWORD not in str(err.value)
    cloud.fault(kind="drop", route=SERVER, count=10)
    with pytest.raises(ClcConnectionError) as err2:
        h.get_server("DEMO", "va1demoweb01")
    # the requests exception (which holds the prepared request and its headers) is not chained
    assert err2.value.__cause__ is None and err2.value.__suppress_context__
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err  # Airflow's structlog output goes to stdout
    assert "Logged in to CLC" in logged and "ConnectionError; retry" in logged  # logging did happen
    assert token not in logged and PASSWORD not in logged


def cloud_answer(h: ClcHook, token: str) -> str:
    """What the simulator answers to the same request, read without the hook."""
    import requests

    body = {"servers": ["va1demoweb01"], "package": {"packageId": f"{PASSWORD} {token}", "parameters": {}}}
    url = f"{h.settings.base_url}/operations/DEMO/servers/executePackage"
    return requests.post(url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5).text


def test_a_token_echoed_by_the_api_leaves_no_part_of_it_in_the_error(cloud):
    """The error text is cut to its limit only after masking: a token cut in two would stay."""
    h = hook()
    h.login()
    token = h._token
    with pytest.raises(ClcApiError) as err:
        h.execute_package("DEMO", ["va1demoweb01"], f"echo {token}")
    assert token[:40] not in str(err.value)


def test_own_extra_keys_are_never_sent_as_headers(cloud):
    hook().get_server("DEMO", "va1demoweb01")
    seen = [r.headers for r in cloud.requests]
    assert seen
    for headers in seen:
        assert not {"account_alias", "patching_base_url", "retry_base", "timeout"} & set(headers)
    # and no basic auth anywhere: the bearer token or nothing
    assert all(h.get("authorization", "Bearer ").startswith("Bearer ") for h in seen)


@pytest.mark.parametrize(
    ("method", "route", "body", "message"),
    [
        ("get_patch_summary", SUMMARY, "wrong_type", "body should be list, got dict"),
        ("get_patch_summary", SUMMARY, "html", "malformed response"),
        ("get_queue_status", JOB_STATUS, "wrong_type", "body should be dict, got list"),
        ("get_server", SERVER, "wrong_type", "body should be dict"),
        ("get_server", SERVER, "empty", "malformed response"),
    ],
)
def test_malformed_answers_name_endpoint_and_problem(cloud, method, route, body, message):
    """Damaged on every attempt; field-level problems of each shape: tests/clc/test_shapes.py."""
    h = hook()
    h.login()
    target = landed_job(cloud) if method == "get_queue_status" else "va1demoweb01"
    cloud.fault(kind="garbage", route=route, body=body, count=10)
    with pytest.raises(ClcResponseError) as err:
        getattr(h, method)("DEMO", target)
    assert message in str(err.value)
    assert target in str(err.value)


def test_execute_package_malformed_answer_may_have_been_processed(cloud):
    h = hook()
    h.login()
    cloud.fault(kind="garbage", route=EXECUTE, body="wrong_type", count=1)
    with pytest.raises(PossiblySubmittedError, match=r"damaged answer: malformed response"):
        h.execute_package("DEMO", ["va1demoweb01"], PKG)
    assert cloud.executions_started("va1demoweb01") == 1


def test_inventory_walks_one_tree_per_data_center_and_flattens(cloud):
    h = hook()
    servers = h.inventory("DEMO", max_workers=2)
    by_id = {s["id"]: s for s in servers}
    assert set(by_id) == {"va1demoweb01", "va1demoweb02", "va1demodb01", "de1demoapp01"}
    root = cloud.group_id("VA1")
    assert by_id["va1demoweb01"]["group_path_names"] == ["VA1 Hardware", "Web"]
    assert by_id["va1demoweb01"]["group_path_ids"] == [root, cloud.group_id("VA1/Web")]
    assert by_id["de1demoapp01"]["data_center"] == "de1"
    assert by_id["va1demodb01"]["group_name"] == "DB"
    assert by_id["va1demodb01"]["group_id"] == cloud.group_id("VA1/DB")
    group_gets = [r.path for r in cloud.sent(containing="/v2/groups/")]
    assert len(group_gets) == 2 and all("serverDetail=detailed" in p for p in group_gets)


def test_inventory_filters_data_centers_and_groups_and_dedupes(cloud):
    h = hook()
    assert {s["id"] for s in h.inventory("DEMO", data_centers=["DE1"])} == {"de1demoapp01"}
    web = cloud.group_id("VA1/Web")
    rows = h.inventory("DEMO", group_ids=[web, web])
    assert sorted(s["id"] for s in rows) == ["va1demoweb01", "va1demoweb02"]
    assert rows[0]["group_path_names"] == ["Web"] and rows[0]["data_center"] == "va1"


def test_account_alias_falls_back_to_login(cloud, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json(account_alias=""))
    assert hook().account_alias == "DEMO"


def test_token_without_a_declared_lifetime_falls_back_to_fourteen_days():
    import base64
    import json

    from include.clc.tokens import token_lifetime

    def jwt(**claims: int) -> str:
        def enc(obj: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

        return f"{enc({'typ': 'JWT', 'alg': 'HS256'})}.{enc(claims)}.c2lnbmF0dXJl"

    assert token_lifetime("not-a-jwt") == 14 * 24 * 3600
    assert token_lifetime(jwt(exp=12345)) == 14 * 24 * 3600  # exp alone says nothing about a lifetime
    assert token_lifetime(jwt(exp=12345, nbf=12000)) == 345


def test_inventory_lineage_keeps_sub_groups_and_slashes_in_names(cloud, monkeypatch):
    """Group ids include their sub-groups, and 'Prod' never selects a group named 'Finance/Prod'."""
    from include.patching.classification import Scope, classify

    h = hook()
    template = h.get_server("DEMO", "va1demoweb01")

    def srv(sid: str) -> dict:
        return dict(template, id=sid, name=sid.upper())

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


def test_a_damaged_job_status_answer_is_read_again_not_taken_for_an_answer(cloud):
    """A proxy's HTML page (or a cut-off body) on one poll is a failed read, not a final status."""
    h = hook()
    job = h.start_maintenance("DEMO", ["va1demoweb01"])[0].job_id
    cloud.fault(kind="garbage", route=JOB_STATUS, body="html", count=2)
    assert h.wait_for_job("DEMO", job, timeout=30, interval=0.01) == "succeeded"
    assert cloud.counted(JOB_STATUS) >= 3


def test_a_dated_summary_carries_the_api_clock_not_ours(start_cloud):
    """The worker's reads (``deferrable=False``) date their answers as the triggerer's do."""
    cloud = start_cloud(api_clock_offset=-3650 * 86400.0)
    before = cloud.sim.now()
    summary, api_now = hook().get_patch_summary_dated("DEMO", "va1demoweb01")
    after = cloud.sim.now()
    assert isinstance(summary, list) and api_now is not None
    assert before - 1.0 <= api_now.timestamp() <= after  # whole seconds, within the round trip
