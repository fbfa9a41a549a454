"""``PatchExecutionSensor``: wait for the executions an ``ExecutePackageOperator`` started.

The waiting and the judging are the rollout's, not a second copy: deferred, the sensor hands
the in-flight servers to ``PatchCompletionTrigger``; with ``deferrable=False`` it runs one
cycle of that trigger's polling in the worker per poke. Either way the outcomes go through
``Rollout.apply`` — the patching execution is the source of truth, never the queue job (I4),
each patch is judged by its last attempt (I8), maintenance is switched off as each server ends
(I2) — and each server ends at its own deadline (I7). See docs/operators.md.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from functools import cached_property
from typing import Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from include.patching.rollout import Rollout
from include.patching.rollout_state import Ledger, results_path
from include.patching.states import PROBLEM_STATES
from patchflow.exceptions import clc_failures_explained
from patchflow.locations import as_location
from patchflow.operators.execute_package import open_rollout
from patchflow.tuning import setting
from patchflow.waiting import WorkerReads, completion_trigger, deferral_timeout

_WorkerReads = WorkerReads  # moved to patchflow.waiting (the rollout polls in the worker too)


class PatchExecutionSensor(BaseSensorOperator):
    """Wait until every server of an ``ExecutePackageOperator`` has ended; return its outcome.

    :param executions: the operator's return value (its XCom: ``execute.output``).
    :param deferrable: wait in the triggerer (default: the wait can last hours and holds no
        worker slot); False polls in the worker every ``poke_interval`` (default: the
        deployment's ``poll_interval``, backing off to ``max_poll_interval``).
    :param soft_fail: a server that failed, timed out or was not attempted skips the task
        instead of failing it.

    Ends with ``{"results_path", "counts", "servers": {id: {state, reason, execution_id, ...}}}``.
    """

    template_fields: Sequence[str] = ("executions",)
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        executions: dict[str, Any] | str,
        clc_conn_id: str = "clc_default",
        deferrable: bool = True,
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
        batch_window: float | None = None,
        deferral_margin: float | None = None,
        **kwargs: Any,
    ) -> None:
        self.poll_interval = setting("poll_interval", poll_interval)
        self.max_poll_interval = setting("max_poll_interval", max_poll_interval)
        kwargs.setdefault("poke_interval", self.poll_interval)
        kwargs.setdefault("exponential_backoff", True)
        kwargs.setdefault("max_wait", self.max_poll_interval)
        super().__init__(**kwargs)
        self.executions = executions
        self.clc_conn_id = clc_conn_id
        self.deferrable = deferrable
        self.batch_window = setting("batch_window", batch_window)
        self.deferral_margin = setting("deferral_margin", deferral_margin)

    # --- wiring --------------------------------------------------------------------------

    @cached_property
    def _hook(self) -> Any:
        """One client for every poke of this task attempt: one login, its token reused."""
        from patchflow.hooks.clc import ClcHook

        return ClcHook(self.clc_conn_id)

    def _open(self) -> Rollout:
        ref = self.executions
        if not isinstance(ref, dict) or not ref.get("ledger_path"):
            raise AirflowFailException(
                f"executions must be an ExecutePackageOperator's return value, got {ref!r}"
            )
        ledger = Ledger.load(as_location(str(ref["ledger_path"])))
        return open_rollout(self._hook, ledger, logger=self.log)

    def _trigger(self, rollout: Rollout) -> Any:
        timings = {
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "batch_window": self.batch_window,
        }
        return completion_trigger(rollout, clc_conn_id=self.clc_conn_id, **timings)

    # --- entry points --------------------------------------------------------------------

    def execute(self, context: Any) -> Any:
        if not self.deferrable:
            return super().execute(context)  # poke() until done, in the worker
        with clc_failures_explained(self.clc_conn_id):
            return self._advance(self._open())

    def poke(self, context: Any) -> PokeReturnValue:
        with clc_failures_explained(self.clc_conn_id):
            rollout = self._open()
            trigger = self._trigger(rollout)
            if trigger is not None:
                rollout.apply(asyncio.run(trigger.check(_WorkerReads(rollout.api))))
            if rollout.in_flight_ids():
                self.log.info("%s", rollout.progress())
                return PokeReturnValue(False)
            return PokeReturnValue(True, self._verdict(rollout))

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        with clc_failures_explained(self.clc_conn_id):
            rollout = self._open()
            rollout.apply((event or {}).get("outcomes") or {})
            return self._advance(rollout)

    def deferral_timed_out(self, context: Any) -> dict[str, Any]:
        """The triggerer never reported: the servers still in flight end ``timed_out`` (I7)."""
        with clc_failures_explained(self.clc_conn_id):
            rollout = self._open()
            rollout.time_out_in_flight("deferral timed out before the trigger reported (backstop)")
            return self._verdict(rollout)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """A deferral timeout is recorded per server before the sensor ends (soft_fail still applies)."""
        if (
            next_method == TRIGGER_FAIL_REPR
            and (next_kwargs or {}).get("error") == TriggerFailureReason.TRIGGER_TIMEOUT
        ):
            next_method, next_kwargs = "deferral_timed_out", None
        return super().resume_execution(next_method, next_kwargs, context)

    # --- outcome -------------------------------------------------------------------------

    def _advance(self, rollout: Rollout) -> dict[str, Any]:
        trigger = self._trigger(rollout)
        if trigger is not None:
            self.log.info("%s", rollout.progress())
            self.defer(
                trigger=trigger,
                method_name="execute_complete",
                timeout=deferral_timeout(rollout, self.deferral_margin),
            )
        return self._verdict(rollout)

    def _verdict(self, rollout: Rollout) -> dict[str, Any]:
        """Write the results (the audit reads them), then fail or soft-fail for any server not patched."""
        folder = as_location(str(self.executions["ledger_path"])).parent  # type: ignore[index]
        results = results_path(folder, rollout.config.package.key)
        counts = rollout.finish(results)
        servers = {
            sid: {
                "state": str(e.state),
                "reason": e.reason,
                "execution_id": e.execution_id,
                "patches_installed": e.patches_installed,
                "patches_failed": e.patches_failed,
                "attempts": e.attempts,
            }
            for sid, e in rollout.ledger.ordered()
        }
        problems = [
            f"{sid}: {s['state']} ({s['reason']})"
            for sid, s in servers.items()
            if s["state"] in PROBLEM_STATES
        ]
        for line in problems:
            self.log.warning("%s", line)
        if problems:
            message = f"{len(problems)} of {len(servers)} server(s) not patched: " + "; ".join(problems)
            raise AirflowSkipException(message) if self.soft_fail else AirflowFailException(message)
        return {"results_path": str(results), "counts": counts, "servers": servers}
