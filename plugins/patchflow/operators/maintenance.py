"""``ReleaseMaintenanceOperator``: take every server this run put into maintenance out again (I2).

Meant as a teardown / ``trigger_rule="all_done"`` task per package. Airflow wiring only: it
locates the run's rollout ledger and hands it to ``include.patching.maintenance.MaintenanceRelease``
(the rules: wait for outstanding maintenance-on jobs, check each run-owned server live, switch
off and record the outcome per server). The ledger is saved — the audit reads the outcomes —
*before* the task fails for any server it could not release or could not decide about.

Servers that were in maintenance before the run (``preexisting``) and servers outside the
ledger are never touched. Idempotent: a second run finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from include.clc.errors import ClcError
from include.patching.maintenance import MaintenanceRelease, ReleaseReport
from include.patching.rollout_state import Ledger, ledger_path
from patchflow.exceptions import clc_failures_explained
from patchflow.locations import resolve_run_folder
from patchflow.tuning import setting as tuning
from patchflow.tuning import size

#: What a rendered plan path looks like when the task that writes the plan never ran.
NO_PLAN_VALUES = frozenset({"", "None", "null"})

__all__ = ["NO_PLAN_VALUES", "ReleaseMaintenanceOperator", "ReleaseReport"]


class ReleaseMaintenanceOperator(BaseOperator):
    """Stop maintenance mode for the servers the package's rollout switched it on for.

    :param plan_path: the run's plan artifact (locates the run folder, as for the rollout).
    :param package_key: whose ledger to read.
    :param artifacts_base: same as ``PatchRolloutOperator.artifacts_base``.
    :param job_timeout: seconds to wait for the outstanding maintenance-on jobs, and again for
        the stopMaintenance jobs; default ``[patchflow] maintenance_timeout`` (scaled with the
        rollout's other timings).
    :param job_poll_interval: default ``[patchflow] job_poll_interval``.
    :param request_chunk: servers per stopMaintenance request, the requests sent at once
        (default ``[patchflow] request_chunk``, as for the rollout).
    """

    template_fields: Sequence[str] = ("plan_path", "package_key", "artifacts_base")
    ui_color = "#fde2c8"

    def __init__(
        self,
        *,
        plan_path: str | None,
        package_key: str,
        clc_conn_id: str = "clc_default",
        artifacts_base: str | None = None,
        job_timeout: float | None = None,
        job_poll_interval: float | None = None,
        request_chunk: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.plan_path = plan_path
        self.package_key = package_key
        self.clc_conn_id = clc_conn_id
        self.artifacts_base = artifacts_base
        # timing defaults from the deployment's tuning (scaled by [patchflow] time_scale)
        self.job_timeout = tuning("release_job_timeout", job_timeout)
        self.job_poll_interval = tuning("job_poll_interval", job_poll_interval)
        self.request_chunk = size("request_chunk", request_chunk)

    def _hook(self) -> Any:
        from patchflow.hooks.clc import ClcHook

        return ClcHook(self.clc_conn_id)

    def _no_plan(self) -> bool:
        """The plan path renders to None when the classify task never ran (an upstream failed)."""
        return not self.artifacts_base and (
            self.plan_path is None or str(self.plan_path).strip() in NO_PLAN_VALUES
        )

    def execute(self, context: Any) -> dict[str, list[str]]:
        with clc_failures_explained(self.clc_conn_id):  # a refused login is not retried
            return self._release_all(context)

    def _release_all(self, context: Any) -> dict[str, list[str]]:
        if self._no_plan():
            self.log.info("no plan: this run put no server into maintenance (the plan was never written)")
            return ReleaseReport().as_xcom()
        folder = resolve_run_folder(str(self.plan_path), self.artifacts_base, context)
        path = ledger_path(folder, self.package_key)
        if not path.exists():
            self.log.info("no rollout ledger at %s: this run put no server into maintenance", path)
            return ReleaseReport().as_xcom()
        ledger = Ledger.load(path)
        hook = self._hook()
        if ledger.run_owned_maintenance():
            hook.authenticate()  # a refused login fails here, before any per-server bookkeeping
        release = MaintenanceRelease(
            hook,
            ledger,
            job_timeout=self.job_timeout,
            job_poll_interval=self.job_poll_interval,
            chunk_size=self.request_chunk,
            logger=self.log,
        )
        try:
            report = release.run()
        finally:
            ledger.save()  # the audit (all_done) reads the outcomes, also when this task fails
        self._log_report(report)
        if report.problems:
            listed = "; ".join(f"{sid}: {note}" for sid, note in sorted(report.problems.items()))
            raise ClcError(f"maintenance could not be released for: {listed}")
        return report.as_xcom()

    def _log_report(self, report: ReleaseReport) -> None:
        self.log.info(
            "maintenance released for %d server(s) (%s); already off: %d; not released: %d",
            len(report.released),
            ", ".join(report.released) or "-",
            len(report.already_off),
            len(report.problems),
        )
        for sid, note in sorted(report.problems.items()):
            self.log.error("%s left in maintenance (or possibly): %s", sid, note)
