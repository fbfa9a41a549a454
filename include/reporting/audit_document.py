"""Build the audit document (``audit.json``) and its CSV twin from the audit rows of one run.

The DAG hands over one plain dict per inventoried server (invariant I3) plus the run metadata.
This module only checks the *shape* of that input (missing keys, wrong types) and raises
:class:`AuditDataError` naming the offending row and field. Semantic problems (duplicate
servers, unknown states, forbidden patches...) are left to :mod:`include.reporting.validation`
so that a bad run still produces an evidence pack that *shows* the failed validation.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

from include.patching.audit_rows import MaintenanceResult
from include.patching.snapshots import EMPTY_EVIDENCE as SNAPSHOT_EVIDENCE
from include.patching.states import ATTEMPTED_STATES, ServerState
from include.redaction import redact_mapping
from include.text_safety import visible_text

#: 2: rows carry ``maintenance`` and ``maintenance_note``; the summary ``by_maintenance``.
#: 3: rows carry ``observed_at``: when patchflow saw the outcome, on patchflow's clock
#: (``started_at``/``ended_at`` stay the patching service's times, on its clock).
#: 4: rows carry the snapshot evidence (``SNAPSHOT_COLUMNS``; absent in older packs).
SCHEMA_VERSION = 4

#: Scalar columns of a row, in CSV order. ``patch_names`` is appended to the CSV.
SCALAR_COLUMNS: tuple[str, ...] = (
    "server_id",
    "server_name",
    "description",
    "account_alias",
    "data_center",
    "group_id",
    "group_name",
    "os",
    "os_type",
    "os_family",
    "package_id",
    "state",
    "reason",
    "execution_id",
    "queue_job_id",
    "patches_installed",
    "patches_failed",
    "reboots",
    "attempts",
    "started_at",
    "ended_at",
    "observed_at",
    "maintenance",
    "maintenance_note",
    *SNAPSHOT_EVIDENCE,
)
#: The snapshot evidence (``include.patching.snapshots.evidence``): optional, older packs lack it.
SNAPSHOT_COLUMNS = frozenset(SNAPSHOT_EVIDENCE)
CSV_COLUMNS: tuple[str, ...] = (*SCALAR_COLUMNS, "patch_names")
INT_COLUMNS = frozenset({"patches_installed", "patches_failed"})
STR_COLUMNS = frozenset({"maintenance", "maintenance_note"})
#: Counts that may be unknown (None): ``reboots`` is not reported by the patching service (§9)
#: and never inferred; ``attempts`` (initiations observed) exists only once an execution was seen.
OPTIONAL_INT_COLUMNS = frozenset({"reboots", "attempts"})
PATCH_KEYS: tuple[str, ...] = ("name", "kb", "result_code", "status", "start_time", "end_time", "attempts")
RUN_KEYS: tuple[str, ...] = (
    "dag_id",
    "run_id",
    "run_type",
    "triggered_by",
    "params",
    "started_at",
    "ended_at",
    "account_alias",
    "dry_run",
    "software",
)
#: A cell starting with one of these is read as a formula by spreadsheet programs.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

_SOFTWARE_DISTRIBUTIONS = {
    "patchflow": "patchflow",
    "apache-airflow": "apache-airflow",
    "apache-airflow-task-sdk": "apache-airflow-task-sdk",
    "apache-airflow-providers-http": "apache-airflow-providers-http",
    "apache-airflow-providers-smtp": "apache-airflow-providers-smtp",
    "great-expectations": "great_expectations",
}


class AuditDataError(ValueError):
    """The audit rows or the run metadata do not follow the data contract."""


def software_versions() -> dict[str, str]:
    """Versions of the software that produced the run, for the audit trail.

    A distribution that is not installed is recorded as ``"not installed"`` rather than
    omitted, so an auditor sees that it was looked for. ``python`` is always present.
    """
    import platform

    versions = {"python": platform.python_version()}
    for label, dist in _SOFTWARE_DISTRIBUTIONS.items():
        try:
            versions[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[label] = "not installed"
    return versions


def _check_row(index: int, row: Any) -> dict[str, Any]:
    if not isinstance(row, Mapping):
        raise AuditDataError(f"audit row #{index} is a {type(row).__name__}, expected a dict")
    where = f"audit row #{index} (server_id={row.get('server_id')!r})"
    missing = [
        key
        for key in (*SCALAR_COLUMNS, "patches")
        if key not in row and key not in OPTIONAL_INT_COLUMNS and key not in SNAPSHOT_COLUMNS
    ]
    if missing:
        raise AuditDataError(f"{where} is missing field(s): {', '.join(missing)}")
    if not isinstance(row["server_id"], str) or not row["server_id"]:
        raise AuditDataError(f"{where}: server_id must be a non-empty string")
    for key in INT_COLUMNS:
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise AuditDataError(f"{where}: {key} must be a non-negative int, got {value!r}")
    for key in STR_COLUMNS:
        if not isinstance(row[key], str):
            raise AuditDataError(f"{where}: {key} must be a string, got {row[key]!r}")
    for key in OPTIONAL_INT_COLUMNS:
        value = row.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise AuditDataError(f"{where}: {key} must be a non-negative int or null, got {value!r}")
    if not isinstance(row["patches"], list):
        raise AuditDataError(f"{where}: patches must be a list, got {type(row['patches']).__name__}")
    for p_index, patch in enumerate(row["patches"]):
        if not isinstance(patch, Mapping) or not isinstance(patch.get("name"), str):
            raise AuditDataError(f"{where}: patches[{p_index}] must be a dict with a string 'name'")
    clean = {key: row.get(key) for key in SCALAR_COLUMNS}
    clean["patches"] = [{key: patch.get(key) for key in PATCH_KEYS} for patch in row["patches"]]
    try:
        json.dumps(clean)
    except (TypeError, ValueError) as exc:
        raise AuditDataError(f"{where} is not JSON-serialisable: {exc}") from None
    return clean


def _check_run(run: Any) -> dict[str, Any]:
    if not isinstance(run, Mapping):
        raise AuditDataError(f"run metadata is a {type(run).__name__}, expected a dict")
    missing = [key for key in RUN_KEYS if key not in run]
    if missing:
        raise AuditDataError(f"run metadata is missing field(s): {', '.join(missing)}")
    if not isinstance(run["run_id"], str) or not run["run_id"]:
        raise AuditDataError("run metadata: run_id must be a non-empty string")
    if not isinstance(run["params"], Mapping):
        raise AuditDataError("run metadata: params must be a dict")
    clean = dict(run)
    clean["params"] = redact_mapping(run["params"])  # user input, in every report (I6)
    try:
        json.dumps(clean)
    except (TypeError, ValueError) as exc:
        raise AuditDataError(f"run metadata is not JSON-serialisable: {exc}") from None
    return clean


def summarize(rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals of a run. ``by_state`` always lists every state of the closed set, zero included,
    and ``by_maintenance`` every value of the maintenance column.

    A state outside the closed set is still counted (under its own key) so the totals stay
    true to the rows; validation then flags it.
    """
    zero = {state.value: 0 for state in ServerState}
    by_state: Counter[str] = Counter()
    by_maintenance: Counter[str] = Counter({result.value: 0 for result in MaintenanceResult})
    by_family: dict[str, Counter[str]] = {}
    by_dc: dict[str, Counter[str]] = {}
    totals = {"total": 0, "attempted": 0, "patches_installed": 0, "patches_failed": 0}
    reboots: int | None = None  # None: no row reports reboots (the patching service does not)
    for row in rows:
        state = str(row["state"])
        totals["total"] += 1
        totals["attempted"] += state in ATTEMPTED_STATES
        for key in ("patches_installed", "patches_failed"):
            totals[key] += int(row[key])
        if row.get("reboots") is not None:
            reboots = (reboots or 0) + int(row["reboots"])
        by_state[state] += 1
        by_maintenance[str(row["maintenance"])] += 1
        by_family.setdefault(str(row["os_family"]), Counter())[state] += 1
        by_dc.setdefault(str(row["data_center"]), Counter())[state] += 1

    def full(counter: Counter[str]) -> dict[str, int]:
        return {**zero, **dict(sorted(counter.items()))}

    return {
        "total": totals["total"],
        "by_state": full(by_state),
        "by_os_family": {key: full(by_family[key]) for key in sorted(by_family)},
        "by_data_center": {key: full(by_dc[key]) for key in sorted(by_dc)},
        "by_maintenance": dict(by_maintenance),
        "attempted": totals["attempted"],
        "patches_installed": totals["patches_installed"],
        "patches_failed": totals["patches_failed"],
        "reboots": reboots,
    }


def build_audit_document(rows: Iterable[Mapping[str, Any]], run: Mapping[str, Any]) -> dict[str, Any]:
    """The ``audit.json`` document: schema version, run metadata, summary, rows by server_id."""
    clean_rows = [_check_row(index, row) for index, row in enumerate(rows)]
    clean_rows.sort(key=lambda row: row["server_id"])
    return {
        "schema_version": SCHEMA_VERSION,
        "run": _check_run(run),
        "summary": summarize(clean_rows),
        "servers": clean_rows,
    }


def csv_safe(value: Any) -> str:
    """A cell value that spreadsheets will not execute.

    Text starting with ``= + - @`` (or tab/CR) is prefixed with ``'`` - the OWASP advice
    against CSV/formula injection. Control characters are made visible
    (:func:`~include.text_safety.visible_text`). Numbers are written as numbers,
    ``None`` as an empty cell. The original value stays untouched in ``audit.json``.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = visible_text(str(value))
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def audit_csv(document: Mapping[str, Any]) -> str:
    """``audit.csv``: one RFC 4180 line per server, CRLF line ends, every field guarded by
    :func:`csv_safe`; ``patch_names`` joins the patch names with ``;``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in document["servers"]:
        names = ";".join(str(patch["name"]) for patch in row["patches"])
        writer.writerow([csv_safe(row[key]) for key in SCALAR_COLUMNS] + [csv_safe(names)])
    return buffer.getvalue()
