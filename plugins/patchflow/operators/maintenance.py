"""``ReleaseMaintenanceOperator``: take every server this run put into maintenance out again (I2).

Meant as a teardown / ``trigger_rule="all_done"`` task per package. It reads the rollout
ledger, checks each run-owned server (``maintenance`` = ``ours`` or ``requested``) live and
stops maintenance for those still in it. Servers that were in maintenance before the run
(``preexisting``) and servers outside the ledger are never touched. Idempotent: a second run
finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from include.patching import api_shapes as shapes
from include.patching.chaos import CRASH_AFTER_STOP_MAINTENANCE, crash_point
from include.patching.clc_errors import ClcApiError, ClcError
from include.patching.rollout_state import Ledger, ledger_path
from patchflow.operators.rollout import resolve_run_folder


class ReleaseMaintenanceOperator(BaseOperator):
    """Stop maintenance mode for the servers the package's rollout switched it on for.

    :param plan_path: the run's plan artifact (locates the run folder, as for the rollout).
    :param package_key: whose ledger to read.
    :param artifacts_base: same as ``PatchRolloutOperator.artifacts_base``.
    """

    template_fields: Sequence[str] = ("plan_path", "package_key", "artifacts_base")
    ui_color = "#fde2c8"

    def __init__(
        self,
        *,
        plan_path: str,
        package_key: str,
        clc_conn_id: str = "clc_default",
        artifacts_base: str | None = None,
        job_timeout: float = 600.0,
        job_poll_interval: float = 2.0,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.plan_path = plan_path
        self.package_key = package_key
        self.clc_conn_id = clc_conn_id
        self.artifacts_base = artifacts_base
        self.job_timeout = job_timeout
        self.job_poll_interval = job_poll_interval

    def _hook(self) -> Any:
        from patchflow.hooks.clc import ClcHook

        return ClcHook(self.clc_conn_id)

    def execute(self, context: Any) -> dict[str, Any]:
        folder = resolve_run_folder(self.plan_path, self.artifacts_base, context)
        path = ledger_path(folder, self.package_key)
        if not path.exists():
            self.log.info("no rollout ledger at %s: this run put no server into maintenance", path)
            return {"released": [], "already_off": [], "failed": []}
        ledger = Ledger.load(path)
        owned = ledger.run_owned_maintenance()
        kept = [s for s, e in ledger.ordered() if e["maintenance"] == "preexisting"]
        if kept:
            self.log.info(
                "leaving %d server(s) in maintenance: they were before the run (%s)",
                len(kept),
                ", ".join(kept),
            )
        hook, alias = self._hook(), ledger.alias
        still_on, already_off, failed = [], [], []
        for sid in owned:
            try:
                on = shapes.in_maintenance(hook.get_server(alias, sid))
            except ClcApiError as exc:
                if exc.status == 404:
                    already_off.append(sid)  # server gone: nothing left to release
                    continue
                raise
            (still_on if on else already_off).append(sid)
        for sid in already_off:
            ledger.servers[sid]["maintenance_released"] = True
        if still_on:
            try:
                items = {i.server: i for i in hook.stop_maintenance(alias, still_on)}
            except ClcError:
                ledger.save()
                raise
            crash_point(CRASH_AFTER_STOP_MAINTENANCE)  # resilience tests only
            jobs: dict[str, list[str]] = {}
            for sid in still_on:
                item = items.get(sid)
                if item is not None and item.queued:
                    jobs.setdefault(item.job_id, []).append(sid)
                elif item is not None and not item.error:
                    ledger.servers[sid]["maintenance_released"] = True
                else:
                    failed.append(sid)
            for job_id, members in jobs.items():
                status = hook.wait_for_job(
                    alias, job_id, timeout=self.job_timeout, interval=self.job_poll_interval
                )
                for sid in members:
                    if status == shapes.QUEUE_SUCCEEDED:
                        ledger.servers[sid]["maintenance_released"] = True
                    else:
                        failed.append(sid)
        ledger.save()
        released = [s for s in still_on if s not in failed]
        self.log.info(
            "maintenance released for %d server(s) (%s); already off: %d; failed: %d",
            len(released),
            ", ".join(released) or "-",
            len(already_off),
            len(failed),
        )
        if failed:
            raise ClcError(f"maintenance could not be released for: {', '.join(sorted(failed))}")
        return {"released": released, "already_off": already_off, "failed": failed}
