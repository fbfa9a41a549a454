"""An in-memory fake of the ``ClcApi`` protocol for unit tests of ``Rollout``.

Maintenance jobs succeed at once. An accepted Execute Package creates one pending execution per
server, dated on the API's own clock (ours + ``api_offset``, or a clock running ``api_speed``
times faster than ours since ``api_origin``, like the simulator's) and kept *hidden* from the summary
until ``start_queued()`` — the platform's queue, which may start a batch long after the request.
``answer`` decides what the caller gets back from Execute Package.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum

from include.clc.errors import ClcConnectionError, PossiblySubmittedError
from include.clc.shapes import BatchItem
from include.patching.packages import LINUX_YUM
from include.patching.rollout import Rollout, RolloutConfig
from include.patching.rollout_state import Ledger
from include.patching.watch import ObservedExecution, Outcome, WatchState
from include.timefmt import utc_text

EXECUTE = "POST /v2/operations/DEMO/servers/executePackage"


class Answer(StrEnum):
    OK = "ok"
    LOST = "lost"  # processed, then the connection dropped
    UNSENT_BUT_AMBIGUOUS = "unsent"  # dropped before processing: the client cannot tell
    NEVER_LEFT = "never_left"  # connection refused: provably not sent
    MISSING = "missing"  # processed, the answer omits every server


class MemoryClc:
    def __init__(
        self,
        servers: list[str],
        *,
        api_offset: timedelta = timedelta(0),
        api_speed: float = 1.0,
        api_origin: datetime | None = None,
    ) -> None:
        self.api_offset, self.api_speed = api_offset, api_speed
        self.api_origin = api_origin or datetime.now(UTC)
        self.history: dict[str, list[dict]] = {sid: [] for sid in servers}
        self.hidden: list[tuple[str, dict]] = []
        self.calls: list[tuple[str, tuple[str, ...]]] = []
        self.in_maintenance = dict.fromkeys(servers, False)
        self.patches: dict[str, list[dict]] = {}
        self.answer = Answer.OK
        self._seq = 100_000

    # --- test controls -------------------------------------------------------------------
    def api_now(self) -> datetime:
        elapsed = datetime.now(UTC) - self.api_origin
        return self.api_origin + elapsed * self.api_speed + self.api_offset

    def add_execution(self, sid: str, *, status: str = "completed", start: datetime | None = None) -> str:
        execution = self._execution(sid, status, start or self.api_now())
        self.history[sid].append(execution)
        return execution["execution_id"]

    def start_queued(self) -> None:
        for sid, execution in self.hidden:
            self.history[sid].append(execution)
        self.hidden.clear()

    def complete_all(self, initiations: int = 2) -> None:
        for executions in self.history.values():
            for execution in executions:
                if execution["status"] == "pending":
                    execution["status"] = "completed"
                    execution["end_time"] = utc_text(self.api_now())
                    execution["init_messages"] = [
                        {"init_end_message": "Installed 1 updates: x"} for _ in range(initiations - 1)
                    ] + [{"init_end_message": "Installed 0 updates"}]

    def executes(self, sid: str) -> int:
        return sum(1 for op, ids in self.calls if op == "execute" and sid in ids)

    def executions_run(self, sid: str) -> int:
        return sum(1 for e in self.history[sid] + [e for s, e in self.hidden if s == sid] if e.get("_ours"))

    # --- ClcApi ----------------------------------------------------------------------------
    def start_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]:
        self.calls.append(("start_maintenance", tuple(ids)))
        for sid in ids:
            self.in_maintenance[sid] = True
        return [BatchItem(sid, True, "m-1", None) for sid in ids]

    def stop_maintenance(self, alias: str, ids: list[str]) -> list[BatchItem]:
        self.calls.append(("stop_maintenance", tuple(ids)))
        for sid in ids:
            self.in_maintenance[sid] = False
        return [BatchItem(sid, True, "m-2", None) for sid in ids]

    def wait_for_job(self, alias: str, job_id: str, *, timeout: float = 0, interval: float = 0) -> str:
        return "succeeded"

    def execute_package(
        self, alias: str, ids: list[str], package_id: str, parameters: dict
    ) -> list[BatchItem]:
        self.calls.append(("execute", tuple(ids)))
        if self.answer is Answer.NEVER_LEFT:
            raise ClcConnectionError("POST", EXECUTE, "ConnectionRefused after 5 attempts")
        if self.answer is Answer.UNSENT_BUT_AMBIGUOUS:
            raise PossiblySubmittedError("POST", EXECUTE, "ConnectionError")
        for sid in ids:
            self.hidden.append((sid, self._execution(sid, "pending", self.api_now(), ours=True)))
        if self.answer is Answer.LOST:
            raise PossiblySubmittedError("POST", EXECUTE, "ConnectionError")
        if self.answer is Answer.MISSING:
            return []
        return [BatchItem(sid, True, "va1-9001", None) for sid in ids]

    def get_patch_summary(self, alias: str, server_id: str) -> list[dict]:
        return [{k: v for k, v in e.items() if not k.startswith("_")} for e in self.history[server_id]]

    def get_patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        patches = self.patches.get(server_id, [patch_attempt("bash-4.1.2-33.el6_7.1.x86_64", "completed", 0)])
        return {"execution_id": execution_id, "status": "completed", "patches": patches}

    def _execution(self, sid: str, status: str, start: datetime, *, ours: bool = False) -> dict:
        self._seq += 1
        return {
            "execution_id": f"VA1-{self._seq}",
            "status": status,
            "start_time": utc_text(start),
            "end_time": utc_text(start) if status == "completed" else "",
            "init_messages": [],
            "_ours": ours,
        }


def patch_attempt(name: str, status: str, minute: int) -> dict:
    """One row of a detail's ``patches``: one attempt of one patch."""
    code = {"completed": "2", "failed": "4"}[status]
    start = f"2016-03-14T02:{minute:02d}:00Z"
    return {"patch_begin_message": name, "patch_end_message": code, "status": status, "start_time": start}


# --- driving a Rollout against it ---------------------------------------------------------


def make(tmp_path, api: MemoryClc, *, servers: list[str] | None = None) -> Rollout:
    ledger = Ledger.open(
        tmp_path / "ledger.json", package_key=LINUX_YUM.key, package_id=LINUX_YUM.package_id, alias="DEMO",
        targets=[(sid, False) for sid in servers or list(api.history)],
    )  # fmt: skip
    config = RolloutConfig(
        package=LINUX_YUM, alias="DEMO", max_concurrency=10, max_errors=10, server_timeout=3600
    )
    return Rollout(api, ledger, config)


def report(state: WatchState, reason: str = "", execution: dict | None = None) -> dict:
    """An outcome as the trigger sends it."""
    return Outcome(
        state=state,
        reason=reason,
        job_id=None,
        job_status=None,
        execution_id=execution["execution_id"] if execution else None,
        observed_at=utc_text(datetime.now(UTC)),
        execution=ObservedExecution.from_summary(execution) if execution else None,
    ).as_dict()


def ours(api: MemoryClc, sid: str) -> dict:
    (execution,) = [e for e in api.history[sid] if e.get("_ours")]
    return {k: v for k, v in execution.items() if not k.startswith("_")}
