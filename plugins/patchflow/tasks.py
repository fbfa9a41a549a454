"""The bodies of patch_fleet's TaskFlow tasks, kept out of the DAG file so it parses fast.

Each function does one step of a run and returns only references and counts for XCom; the
data itself (inventory, plan, results) lives in run artifacts (see ``include.artifacts``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pendulum
from airflow.sdk.exceptions import AirflowFailException

from include.artifacts import read_json, run_folder, write_json
from include.patching import run_params, stage_report
from include.patching.classification import Scope, classify, os_family
from include.patching.clusters import custom_fields
from include.patching.packages import BY_KEY
from include.patching.scope import AliasIndex, scope_problems
from patchflow.exceptions import clc_failures_explained
from patchflow.locations import artifacts_base, as_location, reports_base

log = logging.getLogger(__name__)


def _invalid(problems: Sequence[str]) -> AirflowFailException:
    lines = "\n".join(f"  - {p}" for p in problems)
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    return AirflowFailException(f"Invalid run parameters ({count}); nothing was touched:\n{lines}")


def _alias_index(hook: Any, alias: str, settings: run_params.RunSettings) -> AliasIndex:
    """What exists in the alias: data centers always; groups and servers when the scope names any.

    Reads only: the data-center list, plus one light group tree per data center (servers as
    links, no details) when a group or a server is named — detailed trees when custom fields
    are, since only the servers' details name their fields.
    """
    if not (
        settings.groups or settings.server_allow_list or settings.server_deny_list or settings.custom_fields
    ):
        return AliasIndex.build(alias, [d["id"] for d in hook.list_datacenters(alias)], trees=())
    trees = hook.group_trees(alias, detailed=bool(settings.custom_fields))
    return AliasIndex.build(alias, [dc for dc, _ in trees], trees)


def preflight(params: dict[str, Any], *, conn_id: str) -> dict[str, Any]:
    """Check every parameter and every scope entry against the alias, all at once — touch nothing.

    Fails without retries (``AirflowFailException``) naming every bad value, or when the login
    or the alias is refused.
    """
    from patchflow.hooks.clc import ClcHook

    checked = run_params.check(params)
    if not checked.alias_is_usable():
        raise _invalid(checked.problems)
    settings = checked.settings
    hook = ClcHook(conn_id)
    with clc_failures_explained(conn_id):
        hook.login()
        alias = settings.account_alias or hook.account_alias
        index = _alias_index(hook, alias, settings)  # a 403 here: the alias is outside the user's reach (I5)
    problems = [
        *checked.problems,
        *scope_problems(
            data_centers=settings.data_centers,
            groups=settings.groups,
            allow=settings.server_allow_list,
            deny=settings.server_deny_list,
            index=index,
            fields=settings.custom_fields,
        ),
    ]
    if problems:
        raise _invalid(problems)
    resolved = settings.as_dict() | {
        "account_alias": alias,
        "server_timeout_seconds": settings.server_timeout_minutes * 60,
    }
    log.info("Preflight passed: %s", resolved)
    return resolved


def inventory(settings: dict[str, Any], *, conn_id: str, dag_id: str, run_id: str) -> dict[str, Any]:
    """Every server in scope with its details, written as the run's inventory artifact."""
    from patchflow.hooks.clc import ClcHook

    alias = settings["account_alias"]
    with clc_failures_explained(conn_id):
        servers = ClcHook(conn_id).inventory(alias, data_centers=settings["data_centers"] or None)
    path = run_folder(artifacts_base(), dag_id, run_id) / "inventory.json"
    write_json(path, {"account_alias": alias, "collected_at": _now(), "servers": servers})
    by_dc = Counter(str(s.get("data_center", "")).upper() for s in servers)
    log.info("Inventory: %d servers (%s) -> %s", len(servers), dict(by_dc), path)
    return {"inventory_path": str(path), "servers": len(servers), "by_data_center": dict(by_dc)}


def plan_row(server: dict[str, Any], scope: Scope, *, dry_run: bool) -> dict[str, Any]:
    """One server's plan, with the facts the rollout and the audit need."""
    plan = classify(server, scope, dry_run=dry_run)
    details = server.get("details") or {}
    package = BY_KEY[plan.package_key] if plan.package_key else None
    return {
        "id": str(server["id"]).lower(),
        "name": server.get("name") or str(server["id"]).upper(),
        "description": server.get("description") or "",
        "data_center": str(server.get("data_center") or server.get("locationId") or "").upper(),
        "group_id": server.get("group_id") or server.get("groupId"),
        "group_name": server.get("group_name"),
        "os": server.get("os"),
        "os_type": server.get("osType"),
        "os_family": os_family(server.get("os"), server.get("osType")),
        "status": server.get("status"),
        "power_state": details.get("powerState"),
        "in_maintenance": bool(details.get("inMaintenanceMode")),
        "is_template": bool(server.get("isTemplate")),
        "custom_fields": custom_fields(details),
        "package_key": plan.package_key,
        "package_id": package.package_id if package else None,
        "state": plan.state.value if plan.state else None,
        "reason": plan.reason,
    }


def classify_servers(
    settings: dict[str, Any], inventory_ref: dict[str, Any], *, dag_id: str, run_id: str
) -> dict[str, Any]:
    """Plan every inventoried server and write the plan artifact the rollouts and audit read."""
    inv = read_json(as_location(inventory_ref["inventory_path"]))
    scope = Scope.build(
        groups=settings["groups"],
        allow=settings["server_allow_list"],
        deny=settings["server_deny_list"],
        custom_fields=settings.get("custom_fields"),
    )
    rows = [plan_row(s, scope, dry_run=settings["dry_run"]) for s in inv["servers"]]
    rows.sort(key=lambda r: r["id"])
    path = run_folder(artifacts_base(), dag_id, run_id) / "plan.json"
    document = {"account_alias": settings["account_alias"], "settings": settings, "servers": rows}
    stages = stage_report.preview(rows, settings)  # staged rollouts: shown by a dry run's report
    if stages:
        document["stages"] = stages
    write_json(path, document)
    to_patch = Counter(r["package_key"] for r in rows if r["package_key"] and r["state"] is None)
    by_state = Counter(r["state"] or "to_patch" for r in rows)
    log.info(
        "Plan: %d servers; to patch per package %s; %s -> %s", len(rows), dict(to_patch), dict(by_state), path
    )
    return {
        "plan_path": str(path),
        "servers": len(rows),
        "to_patch": dict(to_patch),
        "by_state": dict(by_state),
    }


def _now() -> str:
    return pendulum.now("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def audit(plan_ref: dict[str, Any] | None, *, context: Any, outlet_events: Any, asset: Any) -> dict[str, Any]:
    """Seal the run's evidence pack (one row per inventoried server), validate it, publish the asset.

    A failed validation is sealed into the pack first (the report shows it), then fails the task.
    """
    from include.patching.audit_rows import build_rows
    from include.patching.packages import PACKAGES
    from include.patching.rollout_state import ledger_path, results_path
    from include.patching.run_outcome import NOTE_MARKER, run_line
    from include.patching.window import merge_window_results
    from include.reporting.audit_document import software_versions
    from include.reporting.evidence_pack import asset_extra, build_evidence_pack, raise_if_invalid
    from include.reporting.validation import AuditValidationError
    from patchflow.run_note import publish as publish_run_note

    if not plan_ref or not plan_ref.get("plan_path"):
        raise AirflowFailException(
            "No plan to audit: the task that writes the plan (classify, execute_package) did not succeed "
            "(see its log)."
        )
    plan_path = as_location(plan_ref["plan_path"])
    plan = read_json(plan_path)
    folder = plan_path.parent
    results, ledgers = {}, {}
    # the registry's packages, and any other one a plan names (ExecutePackageOperator's by id)
    keys = dict.fromkeys(
        [*(p.key for p in PACKAGES), *(r["package_key"] for r in plan["servers"] if r.get("package_key"))]
    )
    for key in keys:
        rpath, lpath = results_path(folder, key), ledger_path(folder, key)
        results[key] = read_json(rpath) if rpath.exists() else None
        ledgers[key] = read_json(lpath) if lpath.exists() else None
    rows = build_rows(plan, results, ledgers)
    dag_run = context["dag_run"]
    settings = plan.get("settings") or {}
    run = {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "run_type": str(getattr(dag_run.run_type, "value", dag_run.run_type)),
        "triggered_by": getattr(dag_run, "triggering_user_name", None),
        "params": settings,
        "started_at": _iso(getattr(dag_run, "start_date", None)) or _now(),
        "ended_at": _now(),
        "account_alias": plan.get("account_alias"),
        "dry_run": bool(settings.get("dry_run")),
        "software": software_versions(),
    }
    window = merge_window_results(results.values())  # maintenance window: not started, overruns
    if window is not None:
        run["window"] = window
    stages = stage_report.summarize(plan, ledgers)  # staged rollouts: plan, gates, halt, approval
    if stages:
        run["stages"] = stages
    pack = build_evidence_pack(reports_base(), rows, run, inventory_count=len(plan["servers"]))
    extra = asset_extra(pack)
    if outlet_events is not None:
        outlet_events[asset].extra = extra
    log.info("Evidence pack %s (%s): %s", pack.path, "new" if pack.created else "already sealed", extra)
    outcome = run_line((row["server_id"], row["state"]) for row in rows)
    publish_run_note(context, outcome, logger=log)
    verdict = "validation passed" if pack.validation_success else "VALIDATION FAILED"
    log.info("Audit: %s; %s; report %s", outcome.removeprefix(NOTE_MARKER).strip(), verdict, pack.report_path)
    try:
        raise_if_invalid(pack)
    except AuditValidationError as exc:
        raise AirflowFailException(f"Audit validation failed; see {pack.report_path}: {exc}") from None
    return extra


def fail_run(message: str) -> None:
    """The body of a run's ``run_verdict`` watcher task: runs only when a watched task failed."""
    raise AirflowFailException(message)


def notify(audit_ref: dict[str, Any] | None, *, context: Any, recipients: str) -> str:
    """E-mail the run summary with the report location to the configured recipients."""
    from patchflow.notifiers import PatchRunNotifier

    if not recipients.strip():
        log.info("No recipients configured ([patchflow] notify_to): no e-mail sent.")
        return "no recipients configured"
    document = None
    report = None
    if audit_ref and audit_ref.get("pack"):
        pack = as_location(audit_ref["pack"])
        document = read_json(pack / "audit.json")
        report = str(pack / "report.html")
    PatchRunNotifier(to=recipients, audit=document, report_location=report).notify(context)
    return f"sent to {recipients}"


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    return pendulum.instance(value).in_timezone("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def snapshot_cleanup(*, conn_id: str) -> dict[str, Any]:
    """Delete the snapshots dead runs left behind (``include.patching.snapshot_cleanup``)."""
    from include.patching.snapshot_cleanup import ledger_files, sweep
    from include.timefmt import utcnow
    from patchflow.hooks.clc import ClcHook
    from patchflow.tuning import current

    timing = current()
    hook = ClcHook(conn_id)
    with clc_failures_explained(conn_id):
        report = sweep(
            hook,
            ledger_files(artifacts_base()),
            now=utcnow(),
            grace=timing.snapshot_cleanup_grace,
            job_timeout=timing.snapshot_timeout,
            poll_interval=timing.job_poll_interval,
            logger=log,
        )
    log.info(
        "snapshot cleanup: %d ledger(s) swept; deleted %d, kept %d (expire on their own), failed %d, "
        "unconfirmed %d (left to expiry)",
        report.ledgers,
        len(report.deleted),
        len(report.kept),
        len(report.failed),
        len(report.unconfirmed),
    )
    return report.as_dict()
