"""
### compliance_report — fleet patch compliance over time

Runs after every `patch_fleet` audit (it is scheduled on the `patch_audit` asset) and can be
triggered by hand, e.g. with another policy or an `as_of` date for a past view.

It verifies the reports location and replays only the evidence packs that verify and are listed
in the chain (the packs *are* the history: nothing else to keep in sync; a tampered or forged
pack is excluded and named with its reason). The newest pack is checked against the manifest
hash in the triggering `patch_audit` event (or the latest one, for a run started by hand); a
mismatch is shown in red and fails the task after the report is written. It computes per
server the last successful patch, the days since, and **compliant / non_compliant** against the
policy (default 35 days), plus trends per run. A success is dated on patchflow's own clock (when
it saw the patch complete), never the patching service's, which may run ahead or behind; dry runs
are listed apart and never counted (docs/compliance.md). It writes `compliance/compliance.html`,
`compliance.csv` and `compliance.json`, validated with Great Expectations; a failed validation
fails the task after the report (with its red banner) is written.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param, task

from include.assets import PATCH_AUDIT
from patchflow.tuning import task_defaults

with DAG(
    dag_id="compliance_report",
    description="Fleet patch compliance and trends from the sealed evidence packs",
    doc_md=__doc__,
    schedule=[PATCH_AUDIT],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["compliance", "reporting"],
    default_args=task_defaults("compliance"),
    params={
        "policy_days": Param(
            35,
            type="integer",
            minimum=1,
            maximum=366,
            title="Policy (days)",
            description="A server is compliant when its last successful patch is at most this many days old.",
        ),
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date-time",
            title="As of",
            description="Compute compliance as of this moment (UTC). Empty: now.",
        ),
    },
) as dag:

    @task(inlets=[PATCH_AUDIT])
    def build_compliance(params: dict | None = None, triggering_asset_events=None, inlet_events=None) -> dict:
        """Verify and replay the evidence packs, write compliance.{html,csv,json}, validate with GX."""
        from patchflow.compliance import build_compliance as run_build

        return run_build(
            params or {}, triggering_asset_events=triggering_asset_events, inlet_events=inlet_events
        )

    build_compliance()
