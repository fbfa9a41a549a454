"""The body of compliance_report's task: thin glue between Airflow and include.reporting.

The anchor: every ``patch_audit`` asset event carries the manifest hash of the pack its run
sealed (``extra["manifest_sha256"]``). That event lives in Airflow's metadata database, outside
the reports storage, so it is what the newest pack is checked against (invariant I10): the
newest triggering event when the asset started this run, else the newest event of the asset
(a run started by hand).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowFailException

from include.assets import PATCH_AUDIT
from patchflow.locations import reports_base

log = logging.getLogger(__name__)


def _events(triggering_asset_events: Any) -> list[Any]:
    """Every ``patch_audit`` event that triggered this run (none for a run started by hand)."""
    if not triggering_asset_events:
        return []
    found = []
    for events in triggering_asset_events.values():
        found += [event for event in events if getattr(event.asset, "name", None) == PATCH_AUDIT.name]
    return found


def _latest_inlet_event(inlet_events: Any) -> Any | None:
    """The newest ``patch_audit`` event recorded by Airflow, for runs started by hand."""
    if inlet_events is None:
        return None
    try:
        newest_first = inlet_events[PATCH_AUDIT].ascending(False).limit(1)
        return newest_first[0] if len(newest_first) else None
    except (KeyError, IndexError):
        return None


def anchor_from_events(events: Iterable[Any]) -> Any | None:
    """The anchor of the newest event whose extra carries a manifest hash, or None."""
    from include.reporting.compliance import EvidenceAnchor
    from include.reporting.evidence_pack import is_sha256

    usable = [event for event in events if is_sha256((event.extra or {}).get("manifest_sha256"))]
    if not usable:
        return None
    newest = max(usable, key=lambda event: event.timestamp)
    return EvidenceAnchor(
        manifest_sha256=newest.extra["manifest_sha256"],
        run_id=newest.extra.get("run_id"),
        source=f"patch_audit asset event of run {newest.source_run_id} at {newest.timestamp.isoformat()}",
    )


def _as_of(raw: str | None) -> datetime:
    """The ``as_of`` param as a moment (now when empty); a duration (``P1D``) is refused."""
    if not raw:
        return pendulum.now("UTC")
    parsed = pendulum.parse(raw)
    if not isinstance(parsed, datetime):
        raise ValueError(f"as_of must be a date or a date and time, got {raw!r}")
    return parsed


def build_compliance(
    params: dict[str, Any], *, triggering_asset_events: Any = None, inlet_events: Any = None
) -> dict[str, Any]:
    """Write the compliance report; fail visibly (after writing it) on an anchor mismatch or a
    failed validation."""
    from include.reporting.compliance import update_compliance_report
    from include.reporting.validation import AuditValidationError

    as_of = _as_of(params.get("as_of"))
    triggering = _events(triggering_asset_events)
    expected = [e.extra["run_id"] for e in triggering if (e.extra or {}).get("run_id")]
    latest = _latest_inlet_event(inlet_events) if not triggering else None
    anchor = anchor_from_events(triggering or ([latest] if latest is not None else []))
    report = update_compliance_report(
        reports_base(),
        as_of=as_of,
        policy_days=int(params.get("policy_days") or 35),
        expected_run_ids=expected,
        anchor=anchor,
    )
    log.info("Compliance as of %s: %s; written %s", report.as_of, report.summary, report.written)
    ring_files, ring_failures = _ring_reports(as_of, int(params.get("policy_days") or 35), anchor)
    log.info("Evidence: %s", report.evidence)
    for excluded in report.excluded:
        log.warning("Evidence pack excluded from the compliance history: %s", excluded)
    for dry in report.dry_runs:
        log.info("Dry run %s listed apart, not counted (it patched nothing)", dry["run_id"])
    for ignored in report.ignored:
        log.warning("Run left out of the compliance history: %s", ignored)
    if report.anchor_mismatch:
        raise AirflowFailException(
            f"evidence anchor mismatch: {report.evidence['anchor']['message']} "
            f"(report written to {report.written.get('compliance.html')})"
        )
    try:
        report.raise_if_invalid()
    except AuditValidationError as exc:
        raise AirflowFailException(f"compliance data failed validation: {exc}") from None
    if ring_failures:
        raise AirflowFailException(f"ring compliance data failed validation: {'; '.join(ring_failures)}")
    return {
        "summary": report.summary,
        "evidence": report.evidence,
        "files": report.written,
        "rings": ring_files,
    }


def _ring_reports(as_of: datetime, policy_days: int, anchor: Any) -> tuple[dict[str, Any], list[str]]:
    """One report per ring of the ring file under ``compliance/rings/<ring>/``; the failed validations."""
    from include.patching.rings import RingFileError, load_rings, ring_file
    from include.reporting.ring_compliance import update_ring_reports

    try:
        names = [ring.name for ring in load_rings(ring_file())]
    except (OSError, RingFileError) as exc:
        log.warning("No ring compliance reports: the ring file is unusable (%s)", exc)
        return {}, []
    reports = update_ring_reports(reports_base(), names, as_of=as_of, policy_days=policy_days, anchor=anchor)
    failures = []
    for name, ring_report in reports.items():
        log.info("Ring %s compliance: %s; written %s", name, ring_report.summary, ring_report.written)
        if ring_report.validation is not None and not ring_report.validation["success"]:
            failures.append(f"ring {name}: see {ring_report.written.get('compliance.html')}")
    return {name: r.written for name, r in reports.items()}, failures
