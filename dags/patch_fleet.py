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
   server this run put into maintenance out again. With **waves** the rollout goes stage by stage
   (each stage only after the one before ended and passed its gate: no unhealthy server, budget
   intact), at most `max_per_cluster` servers of a cluster at once, each server optionally
   health-checked after patching; with **approval**, `approve` asks a person after the first stage
   and `rollout_rest` continues (or stops cleanly) from the same ledger.
   With `snapshot` on (section "Safety net"),
   each server is snapshotted after maintenance is on and before the package; a failed server
   is restored to it with `revert_on_failure` (ends `reverted`), and the snapshot is deleted
   after a success unless `snapshot_keep`. An owner's snapshot is never touched.
6. **audit** writes one row per inventoried server (JSON, CSV, HTML, validation, manifest),
   validates it with Great Expectations and publishes the `patch_audit` asset.

Trigger it from the form with `dry_run` on to see what would happen without touching anything.
"""

from __future__ import annotations

from airflow.sdk import DAG, CronTriggerTimetable, conf

from patchflow.dag_factory import add_patch_tasks, form_params
from patchflow.notifiers import PatchRunNotifier
from patchflow.tuning import task_defaults

params = form_params()

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
    # the tasks are shared with the ring DAGs (dags/patch_rings.py): one structure, one code
    add_patch_tasks(dag, notify_to=NOTIFY_TO)
