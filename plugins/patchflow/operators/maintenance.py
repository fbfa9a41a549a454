"""``ReleaseMaintenanceOperator``: take every server this run put into maintenance out again (I2).

Meant as a teardown / ``trigger_rule="all_done"`` task per package. It reads the rollout
ledger and, for every server this run may have put into maintenance (``requested``, ``ours``
or ``refused``):

1. waits for every maintenance-on job the ledger recorded and has not seen end (a slow job
   landing after the release would leave the server in maintenance), bounded by ``job_timeout``;
2. checks the server live and stops maintenance for those still in it, waiting for that job;
3. records the outcome per server in the ledger (``maintenance_release`` and
   ``maintenance_note``), which the audit reads, *before* failing the task for any server it
   could not release or could not decide about.

Servers that were in maintenance before the run (``preexisting``) and servers outside the
ledger are never touched. Idempotent: a second run finds nothing left to do.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow.sdk import BaseOperator

from include.clc import shapes
from include.clc.errors import ClcApiError, ClcError
from include.patching.chaos import CRASH_AFTER_STOP_MAINTENANCE, crash_point
from include.patching.rollout import nothing_to_do
from include.patching.rollout_state import (
    Ledger,
    ReleaseOutcome,
    ledger_path,
    maintenance_job_outstanding,
    record_release,
)
from patchflow.exceptions import clc_failures_explained
from patchflow.operators.rollout import resolve_run_folder, tuning

#: What a rendered plan path looks like when the task that writes the plan never ran.
NO_PLAN_VALUES = frozenset({"", "None", "null"})


@dataclass
class ReleaseReport:
    """The release task's per-server findings (XCom: lists of server ids)."""

    released: list[str] = field(default_factory=list)
    already_off: list[str] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)
    """Servers left in (or possibly in) maintenance, with the reason."""

    def as_xcom(self) -> dict[str, list[str]]:
        return {"released": self.released, "already_off": self.already_off, "failed": sorted(self.problems)}


class ReleaseMaintenanceOperator(BaseOperator):
    """Stop maintenance mode for the servers the package's rollout switched it on for.

    :param plan_path: the run's plan artifact (locates the run folder, as for the rollout).
    :param package_key: whose ledger to read.
    :param artifacts_base: same as ``PatchRolloutOperator.artifacts_base``.
    :param job_timeout: seconds to wait for the outstanding maintenance-on jobs, and again for
        the stopMaintenance jobs; default ``[patchflow] maintenance_timeout`` (scaled with the
        rollout's other timings).
    :param job_poll_interval: default ``[patchflow] job_poll_interval``.
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
        report = ReleaseReport()
        hook = self._hook()
        if ledger.run_owned_maintenance():
            hook.authenticate()  # a refused login fails here, before any per-server bookkeeping
        try:
            self._keep_preexisting(ledger)
            self._release(hook, ledger, report)
        finally:
            ledger.save()  # the audit (all_done) reads the outcomes, also when this task fails
        self._log_report(report)
        if report.problems:
            listed = "; ".join(f"{sid}: {note}" for sid, note in sorted(report.problems.items()))
            raise ClcError(f"maintenance could not be released for: {listed}")
        return report.as_xcom()

    # --- steps ---------------------------------------------------------------------------

    def _keep_preexisting(self, ledger: Ledger) -> None:
        kept = ledger.preexisting_maintenance()
        for sid in kept:
            record_release(
                ledger.servers[sid], ReleaseOutcome.KEPT_PREEXISTING, "in maintenance before the run; left on"
            )
        if kept:
            self.log.info(
                "leaving %d server(s) in maintenance: they were before the run (%s)",
                len(kept),
                ", ".join(kept),
            )

    def _release(self, hook: Any, ledger: Ledger, report: ReleaseReport) -> None:
        owned = ledger.run_owned_maintenance()
        outstanding = self._await_maintenance_jobs(hook, ledger, owned)
        still_on = self._check_live(hook, ledger, owned, outstanding, report)
        if still_on:
            self._switch_off(hook, ledger, still_on, report)

    def _wait(self, hook: Any, alias: str, job_id: str, deadline: float) -> str | None:
        """The job's status, waiting until ``deadline`` at most; None when unreadable."""
        try:
            return hook.wait_for_job(
                alias, job_id, timeout=max(deadline - time.monotonic(), 0.0), interval=self.job_poll_interval
            )
        except ClcError as exc:
            self.log.warning("queue job %s: status unreadable (%s)", job_id, exc)
            return None

    def _await_maintenance_jobs(self, hook: Any, ledger: Ledger, owned: list[str]) -> dict[str, str]:
        """Wait for recorded maintenance-on jobs not yet seen ending; return ``{server: why}`` still open."""
        jobs: dict[str, list[str]] = {}
        for sid in owned:
            if maintenance_job_outstanding(ledger.servers[sid]):
                jobs.setdefault(ledger.servers[sid]["maintenance_job_id"], []).append(sid)
        if not jobs:
            return {}
        self.log.info(
            "waiting up to %g s for %d maintenance-on job(s) before deciding what to switch off: %s",
            self.job_timeout,
            len(jobs),
            ", ".join(jobs),
        )
        deadline = time.monotonic() + self.job_timeout
        still_open: dict[str, str] = {}
        for job_id, members in jobs.items():
            status = self._wait(hook, ledger.alias, job_id, deadline)
            for sid in members:
                ledger.servers[sid]["maintenance_job_status"] = status
                if status not in shapes.QUEUE_FAILED and status != shapes.QUEUE_SUCCEEDED:
                    seen = f"still {status}" if status else "unreadable"
                    still_open[sid] = (
                        f"maintenance-on job {job_id} {seen} after {self.job_timeout:g} s: it may still "
                        "switch maintenance on; check the server and stop maintenance by hand"
                    )
        return still_open

    def _check_live(
        self, hook: Any, ledger: Ledger, owned: list[str], outstanding: dict[str, str], report: ReleaseReport
    ) -> list[str]:
        """Servers still in maintenance; the others are recorded (off, gone, or undecidable)."""
        still_on = []
        for sid in owned:
            entry = ledger.servers[sid]
            try:
                on = shapes.in_maintenance(hook.get_server(ledger.alias, sid))
            except ClcApiError as exc:
                if exc.status == 404:
                    record_release(entry, ReleaseOutcome.ALREADY_OFF, "server no longer exists")
                    report.already_off.append(sid)
                else:
                    self._problem(entry, sid, ReleaseOutcome.UNCONFIRMED, f"state unreadable: {exc}", report)
                continue
            except ClcError as exc:
                self._problem(entry, sid, ReleaseOutcome.UNCONFIRMED, f"state unreadable: {exc}", report)
                continue
            if on:
                still_on.append(sid)
            elif sid in outstanding:
                self._problem(entry, sid, ReleaseOutcome.UNCONFIRMED, outstanding[sid], report)
            else:
                if entry.get("maintenance_release") != ReleaseOutcome.RELEASED:
                    record_release(entry, ReleaseOutcome.ALREADY_OFF)
                report.already_off.append(sid)
        return still_on

    def _switch_off(self, hook: Any, ledger: Ledger, still_on: list[str], report: ReleaseReport) -> None:
        try:
            items = {i.server: i for i in hook.stop_maintenance(ledger.alias, still_on)}
        except ClcError as exc:
            outcome = ReleaseOutcome.REFUSED if isinstance(exc, ClcApiError) else ReleaseOutcome.UNCONFIRMED
            for sid in still_on:
                self._problem(ledger.servers[sid], sid, outcome, f"stopMaintenance failed: {exc}", report)
            return
        crash_point(CRASH_AFTER_STOP_MAINTENANCE)  # resilience tests only
        jobs: dict[str, list[str]] = {}
        for sid in still_on:
            item, entry = items.get(sid), ledger.servers[sid]
            if item is None:
                self._problem(
                    entry, sid, ReleaseOutcome.UNCONFIRMED, "missing from the stopMaintenance answer", report
                )
            elif item.queued:
                jobs.setdefault(item.job_id, []).append(sid)
            elif nothing_to_do(item):
                record_release(entry, ReleaseOutcome.ALREADY_OFF)
                report.already_off.append(sid)
            else:
                self._problem(
                    entry, sid, ReleaseOutcome.REFUSED, f"stopMaintenance refused: {item.error}", report
                )
        deadline = time.monotonic() + self.job_timeout
        for job_id, members in jobs.items():
            status = self._wait(hook, ledger.alias, job_id, deadline)
            for sid in members:
                self._stop_job_ended(ledger.servers[sid], sid, job_id, status, report)

    def _stop_job_ended(
        self, entry: dict[str, Any], sid: str, job_id: str, status: str | None, report: ReleaseReport
    ) -> None:
        if status == shapes.QUEUE_SUCCEEDED:
            record_release(entry, ReleaseOutcome.RELEASED)
            report.released.append(sid)
        elif status in shapes.QUEUE_FAILED:
            self._problem(
                entry, sid, ReleaseOutcome.REFUSED, f"stopMaintenance job {job_id} ended {status}", report
            )
        else:
            seen = f"still {status}" if status else "unreadable"
            note = f"stopMaintenance job {job_id} {seen} after {self.job_timeout:g} s"
            self._problem(entry, sid, ReleaseOutcome.UNCONFIRMED, note, report)

    @staticmethod
    def _problem(
        entry: dict[str, Any], sid: str, outcome: ReleaseOutcome, note: str, report: ReleaseReport
    ) -> None:
        record_release(entry, outcome, note)
        report.problems[sid] = note

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
