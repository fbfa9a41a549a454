"""``CanaryApprovalOperator``: ask a person, between a staged rollout's first stage and the rest.

Built on the human-in-the-loop operators of Airflow 3.1+ (``airflow.providers.standard``): on
Airflow 3.3 the task waits in ``awaiting_input`` (no worker slot, no triggerer) until someone
answers on the task's *Required actions* page, or until ``timeout_minutes`` (scaled by
``[patchflow] time_scale`` like every timing) pass, which answers *Reject*. It never skips or
fails anything downstream: it returns the decision (``include.patching.approval.Decision``) as
XCom, and the continuation rollout task stops cleanly unless it says approved. When the run did
not ask for approval, or the first stage already stopped the rollout, it answers at once without
asking anybody.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLOperator
from airflow.sdk import Param

from include.artifacts import read_json
from include.patching.approval import APPROVE, REJECT, Decision, canary_summary, from_hitl
from include.patching.rollout_state import ledger_path
from patchflow.locations import as_location, resolve_run_folder


class CanaryApprovalOperator(HITLOperator):
    """Approve or reject the rest of one package's staged rollout after its first stage.

    :param plan_path: the run's plan artifact (templated); its folder holds the ledger.
    :param package_key: the package whose rollout is asked about.
    :param required: ask at all (templated, the run's ``approval`` parameter).
    :param timeout_minutes: how long to wait for an answer, real minutes x ``time_scale``.
    """

    template_fields: Sequence[str] = ("subject", "body", "plan_path", "required", "timeout_minutes")
    ui_color = "#fff3cd"

    def __init__(
        self,
        *,
        plan_path: str,
        package_key: str,
        required: bool | str = False,
        timeout_minutes: int | str = 240,
        artifacts_base: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("subject", f"Continue the {package_key} rollout after its first stage?")
        kwargs.pop("params", None)  # the DAG's form params: not fields of this question
        super().__init__(
            options=[APPROVE, REJECT],
            defaults=[REJECT],
            multiple=False,
            params={"comment": Param("", type=["null", "string"], title="Comment (recorded in the audit)")},
            **kwargs,
        )
        self.plan_path = plan_path
        self.package_key = package_key
        self.required = required
        self.timeout_minutes = timeout_minutes
        self.artifacts_base = artifacts_base

    def execute(self, context: Any) -> Any:
        if self.required not in (True, "True", "true"):
            return Decision(approved=True, asked=False, note="the run asked for no approval").as_json()
        folder = resolve_run_folder(self.plan_path, self.artifacts_base, context)
        lpath = ledger_path(folder, self.package_key)
        ledger = read_json(lpath) if lpath.exists() else None
        if ledger is None or ledger.get("halt") or not ledger.get("stages"):
            self.log.info("%s: nothing to approve (no staged rollout waiting)", self.package_key)
            return Decision(approved=True, asked=False, note="nothing waited for approval").as_json()
        plan = read_json(as_location(self.plan_path))
        names = {str(r["id"]): str(r.get("name") or r["id"]) for r in plan.get("servers") or []}
        self.body = canary_summary(self.package_key, ledger, names)
        from patchflow.tuning import time_scale

        self.response_timeout = timedelta(minutes=float(self.timeout_minutes) * time_scale())
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if event.get("error_type") == "timeout":
            return Decision(approved=False, timed_out=True).as_json()
        payload = super().execute_complete(context, event)
        # the provider's result drops ``timedout``: a timeout answered with the default (Reject)
        decision = from_hitl({**payload, "timedout": bool(event.get("timedout"))})
        self.log.info("%s: %s", self.package_key, "approved" if decision.approved else decision.halt_reason())
        return decision.as_json()
