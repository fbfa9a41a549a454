"""Great Expectations checks of the compliance report, over the server rows *as the report lists them*.

Validating the listed rows (every section of :func:`include.reporting.compliance.listing`, in
order) rather than the replay's internal map is what makes "each server once" a check that can
fail: a server shown in two sections is two rows here.

The checks restate the policy from evidence the verdict did not use, so a wrong clock cannot
vouch for itself: "the latest included run patched this server and started within the policy
window, so it is compliant" reads only the server's last state and that run's start (both
patchflow's clock), never the success time the verdict was computed from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from include.patching.states import ServerState
from include.reporting.compliance import SERVER_COLUMNS, STATUSES, SUCCESS_STATES, ComplianceStatus
from include.reporting.validation import one_line_per_server, run_suite, validation_result
from include.timefmt import parse_utc_text

#: Derived columns: the section a row is listed in, and the policy restated from the latest run.
SECTION, LATEST_RUN_PATCHED = "section", "patched_by_latest_run_within_policy"
YES, NO = "yes", "no"


def _patched_by_latest_run(
    server: Mapping[str, Any], started: Mapping[str, Any], as_of: datetime, policy_days: int
) -> str:
    """``yes`` when the server's latest included run patched it and *started* within the policy window.

    The start, not the end: the patch happened after the run started, so a run that started at
    most ``policy_days`` days before ``as_of`` leaves the server compliant, however long it ran.
    """
    if server.get("last_state") not in SUCCESS_STATES:
        return NO
    start = parse_utc_text(started.get(str(server.get("last_seen_run_id"))))
    if start is None or start > as_of:
        return NO
    return YES if (as_of - start).total_seconds() // 86400 <= policy_days else NO


def _dry_runs_not_counted(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Included runs are real runs: a dry run in the trend would count a plan as an outcome."""
    dry = [str(run.get("run_id")) for run in runs if run.get("dry_run")]
    return {
        "name": "dry_runs_not_counted",
        "description": "no dry run is among the included runs (they are listed apart)",
        "success": not dry,
        "engine": "python",
        "expectation": "included_runs_are_real_runs",
        "observed": len(runs),
        "unexpected_count": len(dry),
        "unexpected_sample": dry[:20],
        "unexpected_rows": [],
    }


def validate_compliance(
    listed: Sequence[tuple[str, Sequence[Mapping[str, Any]]]],
    *,
    expected_servers: int,
    policy_days: int,
    as_of: datetime,
    runs: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """GX checks of the listed verdicts; ``listed`` is ``listing(servers)`` (section, rows) pairs,
    ``runs`` the included runs (their ``started_at`` restates the policy, see above)."""
    started = {str(run.get("run_id")): run.get("started_at") for run in runs}
    rows = [
        {key: server.get(key) for key in SERVER_COLUMNS}
        | {
            SECTION: str(section),
            LATEST_RUN_PATCHED: _patched_by_latest_run(server, started, as_of, policy_days),
        }
        for section, servers in listed
        for server in servers
    ]

    def frame(pd: Any) -> Any:
        data = pd.DataFrame(rows, columns=[*SERVER_COLUMNS, SECTION, LATEST_RUN_PATCHED])
        data["days_since_success"] = pd.to_numeric(data["days_since_success"], errors="coerce")
        return data

    def checks(gxe: Any, col: Any) -> list[tuple[str, str, Any]]:
        return [
            # over the rows as listed: a server in two sections of the report is two rows here
            *one_line_per_server(
                gxe,
                "server_count_equals_fleet",
                expected_servers,
                "one listed line per server ever inventoried",
            ),
            (
                "status_in_closed_set",
                f"status is one of {', '.join(STATUSES)}",
                gxe.ExpectColumnValuesToBeInSet(column="status", value_set=list(STATUSES)),
            ),
            (
                "days_since_not_negative",
                "no success lies in the future of as_of",
                gxe.ExpectColumnValuesToBeBetween(column="days_since_success", min_value=0),
            ),
            (
                "compliant_within_policy",
                f"compliant servers were patched within {policy_days} days",
                gxe.ExpectColumnValuesToBeBetween(
                    column="days_since_success",
                    min_value=0,
                    max_value=policy_days,
                    row_condition=col("status") == ComplianceStatus.COMPLIANT.value,
                ),
            ),
            (
                "compliant_has_success",
                "a compliant server has a recorded successful patch",
                gxe.ExpectColumnValuesToNotBeNull(
                    column="last_success_run_id",
                    row_condition=col("status") == ComplianceStatus.COMPLIANT.value,
                ),
            ),
            (
                "patched_by_latest_run_is_compliant",
                f"a server the latest included run patched, started within {policy_days} days, is compliant "
                "(whatever the patching service's clock said)",
                gxe.ExpectColumnValuesToBeInSet(
                    column="status",
                    value_set=[ComplianceStatus.COMPLIANT.value],
                    row_condition=col(LATEST_RUN_PATCHED) == YES,
                ),
            ),
            (
                "no_dry_run_outcome",
                "a dry run's plan is never a server's last outcome",
                gxe.ExpectColumnValuesToNotBeInSet(
                    column="last_state", value_set=[ServerState.PLANNED_DRY_RUN.value]
                ),
            ),
            (
                "listed_in_its_status_section",
                "each server is listed in the section of its status",
                gxe.ExpectColumnPairValuesToBeEqual(column_A=SECTION, column_B="status"),
            ),
        ]

    results = run_suite(frame, checks, "compliance")
    results.append(_dry_runs_not_counted(runs))
    return validation_result(results, "compliance")
