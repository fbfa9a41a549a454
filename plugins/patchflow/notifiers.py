"""E-mail the run summary (or the news that the run failed) through the SMTP provider.

Message building is pure (:func:`run_facts`, :func:`build_run_message`) so it is tested
without a mail server; :class:`PatchRunNotifier` only adds the sending. Nothing secret can
reach a message: connection details are never read into it, and exception text is passed
through :func:`redact` (invariant I6).

Usage::

    # on the DAG: mail when the run fails, naming the failed task when the context says it
    on_failure_callback=PatchRunNotifier(to=["ops@example.com"], report_location=REPORTS)
    # in the notify task, with the audit document of the run
    PatchRunNotifier(to=..., audit=document, report_location=str(pack.report_path)).notify(context)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from airflow.sdk import BaseNotifier

from include.patching.audit_rows import MaintenanceResult
from include.patching.states import PROBLEM_STATES, ServerState

MAX_LISTED_PROBLEMS = 50
_KEYS = r"(?:password|passwd|pwd|access_token|token|secret|api[_-]?key)"
_SECRET_PATTERNS = (
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1***"),
    (re.compile(r"(?i)\b(authorization[\"']?\s*[=:]\s*)[^\n,;}]+"), r"\1***"),
    (re.compile(rf"(?i)\b({_KEYS}[\"']?\s*[=:]\s*)(?:\"[^\"]*\"|'[^']*'|[^\s,;&}}]+)"), r"\1***"),
    (re.compile(r"(://[^:/@\s]+:)[^@\s]+(@)"), r"\1***\2"),
)


def redact(text: str) -> str:
    """Mask bearer tokens, ``password=...``-style values and URL credentials in free text."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


@dataclass(frozen=True)
class RunMessage:
    subject: str
    html: str


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def run_facts(context: Mapping[str, Any]) -> dict[str, Any]:
    """What the message needs from an Airflow context (task, DAG callback, or a plain dict)."""
    dag_run = context.get("dag_run")
    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    exception = context.get("exception")
    state = _get(dag_run, "state")
    return {
        "dag_id": _get(dag_run, "dag_id") or _get(dag, "dag_id") or context.get("dag_id") or "unknown DAG",
        "run_id": _get(dag_run, "run_id") or context.get("run_id") or "unknown run",
        "run_state": None if state is None else str(getattr(state, "value", state)),
        "task_id": _get(ti, "task_id"),
        "reason": context.get("reason"),
        "exception": None
        if exception is None
        else f"{type(exception).__name__}: {redact(str(exception))[:500]}",
    }


def _reboots(value: Any) -> str:
    """Reboots are not reported by the patching service; a count only when really observed."""
    return "reboots not reported by the patching service" if value is None else f"{int(value)} reboots"


def _is_failure(facts: Mapping[str, Any], failed: bool | None) -> bool:
    if failed is not None:
        return failed
    return facts["exception"] is not None or facts["run_state"] == "failed"


def _needs_attention(row: Mapping[str, Any]) -> bool:
    """Not patched (or unknown), or left in maintenance by the run (I2)."""
    return row.get("state") in PROBLEM_STATES or row.get("maintenance") == MaintenanceResult.LEFT_ON


def _attention_reason(row: Mapping[str, Any]) -> str:
    reason = str(row.get("reason") or ("" if row.get("state") not in PROBLEM_STATES else "no reason given"))
    if row.get("maintenance") == MaintenanceResult.LEFT_ON:
        left = f"left in maintenance: {row.get('maintenance_note') or 'no reason given'}"
        reason = f"{reason}; {left}" if reason else left
    return reason


def build_run_message(
    facts: Mapping[str, Any],
    *,
    audit: Mapping[str, Any] | None = None,
    report_location: str | None = None,
    failed: bool | None = None,
    subject_prefix: str = "[patchflow]",
) -> RunMessage:
    """Subject and HTML body of the run e-mail. Pure: same input, same message."""
    failure = _is_failure(facts, failed)
    summary = (audit or {}).get("summary")
    by_state: Mapping[str, int] = (summary or {}).get("by_state", {})
    problems = [row for row in (audit or {}).get("servers", []) if _needs_attention(row)]
    head = f"{subject_prefix} {facts['dag_id']} run {facts['run_id']}"
    if failure:
        where = f": task {facts['task_id']} failed" if facts.get("task_id") else ""
        subject = f"{subject_prefix} FAILED {facts['dag_id']} run {facts['run_id']}{where}"
    elif summary:
        ok = by_state.get(ServerState.PATCHED, 0) + by_state.get(ServerState.PATCHED_NO_UPDATES, 0)
        subject = (
            f"{head}: {summary['total']} servers, {ok} patched or up to date, {len(problems)} need attention"
        )
    else:
        subject = f"{head} finished"
    parts = [f"<h2>{escape(subject)}</h2>"]
    if failure:
        parts.append('<p style="color:#cf222e"><strong>The run FAILED.</strong>')
        if facts.get("task_id"):
            parts.append(f" Failed task: <code>{escape(str(facts['task_id']))}</code>.")
        if facts.get("reason"):
            parts.append(f" Reason: {escape(redact(str(facts['reason'])))}.")
        if facts.get("exception"):
            parts.append(f" Error: <code>{escape(facts['exception'])}</code>.")
        parts.append("</p>")
    if summary:
        rows = "".join(
            f'<tr><td>{escape(state)}</td><td style="text-align:right">{int(count)}</td></tr>'
            for state, count in by_state.items()
            if count
        )
        parts.append(
            f"<p>{int(summary['total'])} servers inventoried, {int(summary['attempted'])} attempted, "
            f"{int(summary['patches_installed'])} patches installed, "
            f"{int(summary['patches_failed'])} failed, {_reboots(summary.get('reboots'))}.</p>"
            f"<table><tr><th>State</th><th>Servers</th></tr>{rows}</table>"
        )
    if problems:
        items = "".join(
            f"<li><code>{escape(str(row.get('server_id')))}</code> {escape(str(row.get('state')))}: "
            f"{escape(redact(_attention_reason(row)))}</li>"
            for row in problems[:MAX_LISTED_PROBLEMS]
        )
        more = len(problems) - MAX_LISTED_PROBLEMS
        parts.append(
            f"<h3>Servers needing attention ({len(problems)})</h3><ul>{items}</ul>"
            + (f"<p>... and {more} more, see the report.</p>" if more > 0 else "")
        )
    if report_location:
        parts.append(f"<p>Report: <code>{escape(str(report_location))}</code></p>")
    elif failure:
        parts.append("<p>No report was produced for this run.</p>")
    return RunMessage(subject=subject, html="".join(parts))


def _recipients(to: str | Sequence[str]) -> list[str]:
    items = [to] if isinstance(to, str) else list(to)
    addresses = [part.strip() for item in items for part in re.split(r"[,;]", str(item)) if part.strip()]
    if not addresses:
        raise ValueError("PatchRunNotifier: 'to' must name at least one recipient")
    bad = [address for address in addresses if "@" not in address]
    if bad:
        raise ValueError(f"PatchRunNotifier: not an e-mail address: {', '.join(bad)}")
    return addresses


class PatchRunNotifier(BaseNotifier):
    """Send the run summary, or a FAILED notice, to ``to`` through ``SmtpHook``.

    Works as ``on_failure_callback`` / ``on_success_callback`` (DAG or task level) and
    when called directly with a context. ``failed=None`` infers failure from the context
    (an exception, or a failed DAG run state).
    """

    template_fields = ("to", "report_location", "subject_prefix")

    def __init__(
        self,
        *,
        to: str | Sequence[str],
        audit: Mapping[str, Any] | None = None,
        report_location: str | None = None,
        smtp_conn_id: str = "smtp_default",
        from_email: str | None = None,
        failed: bool | None = None,
        subject_prefix: str = "[patchflow]",
    ) -> None:
        super().__init__()
        _recipients(to)  # fail at DAG parse time, not when the mail is due
        self.to = to
        self.audit = audit
        self.report_location = report_location
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email
        self.failed = failed
        self.subject_prefix = subject_prefix

    def message(self, context: Mapping[str, Any]) -> RunMessage:
        return build_run_message(
            run_facts(context),
            audit=self.audit,
            report_location=self.report_location,
            failed=self.failed,
            subject_prefix=self.subject_prefix,
        )

    def notify(self, context: Mapping[str, Any]) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        message = self.message(context)
        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as hook:
            hook.send_email_smtp(
                to=_recipients(self.to),
                subject=message.subject,
                html_content=message.html,
                from_email=self.from_email or hook.from_email or "patchflow@localhost",
            )
