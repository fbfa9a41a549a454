"""The body of compliance_report's task: thin glue between Airflow and include.reporting."""

from __future__ import annotations

import logging
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowFailException

from patchflow.locations import reports_base

log = logging.getLogger(__name__)


def build_compliance(params: dict[str, Any], *, triggering_asset_events: Any = None) -> dict[str, Any]:
    """Write the compliance report; fail visibly (after writing it) when validation fails."""
    from include.reporting.compliance import update_compliance_report
    from include.reporting.validation import AuditValidationError

    as_of = pendulum.parse(params["as_of"]) if params.get("as_of") else pendulum.now("UTC")
    expected = []
    for events in (triggering_asset_events or {}).values():
        expected += [e.extra["run_id"] for e in events if (e.extra or {}).get("run_id")]
    report = update_compliance_report(
        reports_base(),
        as_of=as_of,
        policy_days=int(params.get("policy_days") or 35),
        expected_run_ids=expected,
    )
    log.info("Compliance as of %s: %s; written %s", report.as_of, report.summary, report.written)
    for ignored in report.ignored:
        log.warning("Run left out of the compliance history: %s", ignored)
    try:
        report.raise_if_invalid()
    except AuditValidationError as exc:
        raise AirflowFailException(f"compliance data failed validation: {exc}") from None
    return {"summary": report.summary, "files": report.written}
