"""E-mail the run summary (or the news that the run failed) through the SMTP provider.

Message building is pure (:func:`run_facts`; :func:`build_run_mail` decides what the mail
says and ``templates/run_mail.html.j2`` displays it, escaped) so it is tested without a mail
server; :class:`PatchRunNotifier` only adds the sending. Nothing secret can reach a message:
connection details are never read into it, and exception text is passed through
:func:`redact` (invariant I6).

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
from typing import Any

from airflow.sdk import BaseNotifier

from include.patching.states import ServerState
from include.reporting.attention import left_in_maintenance, needs_attention, state_needs_attention
from include.templating import Templates

MAX_LISTED_PROBLEMS = 50
MAIL_TEMPLATES = Templates(__file__)
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


def _attention_reason(row: Mapping[str, Any]) -> str:
    """Why the server is listed: its reason, and the maintenance it was left in (secrets masked)."""
    reason = str(row.get("reason") or ("no reason given" if state_needs_attention(row.get("state")) else ""))
    if left_in_maintenance(row):
        left = f"left in maintenance: {row.get('maintenance_note') or 'no reason given'}"
        reason = f"{reason}; {left}" if reason else left
    return redact(reason)


@dataclass(frozen=True)
class AttentionLine:
    """One listed server: its id, its state and why it needs attention (secrets masked)."""

    server_id: str
    state: str
    reason: str


@dataclass(frozen=True)
class MailSummary:
    """The run's numbers; ``states`` leaves out the states no server ended in."""

    total: int
    attempted: int
    patches_installed: int
    patches_failed: int
    reboots: str
    states: list[tuple[str, int]]


@dataclass(frozen=True)
class RunMail:
    """Everything the mail body shows (``templates/run_mail.html.j2`` displays it, escaped)."""

    subject: str
    failure: bool
    task_id: str | None
    reason: str | None
    exception: str | None
    summary: MailSummary | None
    attention: list[AttentionLine]
    attention_total: int
    report_location: str | None

    @property
    def attention_not_listed(self) -> int:
        return self.attention_total - len(self.attention)


def _subject(
    facts: Mapping[str, Any], summary: Mapping[str, Any] | None, failure: bool, attention: int, prefix: str
) -> str:
    head = f"{prefix} {facts['dag_id']} run {facts['run_id']}"
    if failure:
        where = f": task {facts['task_id']} failed" if facts.get("task_id") else ""
        return f"{prefix} FAILED {facts['dag_id']} run {facts['run_id']}{where}"
    if summary:
        by_state = summary.get("by_state", {})
        ok = by_state.get(ServerState.PATCHED, 0) + by_state.get(ServerState.PATCHED_NO_UPDATES, 0)
        return f"{head}: {summary['total']} servers, {ok} patched or up to date, {attention} need attention"
    return f"{head} finished"


def _mail_summary(summary: Mapping[str, Any]) -> MailSummary:
    return MailSummary(
        total=int(summary["total"]),
        attempted=int(summary["attempted"]),
        patches_installed=int(summary["patches_installed"]),
        patches_failed=int(summary["patches_failed"]),
        reboots=_reboots(summary.get("reboots")),
        states=[(str(state), int(count)) for state, count in summary.get("by_state", {}).items() if count],
    )


def build_run_mail(
    facts: Mapping[str, Any],
    *,
    audit: Mapping[str, Any] | None = None,
    report_location: str | None = None,
    failed: bool | None = None,
    subject_prefix: str = "[patchflow]",
) -> RunMail:
    """What the run e-mail says. Pure: same input, same mail."""
    failure = _is_failure(facts, failed)
    summary = (audit or {}).get("summary")
    problems = [row for row in (audit or {}).get("servers", []) if needs_attention(row)]
    return RunMail(
        subject=_subject(facts, summary, failure, len(problems), subject_prefix),
        failure=failure,
        task_id=None if facts.get("task_id") is None else str(facts["task_id"]),
        reason=redact(str(facts["reason"])) if facts.get("reason") else None,
        exception=facts.get("exception"),
        summary=_mail_summary(summary) if summary else None,
        attention=[
            AttentionLine(str(row.get("server_id")), str(row.get("state")), _attention_reason(row))
            for row in problems[:MAX_LISTED_PROBLEMS]
        ],
        attention_total=len(problems),
        report_location=None if report_location is None else str(report_location),
    )


def build_run_message(
    facts: Mapping[str, Any],
    *,
    audit: Mapping[str, Any] | None = None,
    report_location: str | None = None,
    failed: bool | None = None,
    subject_prefix: str = "[patchflow]",
) -> RunMessage:
    """Subject and HTML body of the run e-mail. Pure: same input, same message."""
    mail = build_run_mail(
        facts, audit=audit, report_location=report_location, failed=failed, subject_prefix=subject_prefix
    )
    return RunMessage(subject=mail.subject, html=MAIL_TEMPLATES.render("run_mail.html.j2", mail=mail))


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
