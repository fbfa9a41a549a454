"""The client core driven by scripted outcomes: what both transports get from it, without a network."""

from __future__ import annotations

import json
from typing import Any

import pytest

from include.clc import endpoints
from include.clc.client import ClientCore
from include.clc.endpoints import ApiCall
from include.clc.errors import (
    ClcAccessDeniedError,
    ClcApiError,
    ClcConnectionError,
    ClcLoginRefusedError,
    ClcResponseError,
    ClcServiceUnavailableError,
    PossiblySubmittedError,
)
from include.clc.retry import Answer, Delivery, NoAnswer, Outcome, RetryPolicy
from include.clc.settings import ClcSettings
from include.clc.shapes import BatchItem, Login
from include.clc.tokens import TokenState

PASSWORD = "pw-secret-1"
TOKEN = "tok-abcdef-123"


class ListLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, msg: str, *args: Any) -> None:
        self.lines.append(("info", msg % args))

    def warning(self, msg: str, *args: Any) -> None:
        self.lines.append(("warning", msg % args))


def core(account_alias: str | None = None) -> ClientCore:
    settings = ClcSettings("http://h/v2", "http://h/patching/rest", "user", PASSWORD, account_alias)
    policy = RetryPolicy(attempts=3, base=1.0, cap=8.0, rand=lambda: 0.5)
    return ClientCore(settings, policy, TokenState(), ListLog())


def answer(status: int, body: Any = None, retry_after: str | None = None) -> Answer:
    return Answer(status, b"" if body is None else json.dumps(body).encode(), retry_after)


def run(c: ClientCore, call: ApiCall[Any], outcomes: list[Outcome]) -> tuple[Any, list[float]]:
    """Drive one call as a transport does, answering from ``outcomes``; (result, pauses)."""
    exchange, script, pauses = c.exchange(call), iter(outcomes), []
    while exchange.open:
        pause = exchange.observe(next(script))
        if pause is not None:
            pauses.append(pause)
    assert next(script, None) is None, "the core stopped before the script ended"
    return exchange.result(), pauses


SERVER = endpoints.server("DEMO", "va1demoweb01")


def test_retries_are_paced_and_logged_the_same_for_every_transport():
    c = core()
    result, pauses = run(
        c, SERVER, [answer(503, retry_after="4"), answer(502), answer(200, {"id": "va1demoweb01"})]
    )
    assert result == {"id": "va1demoweb01"} and pauses == [4.0, 1.0]
    assert c.log.lines == [
        ("warning", "GET /v2/servers/DEMO/va1demoweb01: HTTP 503; retry 1/2 in 4.0s"),
        ("warning", "GET /v2/servers/DEMO/va1demoweb01: HTTP 502; retry 2/2 in 1.0s"),
    ]


def test_a_401_drops_the_token_once_and_does_not_cost_an_attempt():
    c = core()
    c.logged_in(Login(TOKEN, "DEMO"))
    outcomes = [answer(401), answer(500), answer(500), answer(200, {"id": "x"})]
    assert run(c, SERVER, outcomes)[0] == {"id": "x"}
    assert c.tokens.token is None  # the transport logs in again before the next attempt
    assert ("info", "GET /v2/servers/DEMO/va1demoweb01: token refused (401), logging in again") in c.log.lines


def test_a_second_401_is_a_permanent_auth_error():
    with pytest.raises(ClcApiError, match="HTTP 401") as err:
        run(core(), SERVER, [answer(401), answer(401, {"message": "denied"})])
    assert type(err.value).__name__ == "ClcAuthError"


def test_no_answer_on_every_attempt_is_a_connection_error_without_context():
    refused = NoAnswer(Delivery.NEVER_SENT, "ConnectionError")
    with pytest.raises(ClcConnectionError, match="ConnectionError after 3 attempts") as err:
        run(core(), SERVER, [refused] * 3)
    assert err.value.__cause__ is None and err.value.__suppress_context__


def test_execute_package_is_never_sent_again_once_it_may_have_been_processed():
    call = endpoints.execute_package("DEMO", ["s1"], "pkg")
    with pytest.raises(PossiblySubmittedError, match="ReadTimeout"):
        run(core(), call, [NoAnswer(Delivery.MAYBE_SENT, "ReadTimeout")])
    with pytest.raises(PossiblySubmittedError, match="HTTP 500"):
        run(core(), call, [answer(500)])
    refused = NoAnswer(Delivery.NEVER_SENT, "ConnectionError")
    queued = [{"server": "S1", "isQueued": True, "links": [{"rel": "status", "id": "va1-9"}]}]
    assert run(core(), call, [refused, answer(503), answer(200, queued)])[0] == [
        BatchItem("s1", True, "va1-9", None)
    ]


def test_a_batch_refused_as_a_whole_answers_per_server():
    refused = [{"server": "s1", "isQueued": False, "errorMessage": "already in maintenance"}]
    items, _ = run(core(), endpoints.start_maintenance("DEMO", ["s1"]), [answer(400, refused)])
    assert items == [BatchItem("s1", False, None, "already in maintenance")]
    with pytest.raises(ClcApiError, match="HTTP 400"):
        run(core(), SERVER, [answer(400, refused)])


@pytest.mark.parametrize(
    ("call", "status", "error"),
    [
        (endpoints.login("user", PASSWORD), 400, ClcLoginRefusedError),
        (endpoints.login("user", PASSWORD), 503, ClcServiceUnavailableError),
        (SERVER, 403, ClcAccessDeniedError),
        (SERVER, 404, ClcApiError),
    ],
)
def test_error_answers_become_typed_errors_with_secrets_redacted(call, status, error):
    c = core()
    c.logged_in(Login(TOKEN, None))
    body = {"message": f"echo {PASSWORD} Bearer {TOKEN}"}
    with pytest.raises(error) as err:
        run(c, call, [answer(status, body)] * (3 if status == 503 else 1))
    assert type(err.value) is error and err.value.status == status
    assert PASSWORD not in str(err.value) and TOKEN not in str(err.value) and "echo ***" in str(err.value)


def test_a_2xx_that_stays_damaged_is_a_response_error_after_every_attempt():
    html = Answer(200, b"<html>")
    with pytest.raises(ClcResponseError, match="GET /v2/servers/DEMO/va1demoweb01: body is not JSON"):
        run(core(), SERVER, [html, html, html])
    wrong = answer(200, {"state": "done"})
    with pytest.raises(ClcResponseError, match="missing field 'status'"):
        run(core(), endpoints.queue_status("DEMO", "j"), [wrong, wrong, wrong])


def test_a_damaged_read_is_read_again_and_logged():
    c = core()
    value, pauses = run(
        c, endpoints.queue_status("DEMO", "j"), [Answer(200, b'{"stat'), answer(200, {"status": "succeeded"})]
    )
    assert value == "succeeded" and pauses == [core().retry.delay(1)]
    assert "damaged answer" in c.log.lines[-1][1]


def test_a_damaged_answer_to_execute_package_may_have_been_processed():
    """Never read again: the request may have run; the rollout reconciles instead (I1)."""
    call = endpoints.execute_package("DEMO", ["va1demoweb01"], "pkg", {})
    with pytest.raises(PossiblySubmittedError, match="damaged answer"):
        run(core(), call, [Answer(200, b'[{"server": "va1demoweb01", "isQu')])


def test_login_keeps_token_and_alias_and_the_alias_falls_back_to_it():
    c = core()
    assert c.alias_unknown()
    login, _ = run(c, c.login_call(), [answer(200, {"bearerToken": TOKEN, "accountAlias": "DEMO"})])
    c.logged_in(login)
    assert c.tokens.token == TOKEN and c.account_alias() == "DEMO" and not c.alias_unknown()
    assert c.log.lines[-1] == ("info", "Logged in to CLC as user (alias DEMO)")
    assert core("CONF").account_alias() == "CONF" and not core("CONF").alias_unknown()
    nameless = core()
    nameless.logged_in(Login(TOKEN, None))
    with pytest.raises(ClcResponseError, match="no accountAlias and none configured"):
        nameless.account_alias()


def test_the_result_is_not_read_before_the_exchange_ends():
    exchange = core().exchange(SERVER)
    with pytest.raises(RuntimeError):
        exchange.result()
    exchange.observe(answer(503))
    with pytest.raises(RuntimeError):
        exchange.result()


def dated(status: int, body: Any, date: str) -> Answer:
    return Answer(status, json.dumps(body).encode(), None, date)


def test_the_patching_service_clock_is_kept_from_its_newest_successful_answer():
    c = core("DEMO")
    summary = endpoints.patch_summary("DEMO", "va1demoweb01")
    run(c, summary, [dated(200, [], "Tue, 01 Dec 2026 10:00:05 GMT")])
    assert c.patching_clock is not None and c.patching_clock.api.isoformat() == "2026-12-01T10:00:05+00:00"
    run(c, summary, [dated(200, [], "Tue, 01 Dec 2026 10:00:01 GMT")])  # answered out of order: older
    assert c.patching_clock.api.isoformat() == "2026-12-01T10:00:05+00:00"
    run(
        c,
        endpoints.queue_status("DEMO", "va1-1"),
        [dated(200, {"status": "running"}, "Tue, 01 Dec 2026 11:00:00 GMT")],
    )
    assert c.patching_clock.api.isoformat() == "2026-12-01T10:00:05+00:00"  # another service's clock
    with pytest.raises(ClcApiError):
        run(c, summary, [dated(404, {"message": "no"}, "Tue, 01 Dec 2026 12:00:00 GMT")])
    assert c.patching_clock.api.isoformat() == "2026-12-01T10:00:05+00:00"  # only answers that served
