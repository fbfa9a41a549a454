"""
### patch_fleet — patch a CLC fleet through Patching-as-a-Service, with audit evidence

One run, step by step:

1. **preflight** logs in and checks the trigger form's values and the scope against the alias:
   every bad value, and every data center, group or server id that does not exist, is named at
   once, before anything is touched.
2. **inventory** reads every server in scope with the fewest API calls (one detailed, recursive
   group read per data center) and stores it as a run artifact; XCom carries only its path.
3. **classify** gives each server one plan: a patch package, or a skip with its reason
   (unsupported OS, not running, template, filtered out, dry run).
4. **choose_packages** follows only the package paths that have servers, plus the audit.
5. **patch_&lt;package&gt;.rollout** patches in a sliding window under `max_concurrency` and stops
   starting servers once `max_errors` is exceeded: maintenance on → Execute Package (sent from
   the worker) → deferred wait for the queue job and then the patching execution → per-patch
   detail → maintenance off. **release_maintenance** always runs afterwards and takes every
   server this run put into maintenance out again.
6. **audit** writes one row per inventoried server (JSON, CSV, HTML, validation, manifest),
   validates it with Great Expectations and publishes the `patch_audit` asset.

Trigger it from the form with `dry_run` on to see what would happen without touching anything.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronTriggerTimetable, Label, Param, TaskGroup, TriggerRule, conf, task

from include.assets import PATCH_AUDIT
from include.patching.packages import PACKAGES
from include.patching.run_params import DEFAULT_MAX_CONCURRENCY, DEFAULT_MAX_ERRORS
from patchflow import form
from patchflow.notifiers import PatchRunNotifier
from patchflow.operators.maintenance import ReleaseMaintenanceOperator
from patchflow.operators.rollout import PatchRolloutOperator
from patchflow.tuning import task_defaults

CLC_CONN_ID = "clc_default"

# The schema below fixes only each value's JSON type (the form needs it to draw the field) and
# nothing else: Airflow reports a schema failure as raw JSON-schema text, and only for the first
# bad parameter. preflight checks every rule instead and names every bad value at once, in words.
# Every type includes "null": Airflow's form marks a field required (red asterisk) unless its type
# list holds "null", and every parameter here is optional (preflight gives an empty one its default).
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
            "(10%) of all the servers to patch. Each package gets a share in proportion to the work it has "
            "left (its servers still to patch, times how long its servers have taken so far); the last "
            "package still patching may use them all."
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
        True,
        type=["null", "boolean"],
        title="Wait in the triggerer (deferrable)",
        description=(
            "On: each package rollout waits for its servers in the triggerer and holds no worker slot "
            "while they patch, but every refill of a freed slot costs a round trip through the scheduler "
            "(seconds). Off: each rollout keeps one worker slot for its whole duration, polls itself "
            "and refills a freed slot at once (a shorter run)."
        ),
        section="Rate control",
    ),
}

NOTIFY_TO = conf.get("patchflow", "notify_to", fallback="")
with DAG(
    dag_id="patch_fleet",
    description="Patch CLC servers through Patching-as-a-Service and write the audit evidence",
    doc_md=__doc__,
    # Second Tuesday of the month, 03:00 UTC ("2#2": day-of-month and day-of-week ranges are OR-ed
    # in cron, so "8-14 * 2" would fire every Tuesday). No start_date on purpose: with one in the
    # past, unpausing the DAG would patch the whole fleet at once for the last missed Patch Tuesday.
    schedule=CronTriggerTimetable("0 3 * * 2#2", timezone="UTC"),
    catchup=False,
    max_active_runs=1,
    params=params,
    tags=["patching", "clc"],
    default_args=task_defaults("platform-ops"),
    on_failure_callback=[PatchRunNotifier(to=NOTIFY_TO, failed=True)] if NOTIFY_TO else [],
) as dag:

    @task(multiple_outputs=True)
    def preflight(params: dict | None = None) -> dict:
        """Validate the form's values and the credentials before anything is touched."""
        from patchflow.tasks import preflight as run_preflight

        return run_preflight(params or {}, conn_id=CLC_CONN_ID)

    @task
    def inventory(settings: dict, run_id: str | None = None) -> dict:
        """Every server in scope, stored as an artifact; XCom gets its path and counts."""
        from patchflow.tasks import inventory as run_inventory

        return run_inventory(settings, conn_id=CLC_CONN_ID, dag_id=dag.dag_id, run_id=run_id)

    @task(multiple_outputs=True)
    def classify(settings: dict, inventory_ref: dict, run_id: str | None = None) -> dict:
        """One plan per server: a package, or a skip with its reason."""
        from patchflow.tasks import classify_servers

        return classify_servers(settings, inventory_ref, dag_id=dag.dag_id, run_id=run_id)

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

        return run_notify(audit_ref, context=context, recipients=NOTIFY_TO)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def run_verdict() -> None:
        """Fail the run when a task it watches failed (Airflow's "watcher" pattern).

        The audit and the maintenance release run whatever happens, so a failed rollout would
        otherwise hide behind their success; skipped (so the run succeeds) when nothing failed.
        """
        from patchflow.tasks import fail_run

        fail_run("a rollout or the audit failed: see that task's log")

    settings = preflight()
    plan = classify(settings, inventory(settings))
    branch = choose_packages(plan)
    report = audit(plan)
    report >> notify(report)
    verdict = run_verdict()

    for package in PACKAGES:
        with TaskGroup(group_id=f"patch_{package.key}", tooltip=package.title) as group:
            rollout = PatchRolloutOperator(
                task_id="rollout",
                clc_conn_id=CLC_CONN_ID,
                package_key=package.key,
                plan_path=plan["plan_path"],
                alias=settings["account_alias"],
                max_concurrency=settings["max_concurrency"],
                max_errors=settings["max_errors"],
                server_timeout=settings["server_timeout_seconds"],
                maintenance_mode=settings["maintenance_mode"],
                patch_debug_mode=settings["patch_debug_mode"],
                deferrable=settings["deferrable"],
            )
            release = ReleaseMaintenanceOperator(
                task_id="release_maintenance",
                clc_conn_id=CLC_CONN_ID,
                package_key=package.key,
                plan_path=plan["plan_path"],
                trigger_rule=TriggerRule.NONE_SKIPPED,
            )
            rollout >> release
        branch >> Label(package.title) >> group >> report
        [rollout, release] >> verdict
    branch >> Label("audit only") >> report
    report >> verdict
