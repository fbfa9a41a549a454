"""Task bodies that patch DAGs add for rings and windows (``patchflow.dag_factory``).

- :func:`run_settings`: patch_fleet's preflight, plus the window a scheduled run was given
  by its timetable and, for a ring, its name and patch cycle (recorded in the audit).
- :func:`ring_gate`: the ``ring_gate`` short-circuit of a ring that ``requires`` another one.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import pendulum

from include.patching.patch_calendar import PatchCalendar
from include.patching.ring_gate import gate_verdict

log = logging.getLogger(__name__)


def _run_type(context: Any) -> str:
    run_type = getattr(context.get("dag_run"), "run_type", None)
    return str(getattr(run_type, "value", run_type))


def scheduled_window_end(context: Any) -> str | None:
    """A scheduled run's window end: its data interval's end, when the interval has a length.

    ``PatchTuesdayTimetable`` makes the interval the window; a cron schedule (patch_fleet) gives
    a zero-length interval, i.e. no window. Manual runs have no interval (Airflow 3).
    """
    start, end = context.get("data_interval_start"), context.get("data_interval_end")
    if _run_type(context) != "scheduled" or start is None or end is None or end <= start:
        return None
    return pendulum.instance(end).in_timezone("UTC").isoformat()


def patch_cycle(calendar: PatchCalendar, context: Any) -> str:
    """This run's patch cycle: its window's anchor month if scheduled, else the cycle in effect
    when it was triggered (``PatchCalendar.cycle_of``)."""
    if _run_type(context) == "scheduled" and context.get("data_interval_start") is not None:
        return calendar.window_cycle(pendulum.instance(context["data_interval_start"]))
    run_after = getattr(context.get("dag_run"), "run_after", None)
    return calendar.cycle_of(pendulum.instance(run_after) if run_after is not None else pendulum.now("UTC"))


def run_settings(
    params: dict[str, Any],
    *,
    conn_id: str,
    context: Any,
    ring: str | None = None,
    calendar: PatchCalendar | None = None,
) -> dict[str, Any]:
    """Preflight's settings, completed with the run's window and ring (see the module docstring)."""
    from patchflow.tasks import preflight

    settings = preflight(params, conn_id=conn_id)
    if not settings.get("window_end"):
        settings["window_end"] = scheduled_window_end(context)
    if settings["window_end"]:
        log.info("Maintenance window ends %s: no server is started after the cutoff", settings["window_end"])
    if ring is not None and calendar is not None:
        settings["ring"] = ring
        settings["patch_cycle"] = patch_cycle(calendar, context)
        log.info("Ring %s, patch cycle %s", ring, settings["patch_cycle"])
    return settings


def ring_gate(*, ring_name: str, requires: str, calendar: PatchCalendar | None, context: Any) -> bool:
    """True: the ring may start. False: every later task is skipped; the log and the run note say why."""
    from include.reporting.compliance import load_verified_history
    from patchflow.locations import reports_base
    from patchflow.run_note import publish

    if calendar is None:
        raise ValueError("ring_gate needs the ring's calendar")
    cycle = patch_cycle(calendar, context)
    history = load_verified_history(reports_base())
    verdict = gate_verdict(history.documents, ring=ring_name, requires=requires, cycle=cycle)
    if verdict.open:
        log.info("Ring gate open: %s", verdict.reason)
        return True
    log.warning("Ring gate closed: %s. Nothing was touched; every later task is skipped.", verdict.reason)
    publish(context, f"Not started: {verdict.reason}", logger=log)
    return False


def plan_ahead(params: dict[str, Any], *, conn_id: str, dag_id: str, run_id: str) -> dict[str, Any]:
    """The ring's scope planned as a dry run (nothing touched): patch_fleet's own three steps."""
    from patchflow.tasks import classify_servers, inventory, preflight

    settings = preflight({**params, "dry_run": True}, conn_id=conn_id)
    inventory_ref = inventory(settings, conn_id=conn_id, dag_id=dag_id, run_id=run_id)
    return classify_servers(settings, inventory_ref, dag_id=dag_id, run_id=run_id)


def upcoming_window(calendar: PatchCalendar, context: Any) -> tuple[datetime, datetime]:
    """The window a heads-up is about: the one its data interval leads to, else the next one."""
    if _run_type(context) == "scheduled" and context.get("data_interval_end") is not None:
        start = pendulum.instance(context["data_interval_end"])
        return start, start.add(minutes=calendar.duration_minutes)
    window = calendar.next_window(end_after=pendulum.now("UTC"))
    if window is None:
        raise ValueError("no upcoming maintenance window (every one is blacked out)")
    return window.start, window.end


def send_heads_up(plan_ref: dict[str, Any], *, ring: Any, recipients: str, context: Any) -> str:
    """Mail the dry-run plan before the ring's window; without recipients, say so and send nothing."""
    from include.artifacts import read_json
    from patchflow.heads_up import HeadsUpNotifier, build_heads_up
    from patchflow.locations import as_location

    plan = read_json(as_location(plan_ref["plan_path"]))
    start, end = upcoming_window(ring.calendar, context)
    message = build_heads_up(
        ring, plan, start=start, end=end, planned_at=pendulum.now("UTC").to_iso8601_string()
    )
    log.info("%s", message.subject)
    if not recipients.strip():
        log.info("No recipients (ring notify.to or [patchflow] notify_to): no heads-up sent.")
        return "no recipients configured"
    HeadsUpNotifier(to=recipients, heads_up=message).notify(context)
    return f"sent to {recipients}"
