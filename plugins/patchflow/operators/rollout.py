"""``PatchRolloutOperator``: patch one package's servers in a sliding window, deferring the waits.

Thin shell over ``include.patching.rollout.Rollout`` (see its docstring for how I1, I2 and I7
are kept). Each worker turn: reconcile (first turn only) → start servers into free slots
(maintenance on, Execute Package POSTed from the worker) → ``defer`` to
``PatchCompletionTrigger`` for everything in flight → on resume record the outcomes, read
per-patch details, switch maintenance off, refill. One task instance per package whatever the
fleet size; XCom carries only the results path and counts.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, TaskDeferralTimeout

from include.artifacts import PathLike, read_json
from include.patching import rate_control
from include.patching.fleet_budget import FleetBudget
from include.patching.packages import BY_KEY
from include.patching.rollout import Rollout, RolloutConfig
from include.patching.rollout_state import Ledger, ledger_path, results_path
from include.patching.run_outcome import ended, package_progress, problem_lines, server_labels
from include.patching.run_params import snapshot_settings
from include.patching.snapshot_state import SnapshotMode
from include.patching.snapshots import SnapshotPolicy
from include.patching.window import RolloutWindow, cutoff_problem, parse_window_end
from patchflow.exceptions import clc_failures_explained
from patchflow.locations import resolve_run_folder
from patchflow.tuning import default_deferrable, size
from patchflow.waiting import WorkerReads, completion_trigger, deferral_timeout, refill_window


def plan_targets(plan: Any, package_key: str) -> list[tuple[str, bool]]:
    """``(server_id, in_maintenance)`` for every plan row to patch with ``package_key``.

    Accepts ``{"servers": [...]}`` or a bare list; a row is a target when its ``package_key``
    matches and it has no terminal ``state`` yet (skips and dry runs carry one).
    """
    rows = plan.get("servers") if isinstance(plan, dict) else plan
    if not isinstance(rows, list):
        raise ValueError("plan must be a list of rows or an object with a 'servers' list")
    targets, seen = [], set()
    for row in rows:
        sid = str(row.get("id") or row.get("server_id") or "").lower()
        if not sid or row.get("package_key") != package_key or row.get("state"):
            continue
        if sid not in seen:
            seen.add(sid)
            targets.append((sid, bool(row.get("in_maintenance"))))
    return targets


def tuning(name: str, explicit: float | None) -> float:
    """A timing setting: the explicit value, else the deployment's (see ``patchflow.tuning``).

    Every default is a production value multiplied by ``[patchflow] time_scale``
    (``AIRFLOW__PATCHFLOW__TIME_SCALE``, default 1.0); ``[patchflow] <name>`` overrides one
    setting as is. The demo and the tests set ``time_scale`` to the simulator's
    ``--time-scale`` so every wait keeps its production proportions. The settings and their
    production values: ``include.patching.tuning.Tuning``.
    """
    from patchflow.tuning import setting

    return setting(name, explicit)


class PatchRolloutOperator(BaseOperator):
    """Roll one patch package out to its planned servers under rate control.

    :param plan_path: the run's plan artifact (templated, e.g. from the classify task's XCom).
    :param package_key: key in ``include.patching.packages.BY_KEY``.
    :param alias: account alias; default the plan's ``account_alias``, else the connection's.
    :param max_concurrency: servers in flight, count or percent of targets (``"10%"``); with
        ``fleet_wide`` across all packages of the run (percent of the whole fleet's targets).
    :param max_errors: failed + timed-out servers tolerated before no new server starts; with
        ``fleet_wide`` counted across all packages of the run.
    :param request_chunk: servers per startMaintenance / Execute Package request, a wave's
        requests sent at once (default: ``[patchflow] request_chunk``, 5).
    :param deferrable: wait for completions in the triggerer: no worker slot is held while
        servers patch, but each refill costs a resume round trip through the scheduler. False:
        the worker keeps the loop, polls itself and refills a freed slot at once, holding a
        worker slot for the whole rollout. Same ``Rollout``, ledger rules and deadlines. Default:
        ``[operators] default_deferrable`` (False unless the deployment sets it), as Airflow's
        provider operators do.
    :param fleet_wide: the limits are the run's, shared with the other packages' rollouts
        through their ledgers (``include.patching.fleet_budget``); False: this package's own.
    :param server_timeout: seconds from the request to a completed execution, per server, in
        real (production) seconds like the form's minutes: multiplied by ``time_scale``.
    :param maintenance_mode: switch maintenance on before and off after patching.
    :param patch_debug_mode: the Linux package's ``patch.debug.mode`` parameter.
    :param artifacts_base: base folder/URL of run artifacts; default: the plan's folder.
    :param waves: stage sizes, e.g. ``["1", "5", "20%", "100%"]`` (``include.patching.stages``);
        empty: one stage, the plain sliding window. Fixed in the ledger when it is created.
    :param max_per_cluster: servers of one cluster in flight at once (``include.patching.clusters``).
    :param cluster_by: ``field:<custom field>`` (default ``field:cluster``), ``group`` or ``none``.
    :param health_check: check each completed server (active, powered on, and ``health_probe``)
        before counting it a success; one that fails ends ``unhealthy`` and halts the rollout.
    :param health_probe: optional probe template (``include.patching.health``); implies the check.
    :param pause_after_first_stage: stop once the first stage has ended, leaving the rest queued for
        a continuation task (``approval_task_id``) after a person approved.
    :param approval_task_id: makes this task the continuation: it goes on only if that task's
        XCom says approved; otherwise the rest end ``not_attempted`` with the decision as reason.
    :param snapshot: ``off`` | ``best_effort`` | ``required``: snapshot each server after
        maintenance is on and before the package (``include.patching.snapshots``).
    :param snapshot_expiration_days: 1-10; the platform deletes the snapshot then.
    :param snapshot_keep: keep this run's snapshot after a successful patch (else deleted).
    :param revert_on_failure: restore this run's snapshot of a failed or timed-out server.
    :param window_end: end of the maintenance window (templated; ISO 8601 with an offset, or
        empty/None: no window). No server is started once less than the cutoff remains; those
        end ``not_attempted`` "window closed"; in-flight servers are followed to the end.
    :param window_cutoff_minutes: the cutoff in real minutes (scaled by ``time_scale``);
        None: ``[patchflow] window_cutoff`` (30 minutes x time_scale).
    """

    template_fields: Sequence[str] = (
        "plan_path",
        "package_key",
        "alias",
        "max_concurrency",
        "max_errors",
        "artifacts_base",
        "server_timeout",
        "maintenance_mode",
        "patch_debug_mode",
        "waves",
        "max_per_cluster",
        "cluster_by",
        "health_check",
        "health_probe",
        "pause_after_first_stage",
        "snapshot",
        "snapshot_expiration_days",
        "snapshot_keep",
        "revert_on_failure",
        "window_end",
        "window_cutoff_minutes",
        "deferrable",
    )
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        plan_path: str,
        package_key: str,
        alias: str | None = None,
        clc_conn_id: str = "clc_default",
        max_concurrency: int | str = rate_control.DEFAULT_MAX_CONCURRENCY,
        max_errors: int | str = rate_control.DEFAULT_MAX_ERRORS,
        server_timeout: float = 4 * 3600,
        maintenance_mode: bool = True,
        patch_debug_mode: bool = False,
        artifacts_base: str | None = None,
        poll_interval: float | None = None,
        max_poll_interval: float | None = None,
        batch_window: float | None = None,
        maintenance_timeout: float | None = None,
        job_poll_interval: float | None = None,
        deferral_margin: float | None = None,
        waves: list[str] | str | None = None,
        max_per_cluster: int | str = 1,
        cluster_by: str | None = None,
        health_check: bool = False,
        health_probe: str | None = None,
        health_retries: int | None = None,
        pause_after_first_stage: bool = False,
        approval_task_id: str | None = None,
        snapshot: str = "off",
        snapshot_expiration_days: int | str = 3,
        snapshot_keep: bool = True,
        revert_on_failure: bool = False,
        window_end: str | None = None,
        window_cutoff_minutes: float | str | None = None,
        fleet_wide: bool = True,
        deferrable: bool | None = None,
        request_chunk: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.waves = waves
        self.max_per_cluster = max_per_cluster
        self.cluster_by = cluster_by
        self.health_check = health_check
        self.health_probe = health_probe
        self.health_retries = health_retries
        self.pause_after_first_stage = pause_after_first_stage
        self.approval_task_id = approval_task_id
        self.health_probe_timeout = tuning("health_probe_timeout", None)
        self.health_retry_interval = tuning("health_retry_interval", None)
        self.snapshot = snapshot
        self.snapshot_expiration_days = snapshot_expiration_days
        self.snapshot_keep = snapshot_keep
        self.revert_on_failure = revert_on_failure
        self.plan_path = plan_path
        self.package_key = package_key
        self.alias = alias
        self.clc_conn_id = clc_conn_id
        self.max_concurrency = max_concurrency
        self.max_errors = max_errors
        self.server_timeout = server_timeout
        self.maintenance_mode = maintenance_mode
        self.patch_debug_mode = patch_debug_mode
        self.artifacts_base = artifacts_base
        self.poll_interval = tuning("poll_interval", poll_interval)
        self.max_poll_interval = tuning("max_poll_interval", max_poll_interval)
        self.batch_window = tuning("batch_window", batch_window)
        self.maintenance_timeout = tuning("maintenance_timeout", maintenance_timeout)
        self.release_delay = tuning("release_delay", None)
        self.api_clock_age = tuning("api_clock_age", None)
        self.note_interval = tuning("note_interval", None)
        self.job_poll_interval = tuning("job_poll_interval", job_poll_interval)
        self.deferral_margin = tuning("deferral_margin", deferral_margin)
        self.snapshot_timeout = tuning("snapshot_timeout", None)
        self.revert_timeout = tuning("revert_timeout", None)
        self.window_end = window_end
        self.window_cutoff_minutes = window_cutoff_minutes
        self.fleet_wide = fleet_wide
        self.deferrable = default_deferrable() if deferrable is None else deferrable
        self.request_chunk = size("request_chunk", request_chunk)
        self.release_chunk = size("release_chunk", None)
        self.ahead_chunk = size("ahead_chunk", None)

    # --- wiring --------------------------------------------------------------------------

    def trigger_timings(self) -> dict[str, float]:
        return {
            "poll_interval": self.poll_interval,
            "max_poll_interval": self.max_poll_interval,
            "batch_window": self.batch_window,
        }

    def _hook(self) -> Any:
        from patchflow.hooks.clc import ClcHook

        return ClcHook(self.clc_conn_id)

    def _plan(self) -> Any:
        """The run's plan, read once per task process (the worker loop tells after every turn)."""
        from patchflow.locations import as_location

        if getattr(self, "_plan_read", None) is None:
            self._plan_read = read_json(as_location(self.plan_path))
        return self._plan_read

    def _open(self, context: Any) -> tuple[Rollout, PathLike]:
        from patchflow.tuning import time_scale

        package = BY_KEY.get(self.package_key)
        if package is None:
            raise AirflowFailException(f"package_key {self.package_key!r} is not one of {sorted(BY_KEY)}")
        folder = resolve_run_folder(self.plan_path, self.artifacts_base, context)
        lpath = ledger_path(folder, package.key)
        hook = self._hook()
        hook.authenticate()
        plan = self._plan() if self.fleet_wide or not lpath.exists() else None
        if lpath.exists():
            ledger = Ledger.load(lpath)
            alias = ledger.alias
        else:
            targets = plan_targets(plan, package.key)
            plan_alias = plan.get("account_alias") if isinstance(plan, dict) else None
            alias = self.alias or plan_alias or hook.account_alias
            ledger = self._new_ledger(lpath, plan, targets, package, alias)
        planned = {key: len(plan_targets(plan, key)) for key in BY_KEY} if self.fleet_wide else {}
        # fleet-wide limits: a percentage is of the whole fleet's targets
        total = sum(planned.values()) if self.fleet_wide else len(ledger.servers)
        try:
            concurrency = rate_control.max_concurrency(self.max_concurrency, max(total, 1))
            errors = rate_control.max_errors(self.max_errors, total)
        except ValueError as exc:
            raise AirflowFailException(f"Invalid rollout parameter: {exc}") from None
        for name in ("maintenance_mode", "patch_debug_mode", "deferrable"):
            if not isinstance(getattr(self, name), bool):
                raise AirflowFailException(
                    f"Invalid rollout parameter: {name} must be true or false, got {getattr(self, name)!r}"
                )
        staged = self._staged_settings()
        config = RolloutConfig(
            package=package,
            alias=alias,
            max_concurrency=concurrency,
            max_errors=errors,
            server_timeout=float(self.server_timeout) * time_scale(),
            maintenance_mode=self.maintenance_mode,
            patch_debug_mode=self.patch_debug_mode,
            maintenance_timeout=self.maintenance_timeout,
            release_delay=self.release_delay,
            job_poll_interval=self.job_poll_interval,
            api_clock_age=self.api_clock_age,
            snapshots=self._snapshot_policy(),
            window=self.rollout_window(),
            **staged,
            stop_after_stage=1 if self.pause_after_first_stage and ledger.data.get("stages") else None,
            chunk_size=self.request_chunk,
            release_chunk=self.release_chunk,
            ahead_chunk=self.ahead_chunk,
        )
        fleet = None
        if self.fleet_wide:
            fleet = FleetBudget(folder, package.key, planned, max_concurrency=concurrency, max_errors=errors)
        rollout = Rollout(hook, ledger, config, logger=self.log, fleet=fleet)
        return rollout, results_path(folder, package.key)

    def _snapshot_policy(self) -> SnapshotPolicy:
        """The snapshot parameters, checked by the preflight's rules (every bad value named)."""
        days = self.snapshot_expiration_days
        if isinstance(days, str) and days.strip().isdigit():
            days = int(days)  # a templated value arrives as text
        (mode, days, keep, revert), problems = snapshot_settings(
            self.snapshot, days, self.snapshot_keep, self.revert_on_failure
        )
        if problems:
            raise AirflowFailException("Invalid rollout parameter: " + "; ".join(problems))
        return SnapshotPolicy(
            mode=SnapshotMode(mode),
            expiration_days=days,
            keep=keep,
            revert_on_failure=revert,
            snapshot_timeout=self.snapshot_timeout,
            revert_timeout=self.revert_timeout,
            poll_interval=self.job_poll_interval,
        )

    def rollout_window(self) -> RolloutWindow:
        """The rendered ``window_end`` and cutoff (see ``include.patching.window``)."""
        from patchflow.tuning import time_scale

        cutoff = self.window_cutoff_minutes
        if isinstance(cutoff, str) and cutoff.strip() not in ("", "None"):
            cutoff = float(cutoff) if cutoff.replace(".", "", 1).isdigit() else cutoff
        elif isinstance(cutoff, str):
            cutoff = None
        try:
            end = parse_window_end(self.window_end)
        except ValueError as exc:
            raise AirflowFailException(f"Invalid rollout parameter: {exc}") from None
        problem = cutoff_problem(cutoff)
        if problem:
            raise AirflowFailException(f"Invalid rollout parameter: {problem}")
        if cutoff is None or cutoff == "":
            seconds = tuning("window_cutoff", None)
        else:
            seconds = float(cutoff) * 60 * time_scale()
        return RolloutWindow(end=end, cutoff_seconds=seconds)

    def _staged_settings(self) -> dict[str, Any]:
        """Health check and cluster limit of ``RolloutConfig`` (``include.patching.health``, ``clusters``)."""
        from include.patching.clusters import max_per_cluster_problem
        from include.patching.health import DEFAULT_RETRIES, HealthSpec, probe_problem

        problems = [f"max_per_cluster {p}" for p in [max_per_cluster_problem(self.max_per_cluster)] if p] + [
            f"health_probe {p}" for p in [probe_problem(self.health_probe)] if p
        ]
        if problems:
            raise AirflowFailException("Invalid rollout parameter: " + "; ".join(problems))
        health = None
        if self.health_check or self.health_probe:
            health = HealthSpec(
                probe=(self.health_probe or "").strip() or None,
                retries=int(self.health_retries or DEFAULT_RETRIES),
                timeout=self.health_probe_timeout,
                interval=self.health_retry_interval,
            )
        return {"health": health, "max_per_cluster": int(str(self.max_per_cluster).strip())}

    def _new_ledger(
        self, lpath: PathLike, plan: Any, targets: list[tuple[str, bool]], package: Any, alias: str
    ) -> Ledger:
        """A new ledger with its stage plan and cluster keys in it from the start (restarts keep them)."""
        from include.patching.stages import describe, ledger_fields, normalise_waves, wave_problems

        problems = wave_problems(self.waves)
        if problems:
            raise AirflowFailException("Invalid rollout parameter: " + "; ".join(problems))
        rows = plan.get("servers") if isinstance(plan, dict) else plan
        ids = [sid for sid, _ in targets]
        header, fields, stage_plan = ledger_fields(
            rows or [], ids, normalise_waves(self.waves), self.cluster_by
        )
        if stage_plan is not None:
            for line in describe(stage_plan, len(ids)):
                self.log.info("%s: %s", self.package_key, line)
        return Ledger.open(
            lpath,
            package_key=package.key,
            package_id=package.package_id,
            alias=alias,
            targets=targets,
            header=header,
            entry_fields=fields,
        )

    # --- entry points --------------------------------------------------------------------

    def execute(self, context: Any) -> dict[str, Any]:
        with clc_failures_explained(self.clc_conn_id):  # a refused login is not retried
            return self._start(context)

    def resume(self, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
        with clc_failures_explained(self.clc_conn_id):
            return self._resume(context, event)

    def _start(self, context: Any) -> dict[str, Any]:
        done = self._already_finished(context)
        if done is not None:
            return done
        rollout, results = self._open(context)
        before = ended(rollout.entries)
        self.log.info(
            "rollout of %s: %d target server(s), max_concurrency %d, max_errors %d",
            self.package_key,
            len(rollout.entries),
            rollout.config.max_concurrency,
            rollout.config.max_errors,
        )
        rollout.reconcile()
        return self._advance(rollout, results, context, before)

    def _already_finished(self, context: Any) -> dict[str, Any] | None:
        """Continuation task whose rollout already ran to its end (no approval step): nothing to do."""
        if not self.approval_task_id:
            return None
        folder = resolve_run_folder(self.plan_path, self.artifacts_base, context)
        results = results_path(folder, self.package_key)
        if not results.exists():
            return None
        counts = read_json(results).get("counts") or {}
        self.log.info(
            "%s: the rollout already ran to its end (%s); nothing to continue", self.package_key, counts
        )
        return {"results_path": str(results), "counts": counts}

    def _resume(self, context: Any, event: dict[str, Any] | None) -> dict[str, Any]:
        rollout, results = self._open(context)
        before = ended(rollout.entries)
        outcomes = event.get("outcomes") if isinstance(event, dict) else None  # None: a slot wait ended
        rollout.note_jobs((event.get("jobs") if isinstance(event, dict) else None) or {})
        rollout.note_polls(
            (event.get("polled") if isinstance(event, dict) else None) or {},
            (event.get("next_reads") if isinstance(event, dict) else None) or {},
            (event.get("seen") if isinstance(event, dict) else None) or {},
        )
        rollout.apply(outcomes or {})
        return self._advance(rollout, results, context, before)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """A deferral timeout (triggerer gone) ends in-flight servers ``timed_out`` — never a hang."""
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout:
            rollout, results = self._open(context)
            before = ended(rollout.entries)
            rollout.time_out_in_flight("deferral timed out before the trigger reported (backstop)")
            counts = rollout.finish(results, stop_reason="rollout stopped: deferral timed out")
            self._tell(context, rollout, before, final=True)
            return {"results_path": str(results), "counts": counts}

    def _tell(self, context: Any, rollout: Rollout, before: dict[str, str], *, final: bool = False) -> None:
        """What people watching see after each turn: a WARNING per server that failed since the
        turn began (id, name, reason), one progress line, and the run's note brought up to date —
        at most every ``[patchflow] note_interval``, at once on a failure and at the end."""
        from patchflow.run_note import live_line, publish

        plan = self._plan()
        problems = problem_lines(before, rollout.entries, server_labels(plan))
        for line in problems:
            self.log.warning("%s", line)
        before.update(ended(rollout.entries))
        fleet_errors = rollout.budget_errors() if rollout.fleet is not None else None
        line = package_progress(self.package_key, rollout.entries, rollout.config.max_errors, fleet_errors)
        self.log.info("%s", line)
        noted = getattr(self, "_noted_at", None)
        if final or problems or noted is None or time.monotonic() - noted >= self.note_interval:
            folder = resolve_run_folder(self.plan_path, self.artifacts_base, context)
            publish(context, live_line(folder, plan), logger=self.log)
            self._noted_at = time.monotonic()

    def _advance(
        self, rollout: Rollout, results: PathLike, context: Any, before: dict[str, str]
    ) -> dict[str, Any]:
        self._take_decision(rollout, context)
        while True:
            rollout.fill()
            timings = self.trigger_timings() | {"batch_window": refill_window(rollout, self.batch_window)}
            trigger = completion_trigger(rollout, clc_conn_id=self.clc_conn_id, **timings)
            if trigger is None and rollout.finished:
                break
            self._tell(context, rollout, before)
            if self.deferrable:
                self._defer_on(rollout, trigger)  # raises TaskDeferred: resumes in ``resume``
            self._wait_in_worker(rollout, trigger)
        if rollout.gate.paused() and not rollout.gate.halt():
            self._tell(context, rollout, before, final=True)
            self.log.info(
                "%s: stage 1 ended and passed its gate; the rest waits for approval", self.package_key
            )
            return {"results_path": None, "paused_after_stage": 1, "ledger": str(rollout.ledger.path)}
        counts = rollout.finish(results)
        self._tell(context, rollout, before, final=True)
        self._fail_if_over_budget(rollout, results)
        return {"results_path": str(results), "counts": counts}

    def _take_decision(self, rollout: Rollout, context: Any) -> None:
        """Continuation task: go on only when the approval task approved; else halt with its reason."""
        if not self.approval_task_id or rollout.gate.halt() or "approval" in rollout.ledger.data:
            return
        from include.patching.approval import decision_from_xcom

        raw = context["ti"].xcom_pull(task_ids=self.approval_task_id)
        decision = decision_from_xcom(raw)
        rollout.ledger.data["approval"] = decision.as_json()
        if not decision.approved:
            rollout.gate.record_halt(2, decision.halt_reason(), kind="decision")
            self.log.warning("%s", decision.halt_reason())
        rollout.ledger.save()

    def _defer_on(self, rollout: Rollout, trigger: Any) -> None:
        """Hand the wait to the triggerer; nothing in flight: wait a poll interval for a fleet slot."""
        if trigger is None:  # every free slot of the fleet is held by a sibling package
            from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger

            self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=self.poll_interval)), method_name="resume")
        self.defer(
            trigger=trigger,
            method_name="resume",
            timeout=deferral_timeout(rollout, self.deferral_margin),
        )

    def _wait_in_worker(self, rollout: Rollout, trigger: Any) -> None:
        """``deferrable=False``: the trigger's polling in this worker, then refill at once.

        Same rules and deadlines as in the triggerer; the deferral timeout's backstop becomes
        a timeout of the wait (in-flight servers end ``timed_out``, I7).
        """
        if trigger is None:
            time.sleep(self.poll_interval)
            return
        limit = deferral_timeout(rollout, self.deferral_margin).total_seconds()
        try:
            event = asyncio.run(asyncio.wait_for(trigger.wait(WorkerReads(rollout.api)), limit))
        except TimeoutError:
            rollout.time_out_in_flight("the wait timed out before the polling reported (backstop)")
            return
        rollout.note_jobs(event.get("jobs") or {})
        rollout.note_polls(event.get("polled") or {}, event.get("next_reads") or {}, event.get("seen") or {})
        rollout.apply(event.get("outcomes") or {})

    @staticmethod
    def _fail_if_over_budget(rollout: Rollout, results: PathLike) -> None:
        """Errors beyond ``max_errors`` fail the task (and the run), like SSM's command status.

        Results are written first; the audit and the maintenance release run regardless.
        """
        if rollout.gate.failed() and not rollout.budget_exhausted():
            raise AirflowFailException(f"{rollout.gate.halt_reason()}. Results: {results}")
        if rollout.budget_exhausted():
            fleet = (
                f" across all packages ({rollout.errors()} in this one)" if rollout.fleet is not None else ""
            )
            raise AirflowFailException(
                f"error budget exceeded: {rollout.budget_errors()} failed or timed-out server(s){fleet} > "
                f"max_errors {rollout.config.max_errors}; servers not yet started were left alone. "
                f"Results: {results}"
            )
