"""``ExecutePackageOperator``: send one Execute Package request for a package to a few servers.

A building block for users' own DAGs (after a deploy, before a database upgrade, from a
runbook); pair it with ``PatchExecutionSensor``. It is ``patch_fleet``'s rollout with a single
wave — the same ``include.patching.rollout.Rollout``, ledger and client — so it keeps the same
guarantees: maintenance on first (by default), ``submitting`` and what will tell the new
execution from the servers' others recorded before the POST, a lost answer adopted and never
re-sent, a retry that reconciles instead of repeating (I1, I2). See docs/operators.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from include.artifacts import PathLike, run_folder, safe_segment, write_json
from include.patching.packages import PatchPackage, package_for
from include.patching.rollout import Rollout, RolloutConfig
from include.patching.rollout_state import Ledger, Phase, ledger_path
from include.patching.run_params import MAX_SERVER_TIMEOUT_MINUTES
from patchflow.exceptions import clc_failures_explained
from patchflow.locations import as_location
from patchflow.operators.rollout import plan_targets, tuning

#: The longest per-server timeout, as patch_fleet's form allows (24 h).
MAX_TIMEOUT = MAX_SERVER_TIMEOUT_MINUTES * 60
#: Ledger header key holding the request's settings: the sensor and a retry read them back.
CONFIG_KEY = "execute_package"


def open_rollout(hook: Any, ledger: Ledger, *, logger: Any) -> Rollout:
    """The one-wave rollout an ``ExecutePackageOperator`` recorded in ``ledger``."""
    saved = ledger.data[CONFIG_KEY]
    total = len(ledger.servers)
    config = RolloutConfig(
        package=package_for(ledger.data["package_id"]),
        alias=ledger.alias,
        max_concurrency=max(total, 1),  # one wave: every target at once
        max_errors=total,  # a failure never stops the others of the same request
        server_timeout=float(saved["server_timeout"]),
        maintenance_mode=bool(saved["maintenance_mode"]),
        maintenance_timeout=float(saved["maintenance_timeout"]),
        job_poll_interval=float(saved["job_poll_interval"]),
        parameters=dict(saved["parameters"]),
    )
    return Rollout(hook, ledger, config, logger=logger)


class ExecutePackageOperator(BaseOperator):
    """Execute a patch package on servers, at most once per server; return the executions started.

    :param package: a registry key (``linux_yum``, ``windows_2012``) or an Execute Package id.
    :param server_ids: servers to patch; and/or
    :param group: a group's id or whole name: its servers and those of its sub-groups.
    :param alias: account alias; default the connection's.
    :param parameters: ``package.parameters`` merged over the package's defaults, e.g.
        ``{"patch.debug.mode": "true"}``.
    :param maintenance_mode: maintenance on before the request (default); the sensor switches
        it off as each server ends, ``ReleaseMaintenanceOperator`` is the backstop.
    :param server_timeout: seconds from the request to a completed execution, per server
        (production seconds, multiplied by ``[patchflow] time_scale``).
    :param artifacts_base: where the ledger and plan go; default ``PATCHFLOW_ARTIFACTS``.
    """

    template_fields: Sequence[str] = (
        "package",
        "server_ids",
        "group",
        "alias",
        "parameters",
        "maintenance_mode",
        "server_timeout",
        "artifacts_base",
    )
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        package: str,
        server_ids: Sequence[str] | None = None,
        group: str | None = None,
        alias: str | None = None,
        parameters: dict[str, str] | None = None,
        maintenance_mode: bool = True,
        server_timeout: float = 4 * 3600,
        clc_conn_id: str = "clc_default",
        artifacts_base: str | None = None,
        maintenance_timeout: float | None = None,
        job_poll_interval: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)  # ``op.output["plan_path"]`` works, as for @task
        super().__init__(**kwargs)
        self.package = package
        self.server_ids = server_ids
        self.group = group
        self.alias = alias
        self.parameters = parameters
        self.maintenance_mode = maintenance_mode
        self.server_timeout = server_timeout
        self.clc_conn_id = clc_conn_id
        self.artifacts_base = artifacts_base
        self.maintenance_timeout = tuning("maintenance_timeout", maintenance_timeout)
        self.job_poll_interval = tuning("job_poll_interval", job_poll_interval)

    def _hook(self) -> Any:
        from patchflow.hooks.clc import ClcHook

        return ClcHook(self.clc_conn_id)

    def folder(self, context: Any) -> PathLike:
        """``<artifacts>/<dag_id>/<run_id>/<task_id>``: one ledger per task (and map index)."""
        from patchflow.locations import artifacts_base

        base = as_location(self.artifacts_base) if self.artifacts_base else artifacts_base()
        index = getattr(context.get("ti"), "map_index", -1)
        leaf = self.task_id if index is None or index < 0 else f"{self.task_id}.{index}"
        return run_folder(base, context["dag"].dag_id, context["run_id"]) / safe_segment(leaf)

    def execute(self, context: Any) -> dict[str, Any]:
        with clc_failures_explained(self.clc_conn_id):  # a refused login is not retried
            return self._execute(context)

    def _execute(self, context: Any) -> dict[str, Any]:
        try:
            package = package_for(self.package)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        if not isinstance(self.maintenance_mode, bool):
            raise AirflowFailException(
                f"maintenance_mode must be true or false, got {self.maintenance_mode!r}"
            )
        timeout = self.server_timeout
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout <= MAX_TIMEOUT
        ):
            raise AirflowFailException(
                f"server_timeout must be seconds between 1 and {MAX_TIMEOUT}, got {timeout!r}"
            )
        folder = self.folder(context)
        hook = self._hook()
        hook.authenticate()
        path = ledger_path(folder, package.key)
        if path.exists():  # a retry: the targets and the settings are the first attempt's
            ledger = Ledger.load(path)
            self.log.info("retry: reconciling the ledger %s instead of sending anything again", path)
        else:
            ledger = self._plan(hook, folder, package)
        rollout = open_rollout(hook, ledger, logger=self.log)
        rollout.reconcile()
        rollout.fill()
        return self._report(rollout, folder, path)

    def _plan(self, hook: Any, folder: PathLike, package: PatchPackage) -> Ledger:
        """Select and classify the targets, write the plan, open the ledger (nothing sent yet)."""
        from patchflow.targets import for_package, select_rows
        from patchflow.tuning import time_scale

        alias = self.alias or hook.account_alias
        ids = [str(s).strip().lower() for s in self.server_ids or [] if str(s).strip()]
        rows = [for_package(r, package) for r in select_rows(hook, alias, server_ids=ids, group=self.group)]
        parameters = package.parameters() | {str(k): str(v) for k, v in (self.parameters or {}).items()}
        settings = {
            "package": package.package_id,
            "package_key": package.key,
            "server_ids": ids,
            "group": self.group,
            "parameters": parameters,
            "maintenance_mode": self.maintenance_mode,
            "server_timeout": float(self.server_timeout) * time_scale(),
            "maintenance_timeout": self.maintenance_timeout,
            "job_poll_interval": self.job_poll_interval,
        }
        plan = {"account_alias": alias, "settings": settings, "servers": rows}
        write_json(folder / "plan.json", plan)
        ledger = Ledger.open(
            ledger_path(folder, package.key),
            package_key=package.key,
            package_id=package.package_id,
            alias=alias,
            targets=plan_targets(plan, package.key),
        )
        ledger.data[CONFIG_KEY] = settings
        ledger.save()
        skipped = [r["id"] for r in rows if r["state"]]
        self.log.info(
            "%s for %d server(s); skipped %d (%s) -> %s",
            package.title,
            len(ledger.servers),
            len(skipped),
            ", ".join(skipped) or "-",
            folder / "plan.json",
        )
        return ledger

    def _report(self, rollout: Rollout, folder: PathLike, path: PathLike) -> dict[str, Any]:
        """XCom: where the ledger is, the requests in flight, and the servers already ended."""
        ended = {
            sid: {"state": str(e.state), "reason": e.reason}
            for sid, e in rollout.entries.items()
            if e.phase is Phase.DONE
        }
        for sid, outcome in sorted(ended.items()):
            self.log.warning("%s not started: %s (%s)", sid, outcome["state"], outcome["reason"])
        return {
            "ledger_path": str(path),
            "plan_path": str(folder / "plan.json"),
            "package_key": rollout.config.package.key,
            "package_id": rollout.config.package.package_id,
            "alias": rollout.config.alias,
            "executions": rollout.watch_list(),
            "ended": ended,
        }
