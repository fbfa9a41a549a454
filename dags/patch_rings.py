"""
### patch_ring_&lt;name&gt; — one ring of the fleet, patched in its own monthly maintenance window

Built from the ring file (`include/rings.yaml`, or the file named by `PATCHFLOW_RINGS`): one DAG
per ring, with exactly patch_fleet's tasks (preflight → inventory → classify → rollouts →
audit → notify), the ring's scope and rollout settings as the form's defaults, and a
`PatchTuesdayTimetable` schedule — the nth weekday of the month + the ring's offset, at a local
time in the ring's time zone, skipping or postponing change freezes. Each run's data interval
is its window: no server is started when less than the ring's cutoff remains before the window
ends; servers already patching finish, and the audit records who ended after the window.

A ring that `requires` an earlier one starts with **ring_gate**: unless the earlier ring's
latest audited run of the same patch cycle ended without failed or timed-out servers, the run
stops there — nothing is touched, every later task is skipped, and the gate's log and the run
note say why. A ring with `notify` also gets `patch_ring_<name>_notice`, which mails what the
ring will patch (a dry-run plan) some hours before the window.

Ring DAGs are created paused: switch a ring on in the UI once its entry is reviewed. An invalid
ring file is an import error here naming every bad value with its ring and field.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, conf

from include.patching.rings import Ring, load_rings, ring_file
from patchflow.dag_factory import add_notice_tasks, add_patch_tasks, form_params
from patchflow.notifiers import PatchRunNotifier
from patchflow.timetables import PatchTuesdayTimetable
from patchflow.tuning import task_defaults

NOTIFY_TO = conf.get("patchflow", "notify_to", fallback="")
# A start_date in the past is harmless here: catchup is off, and the timetable then starts with
# the window open now (for what is left of it) or the next one, never a past window.
START = pendulum.datetime(2026, 1, 1, tz="UTC")


def common(ring: Ring) -> dict:
    """What a ring's DAG and its heads-up DAG share (a function: each DAG gets its own objects)."""
    return {
        "doc_md": __doc__,
        "start_date": START,
        "catchup": False,
        "max_active_runs": 1,
        "params": form_params(ring.run_params()),
        "tags": ["patching", "clc"],
        "default_args": task_defaults("platform-ops"),
        # created paused whatever the deployment's default: a ring starts patching on its own
        # schedule only once someone has switched it on (and never inside a test or demo stack)
        "is_paused_upon_creation": True,
    }


for ring in load_rings(ring_file()):
    with DAG(
        dag_id=ring.dag_id,
        description=f"Ring {ring.name}: {ring.description or ring.calendar.summary()}",
        schedule=PatchTuesdayTimetable(ring.calendar),
        on_failure_callback=[PatchRunNotifier(to=NOTIFY_TO, failed=True)] if NOTIFY_TO else [],
        **common(ring),
    ) as dag:
        add_patch_tasks(dag, notify_to=NOTIFY_TO, ring=ring)
    globals()[ring.dag_id] = dag

    if ring.notify_hours_before:
        recipients = ring.notify_to or NOTIFY_TO
        with DAG(
            dag_id=f"{ring.dag_id}_notice",
            description=f"Heads-up {ring.notify_hours_before} h before ring {ring.name}'s window",
            schedule=PatchTuesdayTimetable(ring.calendar, lead_hours=ring.notify_hours_before),
            **common(ring),
        ) as notice:
            add_notice_tasks(notice, ring=ring, recipients=recipients)
        globals()[notice.dag_id] = notice
