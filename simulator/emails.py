"""Patch e-mails: an outbox readable at ``/_sim/outbox`` and, optionally, real SMTP.

SMTP delivery runs on one daemon thread fed by a queue so that a slow or absent mail
server never blocks the HTTP loop; failures are logged and counted, never raised.
"""

from __future__ import annotations

import logging
import queue
import smtplib
import threading
from email.message import EmailMessage
from email.utils import formatdate

from simulator.clock import iso, parse_iso

log = logging.getLogger("clc_simulator.email")
SENDER = "noreply@patching.ctl.io"


def requested_email(
    *, now: float, to: str, alias: str, server_name: str, execution_id: str, package: str, job_id: str
) -> dict:
    return {
        "kind": "patch_requested",
        "time": iso(now),
        "from": SENDER,
        "to": to,
        "subject": f"Patch request received for {server_name} ({execution_id})",
        "body": (
            f"A request to apply operating-system patches was received.\n\n"
            f"Account: {alias}\nServer: {server_name}\nExecution ID: {execution_id}\n"
            f"Package: {package}\nQueue job: {job_id}\nRequested at: {iso(now)}\n\n"
            "Patches are applied in repeated attempts with automatic reboots until none are left. "
            "Keep the server in maintenance mode until you receive the completion e-mail.\n"
        ),
        "alias": alias,
        "server": server_name.lower(),
        "execution_id": execution_id,
    }


def completed_email(
    *,
    now: float,
    to: str,
    alias: str,
    server_name: str,
    execution_id: str,
    installed: list[str],
    failed: list[str],
    reboots: int,
    start: float,
) -> dict:
    ok = not failed
    subject = (
        f"Patching completed successfully for {server_name} ({execution_id})"
        if ok
        else f"Patching completed with {len(failed)} failed update(s) for {server_name} ({execution_id})"
    )
    lines = [
        f"Patching of {server_name} has finished.",
        "",
        f"Account: {alias}",
        f"Server: {server_name}",
        f"Execution ID: {execution_id}",
        f"Started: {iso(start)}",
        f"Finished: {iso(now)}",
        f"Reboots: {reboots}",
        f"Installed updates ({len(installed)}):",
        *[f"  - {name}" for name in installed],
    ]
    if failed:
        lines += [f"Failed updates ({len(failed)}):", *[f"  - {name}" for name in failed]]
    return {
        "kind": "patch_completed" if ok else "patch_failed",
        "time": iso(now),
        "from": SENDER,
        "to": to,
        "subject": subject,
        "body": "\n".join(lines) + "\n",
        "alias": alias,
        "server": server_name.lower(),
        "execution_id": execution_id,
    }


def smtp_message(mail: dict) -> EmailMessage:
    """The SMTP form of an outbox entry; ``Date`` is the simulated time it was written at
    (otherwise the mail server would stamp the wall clock, not the API's clock)."""
    msg = EmailMessage()
    msg["From"] = mail["from"]
    msg["To"] = mail["to"]
    msg["Subject"] = mail["subject"]
    msg["Date"] = formatdate(parse_iso(mail["time"]), usegmt=True)
    msg["X-CLC-Execution-Id"] = mail.get("execution_id", "")
    msg.set_content(mail["body"])
    return msg


class SmtpSender:
    """Delivers outbox e-mails to ``host:port`` with plain SMTP on a background thread."""

    def __init__(self, host: str, port: int, on_result=None, timeout: float = 5.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.on_result = on_result or (lambda ok: None)
        self._queue: queue.Queue[dict | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="clc-sim-smtp", daemon=True)
        self._thread.start()

    def send(self, mail: dict) -> None:
        self._queue.put(mail)

    def close(self, timeout: float = 2.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while (mail := self._queue.get()) is not None:
            msg = smtp_message(mail)
            try:
                with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                    smtp.send_message(msg)
                self.on_result(True)
            except Exception as exc:  # never crash the simulator because of mail
                log.warning(
                    "could not send e-mail %r via %s:%s: %s", mail["subject"], self.host, self.port, exc
                )
                self.on_result(False)
