"""
### example_patch_group — patch one group with the building blocks, with audit evidence

An example of patchflow's reusable blocks in a DAG of your own (docs/operators.md): trigger it by
hand with a group and a package.

1. **execute_package** (`ExecutePackageOperator`) selects the group's servers (sub-groups
   included), skips those the package cannot patch (stopped, template, another OS), puts the rest
   into maintenance mode and sends Execute Package once — never twice, also across retries.
2. **wait_for_patching** (`PatchExecutionSensor`, deferred to the triggerer) waits for each
   server's patching execution, judges each patch by its last attempt and switches maintenance off
   as each server ends; it fails when a server was not patched.
3. **release_maintenance** always runs and takes every server still in maintenance out again.
4. **audit** seals an evidence pack for the group's servers in the same format as `patch_fleet`'s
   (JSON, CSV, HTML, validation, manifest chain); **run_verdict** fails the run if a step failed.
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, TriggerRule, task

from include.assets import PATCH_AUDIT
from include.patching.packages import PACKAGES
from include.patching.run_params import DEFAULT_SERVER_TIMEOUT_MINUTES
from patchflow import form
from patchflow.operators.execute_package import ExecutePackageOperator
from patchflow.operators.maintenance import ReleaseMaintenanceOperator
from patchflow.sensors.patch_execution import PatchExecutionSensor
from patchflow.tuning import task_defaults

CLC_CONN_ID = "clc_default"

params = {
    "group": Param(
        None,
        type=["null", "string"],
        title="Group",
        description="The group to patch, by its id or its own whole name; its sub-groups come with it.",
    ),
    "package": Param(
        PACKAGES[0].key,
        type="string",
        examples=[p.key for p in PACKAGES],
        title="Package",
        description="A package key ("
        + ", ".join(f"{p.key}: {p.title}" for p in PACKAGES)
        + ") or a package id.",
    ),
    "account_alias": form.account_alias("Empty: the connection's alias."),
    "maintenance_mode": form.maintenance_mode(),
    "patch_debug_mode": form.patch_debug_mode(),
    "server_timeout_minutes": form.server_timeout_minutes(),
}

with DAG(
    dag_id="example_patch_group",
    description="Patch one group with ExecutePackageOperator and PatchExecutionSensor, with audit evidence",
    doc_md=__doc__,
    schedule=None,
    catchup=False,
    params=params,
    render_template_as_native_obj=True,
    tags=["patching", "clc"],
    default_args=task_defaults("platform-ops"),
) as dag:
    execute = ExecutePackageOperator(
        task_id="execute_package",
        clc_conn_id=CLC_CONN_ID,
        group="{{ params.group }}",
        package="{{ params.package }}",
        alias="{{ params.account_alias }}",
        parameters="{{ {'patch.debug.mode': 'true'} if params.patch_debug_mode else {} }}",
        # an emptied form field is null: its default then (the form's types all allow null)
        maintenance_mode="{{ params.maintenance_mode is not false }}",
        server_timeout=f"{{{{ (params.server_timeout_minutes or {DEFAULT_SERVER_TIMEOUT_MINUTES}) * 60 }}}}",
    )
    wait = PatchExecutionSensor(
        task_id="wait_for_patching", clc_conn_id=CLC_CONN_ID, executions=execute.output
    )
    release = ReleaseMaintenanceOperator(
        task_id="release_maintenance",
        clc_conn_id=CLC_CONN_ID,
        plan_path=execute.output["plan_path"],
        package_key=execute.output["package_key"],
        trigger_rule=TriggerRule.ALL_DONE,
    )

    @task(trigger_rule=TriggerRule.ALL_DONE, outlets=[PATCH_AUDIT])
    def audit(executions: dict | None, outlet_events=None, **context) -> dict:
        """One row per server of the group, in patch_fleet's evidence format; asset event."""
        from patchflow.tasks import audit as run_audit

        plan = {"plan_path": executions["plan_path"]} if executions else None
        return run_audit(plan, context=context, outlet_events=outlet_events, asset=PATCH_AUDIT)

    @task(trigger_rule=TriggerRule.ONE_FAILED)
    def run_verdict() -> None:
        """Fail the run when a step failed: the release and the audit run anyway and would hide it."""
        from patchflow.tasks import fail_run

        fail_run("a step of the group's patching failed: see that task's log")

    report = audit(execute.output)
    execute >> wait >> release >> report
    [execute, wait, release, report] >> run_verdict()
