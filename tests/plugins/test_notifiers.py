"""PatchRunNotifier: pure message building, and real delivery to an SMTP server on loopback."""

from __future__ import annotations

import email
import json
import socket
from email.header import decode_header, make_header
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from patchflow.notifiers import (
    MAX_LISTED_PROBLEMS,
    PatchRunNotifier,
    build_run_mail,
    build_run_message,
    redact,
    run_facts,
)

SUMMARY = {
    "total": 4,
    "attempted": 3,
    "patches_installed": 7,
    "patches_failed": 1,
    "reboots": 2,
    "by_state": {"patched": 2, "failed": 1, "skipped_unsupported_os": 1, "timed_out": 0},
}
AUDIT = {
    "summary": SUMMARY,
    "servers": [
        {"server_id": "va1web01", "state": "patched", "reason": ""},
        {"server_id": "va1web02", "state": "patched", "reason": ""},
        {"server_id": "va1win01", "state": "failed", "reason": "KB4012212 failed <0x80070005>"},
        {"server_id": "uc1old01", "state": "skipped_unsupported_os", "reason": "ubuntu14"},
    ],
}


def _context(**extra):
    return {
        "dag_run": SimpleNamespace(
            dag_id="patch_fleet", run_id="manual__2026-11-27T14:00:00+00:00", state="running"
        ),
        **extra,
    }


class _Inbox:
    def __init__(self) -> None:
        self.envelopes = []
        self.logins = []

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and auth_data.password == b"sup3r-s3cret-pw"
        self.logins.append(auth_data.login.decode() if ok else None)
        return AuthResult(success=ok)

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_server(monkeypatch):
    """A real SMTP server on 127.0.0.1 and the Airflow connection pointing at it (env var)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = _Inbox()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate, auth_require_tls=False
    )
    controller.start()
    conn = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": port,
        "login": "mailer",
        "password": "sup3r-s3cret-pw",
        "extra": {"disable_tls": True, "disable_ssl": True, "retry_limit": 0, "timeout": 5},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_TEST", json.dumps(conn))
    try:
        yield inbox
    finally:
        controller.stop()


def _decoded(envelope):
    message = email.message_from_bytes(envelope.content)
    subject = str(make_header(decode_header(message["Subject"])))
    body = "".join(
        part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        for part in message.walk()
        if part.get_content_type() == "text/html"
    )
    return message, subject, body


def test_summary_message_counts_failures_and_report():
    message = build_run_message(
        run_facts(_context()), audit=AUDIT, report_location="/reports/runs/x/report.html"
    )
    assert "FAILED" not in message.subject
    assert "4 servers, 2 patched or up to date, 1 need attention" in message.subject
    assert '<td>patched</td><td style="text-align:right">2</td>' in message.html
    assert "timed_out" not in message.html  # zero counts are left out
    assert "KB4012212 failed &lt;0x80070005&gt;" in message.html  # API text is escaped
    assert "/reports/runs/x/report.html" in message.html


def test_a_server_left_in_maintenance_needs_attention_even_when_patched():
    audit = json.loads(json.dumps(AUDIT))
    audit["servers"][0].update(maintenance="left_on", maintenance_note="stopMaintenance refused: rebooting")
    message = build_run_message(run_facts(_context()), audit=audit)
    assert "2 need attention" in message.subject
    assert (
        "<code>va1web01</code> patched: left in maintenance: stopMaintenance refused: rebooting"
        in message.html
    )


def test_failure_message_names_task_and_redacts_secrets():
    error = RuntimeError("login refused for Bearer eyJhbGciOi.secret password=hunter2")
    facts = run_facts(_context(ti=SimpleNamespace(task_id="inventory"), exception=error))
    message = build_run_message(facts)
    assert message.subject.startswith("[patchflow] FAILED patch_fleet run manual__2026-11-27T14:00:00+00:00")
    assert message.subject.endswith("task inventory failed")
    assert "RuntimeError" in message.html
    assert "eyJhbGciOi" not in message.html and "hunter2" not in message.html
    assert "No report was produced" in message.html


def test_failed_dag_run_state_is_a_failure_without_exception():
    context = {"dag_run": SimpleNamespace(dag_id="d", run_id="r", state="failed"), "reason": "task_failure"}
    message = build_run_message(run_facts(context))
    assert "FAILED d run r" in message.subject
    assert "task_failure" in message.html


def test_redact_masks_common_secret_shapes():
    text = redact('Authorization: Bearer abc; {"password": "p@ss"} https://u:pw@host/x token=t0k')
    for secret in ("abc", "p@ss", "pw@", "t0k"):
        assert secret not in text


def test_bad_recipients_are_rejected_at_construction():
    with pytest.raises(ValueError, match="not an e-mail address: ops"):
        PatchRunNotifier(to=["ops"])
    with pytest.raises(ValueError, match="at least one recipient"):
        PatchRunNotifier(to=[])


def test_notify_delivers_summary_over_smtp(smtp_server):
    notifier = PatchRunNotifier(
        to="ops@example.com; audit@example.com",
        audit=AUDIT,
        report_location="/reports/runs/manual/report.html",
        smtp_conn_id="smtp_test",
        from_email="patchflow@example.com",
    )
    notifier.notify(_context())
    assert len(smtp_server.envelopes) == 1
    envelope = smtp_server.envelopes[0]
    assert sorted(envelope.rcpt_tos) == ["audit@example.com", "ops@example.com"]
    assert envelope.mail_from == "patchflow@example.com"
    assert smtp_server.logins == ["mailer"]  # the connection's credentials were used to log in...
    message, subject, body = _decoded(envelope)
    assert message["To"] == "ops@example.com, audit@example.com"
    assert subject == (
        "[patchflow] patch_fleet run manual__2026-11-27T14:00:00+00:00: "
        "4 servers, 2 patched or up to date, 1 need attention"
    )
    assert "7 patches installed" in body and "va1win01" in body
    assert "/reports/runs/manual/report.html" in body
    assert "sup3r-s3cret-pw" not in envelope.content.decode("utf-8", "replace")  # ...never written


def test_failure_callback_delivers_failed_subject(smtp_server):
    notifier = PatchRunNotifier(to=["ops@example.com"], smtp_conn_id="smtp_test")
    notifier(_context(ti=SimpleNamespace(task_id="execute_linux"), exception=TimeoutError("run timed out")))
    assert len(smtp_server.envelopes) == 1
    _, subject, body = _decoded(smtp_server.envelopes[0])
    assert "FAILED" in subject and "task execute_linux failed" in subject
    assert "TimeoutError: run timed out" in body
    assert smtp_server.envelopes[0].mail_from == "patchflow@localhost"


def test_unreported_reboots_are_said_to_be_unreported():
    audit = AUDIT | {"summary": SUMMARY | {"reboots": None}}
    message = build_run_message(run_facts(_context()), audit=audit)
    assert "reboots not reported by the patching service" in message.html


def test_the_mail_model_lists_at_most_fifty_servers_and_counts_the_rest():
    servers = [{"server_id": f"va1s{i:03d}", "state": "failed", "reason": ""} for i in range(53)]
    mail = build_run_mail(run_facts(_context()), audit={"summary": SUMMARY, "servers": servers})
    assert len(mail.attention) == MAX_LISTED_PROBLEMS and mail.attention_not_listed == 3
    assert mail.attention[0].reason == "no reason given"
    assert "53 need attention" in mail.subject and mail.summary.states[-1] == ("skipped_unsupported_os", 1)
    html = build_run_message(run_facts(_context()), audit={"summary": SUMMARY, "servers": servers}).html
    assert "... and 3 more, see the report." in html


def test_the_mail_masks_secrets_in_reasons_and_escapes_them():
    servers = [{"server_id": "va1x", "state": "exploded", "reason": "<b>token=abc123 refused</b>"}]
    mail = build_run_mail(run_facts(_context()), audit={"summary": SUMMARY, "servers": servers})
    assert mail.attention[0].reason == "<b>token=*** refused</b>"  # a state nobody knows needs attention too
    html = build_run_message(run_facts(_context()), audit={"summary": SUMMARY, "servers": servers}).html
    assert "&lt;b&gt;token=*** refused&lt;/b&gt;" in html and "abc123" not in html
