"""Great Expectations checks of an audit document, as an auditor would state them.

GX is imported inside :func:`run_suite` only (≈3 s import; Airflow parses DAG files often).
An ephemeral context is used - nothing is written to disk and, with
``GX_ANALYTICS_ENABLED=false``, nothing leaves the machine.

Every check has a stable ``name`` (kept in the expectation's ``meta``) so the report, the
tests and a human reading ``validation.json`` all talk about the same thing.

Execution-id rule (decided here, see the product brief I4): ``patched`` and
``patched_no_updates`` need an execution id - completion is read from the execution, so
there must be one. ``failed`` and ``timed_out`` may have none (the request was refused, or
the execution never appeared before the timeout), but then ``reason`` must say why. Any
execution id present must match ``^[A-Z]{2}[0-9]-[0-9]{6}$``, and a server that was not
attempted must have none.

Maintenance rule (I2): the ``maintenance`` column is from the closed set of
``MaintenanceResult``; a server the run may have put into maintenance is ``released`` or
``left_on``, and ``left_on`` always carries a ``maintenance_note`` saying why.

Snapshot rule (issue 13): a ``reverted`` or ``revert_failed`` server carries a snapshot taken by
this run (``snapshot: confirmed`` with its name) — a run never restores anyone else's — and a
``reverted`` one says it was restored; a ``skipped_no_snapshot`` server says why in
``snapshot_note``; the snapshot columns hold values of their closed sets.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from include.patching.audit_rows import MaintenanceResult
from include.patching.snapshot_state import SnapshotFate, SnapshotStatus
from include.patching.states import ALL_STATES, ATTEMPTED_STATES, ServerState
from include.reporting.audit_document import SCALAR_COLUMNS, summarize
from include.timefmt import UTC_FORMAT

EXECUTION_ID_PATTERN = r"^[A-Z]{2}[0-9]-[0-9]{6}$"
TIMESTAMP_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
FORBIDDEN_PATCH = re.compile(r"^(kernel|nss)", re.IGNORECASE)
RHEL_FAMILY_OS = re.compile(r"^(centos|rhel|redhat)", re.IGNORECASE)
MAX_SAMPLES = 20
UNFINISHED_STATES = frozenset({ServerState.FAILED, ServerState.TIMED_OUT})
DERIVED_COLUMNS = (
    "forbidden_patches",
    "unexplained_missing_execution",
    "unexplained_left_on",
    "revert_without_run_snapshot",
    "unexplained_no_snapshot",
)
REVERT_STATES = frozenset({ServerState.REVERTED, ServerState.REVERT_FAILED})


class AuditValidationError(Exception):
    """The audit data failed validation; ``result`` holds the JSON-able details."""

    def __init__(self, result: Mapping[str, Any], what: str = "audit") -> None:
        self.result = dict(result)
        failed = ", ".join(check["name"] for check in result["checks"] if not check["success"])
        super().__init__(f"{what} validation failed: {failed}")


def _plain(value: Any) -> Any:
    """GX hands back numpy/pandas scalars; validation.json needs plain JSON values."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return None if value != value else value  # NaN -> None
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "item"):
        return _plain(value.item())
    return str(value)


def _sample(values: list[Any]) -> list[Any]:
    return _plain(list(values[:MAX_SAMPLES]))


def quiet_great_expectations() -> None:
    """Keep GX's INFO chatter out of task logs; its warnings and errors still show.

    Importing GX logs ~200 "Skipping registering function ..." lines at INFO (its docs
    registry) and creating a context logs its temporary docs folder; none of it says anything
    about the audit. Called before GX is imported (its package logger: the import-time lines
    are never emitted) and again after (a few GX modules set their own logger to INFO).
    """
    loggers = logging.Logger.manager.loggerDict
    for name in ["great_expectations", *(n for n in loggers if n.startswith("great_expectations."))]:
        logger = logging.getLogger(name)
        if name == "great_expectations" or logging.NOTSET < logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


def run_suite(
    frame_builder: Callable[[Any], Any],
    build_checks: Callable[[Any, Any], list[tuple[str, str, Any]]],
    suite_name: str,
    id_column: str = "server_id",
) -> list[dict[str, Any]]:
    """Run GX expectations over a pandas frame and return one JSON-able dict per check.

    ``frame_builder(pd)`` returns the DataFrame; ``build_checks(gxe, Column)`` (the GX
    expectations module and the row-condition ``Column`` class) returns
    ``(name, description, expectation)`` triples; failing rows are named by ``id_column``.
    Kept generic so the compliance report
    reuses the exact same machinery.
    """
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    quiet_great_expectations()
    import great_expectations as gx
    import great_expectations.expectations as gxe
    import pandas as pd
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.expectations.row_conditions import Column

    quiet_great_expectations()
    frame = frame_builder(pd)
    context = gx.get_context(mode="ephemeral")
    # GX draws a tqdm bar per validation on stderr, which Airflow's task log shows as an ERROR line.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    batch = (
        context.data_sources.add_pandas(f"{suite_name}_source")
        .add_dataframe_asset(f"{suite_name}_rows")
        .add_batch_definition_whole_dataframe("all_rows")
    )
    suite = context.suites.add(gx.ExpectationSuite(name=suite_name))
    descriptions: dict[str, str] = {}
    for name, description, expectation in build_checks(gxe, Column):
        expectation.meta = {"name": name}
        descriptions[name] = description
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=suite_name, data=batch, suite=suite)
    )
    outcome = definition.run(batch_parameters={"dataframe": frame}, result_format="SUMMARY")
    ids = list(frame[id_column]) if id_column in frame.columns else []
    checks = []
    for item in outcome.results:
        config = item.expectation_config
        assert config is not None  # GX attaches its expectation to every result of a suite run
        name = config.meta["name"]
        result = item.result or {}
        checks.append(
            {
                "name": name,
                "description": descriptions[name],
                "success": bool(item.success),
                "engine": "great_expectations",
                "expectation": config.type,
                "observed": _plain(result.get("observed_value")),
                "unexpected_count": _plain(result.get("unexpected_count")),
                "unexpected_sample": _sample(list(result.get("partial_unexpected_list") or [])),
                "unexpected_rows": _sample(
                    [ids[i] for i in result.get("partial_unexpected_index_list") or [] if i < len(ids)]
                ),
            }
        )
    order = list(descriptions)
    checks.sort(key=lambda check: order.index(check["name"]))
    return checks


def _audit_frame(document: Mapping[str, Any]) -> Callable[[Any], Any]:
    def build(pd: Any) -> Any:
        rows = []
        for row in document["servers"]:
            record = {key: row.get(key) for key in SCALAR_COLUMNS}
            rhel = row.get("os_family") == "linux" and bool(RHEL_FAMILY_OS.match(str(row.get("os") or "")))
            forbidden = [p["name"] for p in row.get("patches", []) if FORBIDDEN_PATCH.match(str(p["name"]))]
            record["forbidden_patches"] = ";".join(forbidden) if rhel else ""
            record["unexplained_missing_execution"] = (
                row.get("state") in UNFINISHED_STATES
                and row.get("execution_id") is None
                and not str(row.get("reason") or "").strip()
            )
            record["unexplained_left_on"] = (
                row.get("maintenance") == MaintenanceResult.LEFT_ON
                and not str(row.get("maintenance_note") or "").strip()
            )
            record["revert_without_run_snapshot"] = row.get("state") in REVERT_STATES and not (
                row.get("snapshot") == SnapshotStatus.CONFIRMED
                and row.get("snapshot_name")
                and (row.get("state") != ServerState.REVERTED or row.get("snapshot_restored") is True)
            )
            record["unexplained_no_snapshot"] = (
                row.get("state") == ServerState.SKIPPED_NO_SNAPSHOT
                and not str(row.get("snapshot_note") or "").strip()
            )
            rows.append(record)
        frame = pd.DataFrame(rows, columns=[*SCALAR_COLUMNS, *DERIVED_COLUMNS])
        frame = frame.astype(
            {"server_id": "object", "state": "object", "execution_id": "object", "maintenance": "object"}
        )
        frame = frame.astype({"server_id": "object", "state": "object", "execution_id": "object"})
        frame = frame.astype({"snapshot": "object", "snapshot_fate": "object"})
        for column in ("reboots", "attempts"):  # may be null (not reported): numeric with NaN
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
        for column in ("started_at", "ended_at"):
            frame[column + "_ts"] = pd.to_datetime(frame[column], format=UTC_FORMAT, errors="coerce")
        return frame

    return build


def _reboots_check(gxe: Any, summary: Mapping[str, Any]) -> tuple[str, str, Any]:
    """Reboots are summed when reported; when the summary says null, no row may claim any."""
    if summary.get("reboots") is None:
        return (
            "reboots_equals_summary",
            "summary.reboots is null (not reported by the patching service) and so is every row's",
            gxe.ExpectColumnValuesToBeNull(column="reboots"),
        )
    return (
        "reboots_equals_summary",
        "summary.reboots equals the sum over the rows",
        gxe.ExpectColumnSumToBeBetween(
            column="reboots", min_value=int(summary["reboots"]), max_value=int(summary["reboots"])
        ),
    )


def one_line_per_server(gxe: Any, name: str, count: int, what: str) -> list[tuple[str, str, Any]]:
    """The two checks every per-server suite starts with: ``count`` lines, no server twice."""
    return [
        (name, f"{what} ({count})", gxe.ExpectTableRowCountToEqual(value=count)),
        (
            "unique_server_id",
            "every server appears exactly once",
            gxe.ExpectColumnValuesToBeUnique(column="server_id"),
        ),
    ]


def _audit_checks(inventory_count: int, summary: Mapping[str, Any]) -> Callable[[Any, Any], list]:
    attempted = sorted(str(s.value) for s in ATTEMPTED_STATES)
    succeeded = [str(ServerState.PATCHED.value), str(ServerState.PATCHED_NO_UPDATES.value)]
    not_attempted = sorted(str(s.value) for s in ALL_STATES - ATTEMPTED_STATES)

    def build(gxe: Any, col: Any) -> list[tuple[str, str, Any]]:
        return [
            *one_line_per_server(
                gxe, "server_count_equals_inventory", inventory_count, "one row per inventoried server"
            ),
            (
                "server_id_present",
                "every row names its server",
                gxe.ExpectColumnValuesToNotBeNull(column="server_id"),
            ),
            (
                "state_in_closed_set",
                "every state belongs to the closed set of terminal states",
                gxe.ExpectColumnValuesToBeInSet(
                    column="state", value_set=sorted(s.value for s in ServerState)
                ),
            ),
            (
                "execution_id_format",
                "attempted servers carry an execution id like VA1-100042",
                gxe.ExpectColumnValuesToMatchRegex(
                    column="execution_id",
                    regex=EXECUTION_ID_PATTERN,
                    row_condition=col("state").is_in(attempted),
                ),
            ),
            (
                "execution_id_present_when_completed",
                "patched servers have an execution id (completion is read from it)",
                gxe.ExpectColumnValuesToNotBeNull(
                    column="execution_id", row_condition=col("state").is_in(succeeded)
                ),
            ),
            (
                "reason_when_execution_missing",
                "failed/timed-out servers without an execution id say why",
                gxe.ExpectColumnValuesToBeInSet(column="unexplained_missing_execution", value_set=[False]),
            ),
            (
                "no_execution_id_when_not_attempted",
                "servers that were not attempted were never sent the package",
                gxe.ExpectColumnValuesToBeNull(
                    column="execution_id",
                    row_condition=col("state").is_in(not_attempted),
                ),
            ),
            (
                "maintenance_in_closed_set",
                "every row says what the run left in maintenance mode (not_used, kept_preexisting, "
                "released, left_on)",
                gxe.ExpectColumnValuesToBeInSet(
                    column="maintenance", value_set=sorted(m.value for m in MaintenanceResult)
                ),
            ),
            (
                "left_in_maintenance_says_why",
                "a server left in maintenance by the run names the reason",
                gxe.ExpectColumnValuesToBeInSet(column="unexplained_left_on", value_set=[False]),
            ),
            (
                "revert_uses_a_snapshot_of_this_run",
                "a reverted (or revert_failed) server has a snapshot taken by this run, and a reverted "
                "one was restored to it",
                gxe.ExpectColumnValuesToBeInSet(column="revert_without_run_snapshot", value_set=[False]),
            ),
            (
                "no_snapshot_says_why",
                "a server not patched for want of a snapshot (skipped_no_snapshot) says why",
                gxe.ExpectColumnValuesToBeInSet(column="unexplained_no_snapshot", value_set=[False]),
            ),
            (
                "snapshot_in_closed_set",
                "the snapshot column is empty (snapshots off) or one of "
                + ", ".join(m.value for m in SnapshotStatus),
                gxe.ExpectColumnValuesToBeInSet(
                    column="snapshot", value_set=sorted(m.value for m in SnapshotStatus)
                ),
            ),
            (
                "snapshot_fate_in_closed_set",
                "what became of this run's snapshot is empty or one of kept, deleted, delete_requested, "
                "delete_failed",
                gxe.ExpectColumnValuesToBeInSet(
                    column="snapshot_fate", value_set=sorted(m.value for m in SnapshotFate)
                ),
            ),
            (
                "timestamps_iso8601",
                "started_at is YYYY-MM-DDTHH:MM:SSZ",
                gxe.ExpectColumnValuesToMatchRegex(column="started_at", regex=TIMESTAMP_PATTERN),
            ),
            (
                "ended_at_iso8601",
                "ended_at is YYYY-MM-DDTHH:MM:SSZ",
                gxe.ExpectColumnValuesToMatchRegex(column="ended_at", regex=TIMESTAMP_PATTERN),
            ),
            (
                "observed_at_iso8601",
                "observed_at (when patchflow saw the outcome, its own clock) is YYYY-MM-DDTHH:MM:SSZ",
                gxe.ExpectColumnValuesToMatchRegex(column="observed_at", regex=TIMESTAMP_PATTERN),
            ),
            (
                "completion_observed",
                "patched servers carry observed_at: compliance dates a success by patchflow's clock",
                gxe.ExpectColumnValuesToNotBeNull(
                    column="observed_at", row_condition=col("state").is_in(succeeded)
                ),
            ),
            (
                "ended_not_before_started",
                "no server ends before it started",
                gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                    column_A="ended_at_ts",
                    column_B="started_at_ts",
                    or_equal=True,
                    ignore_row_if="either_value_is_missing",
                ),
            ),
            (
                "no_kernel_or_nss_on_rhel",
                "RHEL/CentOS servers never list kernel* or nss* patches",
                gxe.ExpectColumnValuesToBeInSet(column="forbidden_patches", value_set=[""]),
            ),
            (
                "total_equals_summary",
                "summary.total equals the number of rows",
                # a distinct expectation type: GX merges identical expectations into one
                gxe.ExpectTableRowCountToBeBetween(
                    min_value=int(summary.get("total", -1)), max_value=int(summary.get("total", -1))
                ),
            ),
            *[
                (
                    f"{column}_equals_summary",
                    f"summary.{column} equals the sum over the rows",
                    gxe.ExpectColumnSumToBeBetween(
                        column=column,
                        min_value=int(summary.get(column, -1)),
                        max_value=int(summary.get(column, -1)),
                    ),
                )
                for column in ("patches_installed", "patches_failed")
            ],
            _reboots_check(gxe, summary),
        ]

    return build


def _breakdown_check(document: Mapping[str, Any]) -> dict[str, Any]:
    """Per-state/OS/data-center counts are nested maps, which GX cannot express: compared here."""
    expected = summarize(document["servers"])
    stated = document.get("summary", {})
    keys = ("by_state", "by_os_family", "by_data_center", "by_maintenance", "attempted")
    wrong = [key for key in keys if stated.get(key) != expected[key]]
    return {
        "name": "breakdowns_equal_summary",
        "description": "summary counts by state, OS family, data center, maintenance and attempted match "
        "the rows",
        "success": not wrong,
        "engine": "python",
        "expectation": "summary_breakdowns_match_rows",
        "observed": {key: stated.get(key) for key in wrong} or None,
        "unexpected_count": len(wrong),
        "unexpected_sample": wrong,
        "unexpected_rows": [],
    }


def validation_result(checks: list[dict[str, Any]], suite: str) -> dict[str, Any]:
    """The JSON-able verdict stored as ``validation.json``."""
    failed = [check["name"] for check in checks if not check["success"]]
    return {
        "suite": suite,
        "success": not failed,
        "evaluated": len(checks),
        "failed": failed,
        "checks": checks,
    }


def validate_audit(document: Mapping[str, Any], *, inventory_count: int) -> dict[str, Any]:
    """Validate an audit document; return the verdict (never raises on failed checks).

    ``inventory_count`` is the number of servers the inventory step found, taken from the
    inventory itself and not from the audit rows, so a dropped server is caught. The caller
    writes the pack first (so the failure is on record) and then raises
    ``AuditValidationError(result)`` when ``result["success"]`` is false.
    """
    if isinstance(inventory_count, bool) or not isinstance(inventory_count, int) or inventory_count < 0:
        raise ValueError(f"inventory_count must be a non-negative int, got {inventory_count!r}")
    if "servers" not in document or "summary" not in document:
        raise ValueError("document must be an audit document with 'servers' and 'summary'")
    checks = run_suite(_audit_frame(document), _audit_checks(inventory_count, document["summary"]), "audit")
    checks.append(_breakdown_check(document))
    return validation_result(checks, "audit")
