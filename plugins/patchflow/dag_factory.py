"""The patch DAG's form and tasks, built once for ``patch_fleet`` and for every ring DAG.

``dags/patch_fleet.py`` (the manual whole-fleet DAG) and ``dags/patch_rings.py`` (one DAG per
ring of ``include/rings.yaml``) call :func:`add_patch_tasks` inside their ``with DAG(...)``
block, so a ring runs exactly patch_fleet's tasks with exactly its code. A ring adds only:

- ``ring_gate`` first, when the ring ``requires`` an earlier one (``patchflow.ring_tasks``);
- its name and patch cycle in the run's settings (so the audit records them);
- the window: a scheduled run's window end is its data interval's end
  (``PatchTuesdayTimetable``). patch_fleet's cron schedule has a zero-length interval, so its
  scheduled runs keep having no window, as before.

Nothing here runs at parse time beyond building Param objects and operators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import DAG, Label, Param, TaskGroup, TriggerRule, task

from include.assets import PATCH_AUDIT
from include.patching.packages import PACKAGES
from include.patching.rings import Ring
from include.patching.run_params import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from patchflow import form
from patchflow.operators.approval import CanaryApprovalOperator
from patchflow.operators.maintenance import ReleaseMaintenanceOperator
from patchflow.operators.rollout import PatchRolloutOperator
from patchflow.tuning import default_deferrable

CLC_CONN_ID = "clc_default"


def form_params(defaults: Mapping[str, Any] | None = None) -> dict[str, Param]:
    """The trigger form; ``defaults`` (a ring's scope and rollout settings) replace the defaults.

    The schema below fixes only each value's JSON type (the form needs it to draw the field) and
    nothing else: Airflow reports a schema failure as raw JSON-schema text, and only for the first
    bad parameter. preflight checks every rule instead and names every bad value at once, in words.
    Every type includes "null": Airflow's form marks a field required (red asterisk) unless its
    type list holds "null", and every parameter here is optional (preflight gives an empty one its
    default).
    """
    params = {
        "account_alias": form.account_alias(
            "CLC account alias to patch (2-4 letters or digits). Empty: the connection's alias."
        ),
        "data_centers": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Data centers",
            description="Only these data centers (e.g. VA1), one per line. Empty: all. Each must exist.",
            section="Scope",
        ),
        "groups": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Groups",
            description=(
                "Only servers in these groups and their sub-groups, one per line. Empty: all. A group is "
                "named by its 32-character id or by its own whole name (every group of that name, in any "
                "data center); a name is never split at '/', so 'Prod' selects the groups named Prod but "
                "not a group named 'Finance/Prod', which is selected by writing 'Finance/Prod'. "
                "Each entry must exist."
            ),
            section="Scope",
        ),
        "server_allow_list": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Server allow-list",
            description="If not empty, only these server ids. Each must be a server of the alias.",
            section="Scope",
        ),
        "server_deny_list": Param(
            [],
            type=["null", "array"],
            items={"type": "string"},
            title="Server deny-list",
            description="Never these server ids. Each must be a server of the alias (a typo is an error).",
            section="Scope",
        ),
        "custom_fields": Param(
            {},
            type=["null", "object"],
            title="Custom fields",
            description=(
                "Only servers whose CLC custom fields hold these values, as a JSON object of field name to "
                'a value or a list of values, e.g. {"Environment": ["staging", "qa"]}. A server must match '
                "every named field; names and values are compared ignoring case and surrounding spaces. "
                "Empty: no filter. Each field must be a custom field of some server of the alias."
            ),
            section="Scope",
        ),
        "dry_run": Param(
            False,
            type=["null", "boolean"],
            title="Dry run",
            description="Inventory, classification and audit only: nothing is touched.",
        ),
        "patch_debug_mode": form.patch_debug_mode(section="Patching"),
        "maintenance_mode": form.maintenance_mode(section="Patching"),
        "max_concurrency": Param(
            DEFAULT_MAX_CONCURRENCY,
            type=["null", "string", "integer"],
            examples=["50", "10%"],
            title="Max concurrency",
            description=(
                "Servers patched at once across all packages: a count (50, at least 1) or a percentage "
                "(10%) of all the servers to patch. Each package gets a share in proportion to the work "
                "it has left (its servers still to patch, times how long its servers have taken so far); "
                "the last package still patching may use them all."
            ),
            section="Rate control",
        ),
        "max_errors": Param(
            DEFAULT_MAX_ERRORS,
            type=["null", "string", "integer"],
            examples=["0", "5", "10%"],
            title="Max errors",
            description=(
                "Failures tolerated across all packages before no further server is started: a count "
                "(0 or more) or a percentage of all the servers to patch."
            ),
            section="Rate control",
        ),
        "server_timeout_minutes": form.server_timeout_minutes(section="Rate control"),
        "deferrable": Param(
            default_deferrable(),
            type=["null", "boolean"],
            title="Wait in the triggerer (deferrable)",
            description=(
                "Off: each package rollout keeps one worker slot for its whole duration, polls itself "
                "and refills a freed slot at once (the shorter run). On: it waits in the triggerer and "
                "holds no worker slot while servers patch, but every refill of a freed slot costs a "
                "round trip through the scheduler (seconds). Default: the deployment's "
                "[operators] default_deferrable, off unless set."
            ),
            section="Rate control",
        ),
        **form.staged_rollout(section="Staged rollout"),
        **form.snapshot_params(section="Safety net"),
        "window_end": Param(
            None,
            type=["null", "string"],
            title="Window end",
            description=(
                "End of the maintenance window, ISO 8601 with its offset (2026-12-16T02:00:00+01:00). "
                "No server is started when less than the cutoff remains; servers already patching "
                "finish. Empty: no window (a scheduled ring run uses its own window)."
            ),
            section="Maintenance window",
        ),
        "window_cutoff_minutes": Param(
            None,
            type=["null", "integer", "number"],
            title="Window cutoff (minutes)",
            description="Start no server when less than this remains of the window. Empty: 30 minutes.",
            section="Maintenance window",
        ),
    }
    for name, value in (defaults or {}).items():
        params[name] = Param(value, description=params[name].description, **params[name].schema)
    return params


def add_patch_tasks(dag: DAG, *, notify_to: str, ring: Ring | None = None) -> None:
    """patch_fleet's tasks, inside ``with dag:``; a ring adds its gate and its cycle (module docstring)."""
    ring_name = ring.name if ring else None
    calendar = ring.calendar if ring else None

    @task(multiple_outputs=True)
    def preflight(params: dict | None = None, **context) -> dict:
        """Validate the form's values and the credentials before anything is touched."""
        from patchflow.ring_tasks import run_settings

        return run_settings(
            params or {}, conn_id=CLC_CONN_ID, context=context, ring=ring_name, calendar=calendar
        )

    @task
    def inventory(settings: dict, run_id: str | None = None) -> dict:
        """Every server in scope, stored as an artifact; XCom gets its path and counts."""
        from patchflow.tasks import inventory as run_inventory

        return run_inventory(settings, conn_id=CLC_CONN_ID, dag_id=dag.dag_id, run_id=str(run_id))

    @task(multiple_outputs=True)
    def classify(settings: dict, inventory_ref: dict, run_id: str | None = None) -> dict:
        """One plan per server: a package, or a skip with its reason."""
        from patchflow.tasks import classify_servers

        return classify_servers(settings, inventory_ref, dag_id=dag.dag_id, run_id=str(run_id))

    @task.branch
    def choose_packages(plan_ref: dict) -> list[str]:
        """Follow only the package paths that have servers to patch; always audit."""
        counts = plan_ref["to_patch"]
        return [f"patch_{p.key}.rollout" for p in PACKAGES if counts.get(p.key)] + ["audit"]

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[PATCH_AUDIT])
    def audit(plan_ref: dict | None, outlet_events=None, **context) -> dict:
        """One row per inventoried server; evidence pack; Great Expectations; asset event."""
        from patchflow.tasks import audit as run_audit

        return run_audit(plan_ref, context=context, outlet_events=outlet_events, asset=PATCH_AUDIT)

    @task
    def notify(audit_ref: dict, **context) -> str:
        """E-mail the run summary and the report location ([patchflow] notify_to)."""
        from patchflow.tasks import notify as run_notify

        return run_notify(audit_ref, context=context, recipients=notify_to)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def run_verdict() -> None:
        """Fail the run when a task it watches failed (Airflow's "watcher" pattern).

        The audit and the maintenance release run whatever happens, so a failed rollout would
        otherwise hide behind their success; skipped (so the run succeeds) when nothing failed.
        """
        from patchflow.tasks import fail_run

        fail_run("a rollout or the audit failed: see that task's log")

    # TaskFlow calls return XComArgs that stand for the values: typed Any for the wiring below
    settings: Any = preflight()
    if ring is not None and ring.requires:
        required = ring.requires

        @task.short_circuit(ignore_downstream_trigger_rules=True)
        def ring_gate(**context) -> bool:
            """Start only if the required ring's run of this patch cycle ended without failed servers."""
            from patchflow.ring_tasks import ring_gate as check_gate

            return check_gate(ring_name=str(ring_name), requires=required, calendar=calendar, context=context)

        ring_gate() >> settings
    inventory_ref: Any = inventory(settings)
    plan: Any = classify(settings, inventory_ref)
    branch = choose_packages(plan)
    report: Any = audit(plan)
    report >> notify(report)
    verdict = run_verdict()

    staged = {
        "waves": settings["waves"],
        "max_per_cluster": settings["max_per_cluster"],
        "cluster_by": settings["cluster_by"],
        "health_check": settings["health_check"],
        "health_probe": settings["health_probe"],
    }
    for package in PACKAGES:
        with TaskGroup(group_id=f"patch_{package.key}", tooltip=package.title) as group:
            # the same rollout settings for the first stage and for the rest (staged rollouts)
            rollout_args: dict[str, Any] = dict(
                clc_conn_id=CLC_CONN_ID,
                package_key=package.key,
                plan_path=plan["plan_path"],
                alias=settings["account_alias"],
                max_concurrency=settings["max_concurrency"],
                max_errors=settings["max_errors"],
                server_timeout=settings["server_timeout_seconds"],
                maintenance_mode=settings["maintenance_mode"],
                patch_debug_mode=settings["patch_debug_mode"],
                window_end=settings["window_end"],
                window_cutoff_minutes=settings["window_cutoff_minutes"],
                snapshot=settings["snapshot"],
                snapshot_expiration_days=settings["snapshot_expiration_days"],
                snapshot_keep=settings["snapshot_keep"],
                revert_on_failure=settings["revert_on_failure"],
                deferrable=settings["deferrable"],
                **staged,
            )
            rollout = PatchRolloutOperator(
                task_id="rollout", pause_after_first_stage=settings["approval"], **rollout_args
            )
            # staged rollouts: a person approves the rest after the first stage (answers at once
            # when the run asks for no approval), then the same ledger is continued
            approve = CanaryApprovalOperator(
                task_id="approve",
                plan_path=plan["plan_path"],
                package_key=package.key,
                required=settings["approval"],
                timeout_minutes=settings["approval_timeout_minutes"],
            )
            rollout_rest = PatchRolloutOperator(
                task_id="rollout_rest", approval_task_id=f"patch_{package.key}.approve", **rollout_args
            )
            release = ReleaseMaintenanceOperator(
                task_id="release_maintenance",
                clc_conn_id=CLC_CONN_ID,
                package_key=package.key,
                plan_path=plan["plan_path"],
                trigger_rule=TriggerRule.NONE_SKIPPED,
            )
            rollout >> approve >> rollout_rest >> release
        branch >> Label(package.title) >> group >> report
        [rollout, rollout_rest, release] >> verdict
    branch >> Label("audit only") >> report
    report >> verdict


def add_notice_tasks(dag: DAG, *, ring: Ring, recipients: str) -> None:
    """A ring's heads-up DAG, inside ``with dag:``: a dry-run plan of its scope, then the mail."""

    @task
    def plan_ahead(params: dict | None = None, run_id: str | None = None) -> dict:
        """What the ring's next window would patch: preflight, inventory and classify as a dry run."""
        from patchflow.ring_tasks import plan_ahead as make_plan

        return make_plan(params or {}, conn_id=CLC_CONN_ID, dag_id=dag.dag_id, run_id=str(run_id))

    @task
    def heads_up(plan_ref: dict, **context) -> str:
        """Mail the plan to the ring's recipients (``notify.to``, else ``[patchflow] notify_to``)."""
        from patchflow.ring_tasks import send_heads_up

        return send_heads_up(plan_ref, ring=ring, recipients=recipients, context=context)

    planned: Any = plan_ahead()
    heads_up(planned)
