"""
### snapshot_cleanup — delete the snapshots patchflow took and no longer needs

`patch_fleet` with `snapshot` on snapshots each server before patching and deletes that snapshot
itself once the server ended patched, unless `snapshot_keep`. A run that dies (worker killed,
task failed for good) may leave one behind. Once a day this DAG reads every run's rollout ledger
and deletes such leftovers: a delete that was requested but never confirmed, or a snapshot the run
confirmed and never settled while its `snapshot_keep` was off.

It never deletes anything a ledger does not name as the run's own snapshot (by id *and* name, as
the server lists it now): an owner's snapshot, one a person took since, the snapshot of a server
that failed or was reverted (someone may need it), or anything of a run touched within the last
`snapshot_cleanup_grace` (two days, `include/patching/tuning.py`). A createSnapshot whose answer was
lost and never confirmed is only reported: telling it from an owner's later snapshot would need
comparing clocks.

**The platform's expiry is the backstop**: every snapshot patchflow takes expires after
`snapshot_expiration_days` (1-10), whatever this DAG does or misses.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, task

from patchflow.tuning import task_defaults

CLC_CONN_ID = "clc_default"

with DAG(
    dag_id="snapshot_cleanup",
    description="Delete snapshots patchflow runs took and no longer need (expiry is the backstop)",
    doc_md=__doc__,
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["patching", "clc"],
    default_args=task_defaults("platform-ops"),
) as dag:

    @task
    def delete_leftover_snapshots() -> dict:
        """Sweep every run ledger; delete only this run's own, unneeded snapshots."""
        from patchflow.tasks import snapshot_cleanup

        return snapshot_cleanup(conn_id=CLC_CONN_ID)

    delete_leftover_snapshots()
