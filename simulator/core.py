"""The simulator model: one object owning the fleet, jobs, executions, e-mails and faults.

No HTTP here: the routers translate requests into calls on :class:`Simulator` and render
what it returns. Time-driven changes are kept in a heap of due events that ``advance()``
applies lazily (on every request and from a sleeping ticker), so nothing busy-loops and
10,000 idle servers cost nothing.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from simulator import emails
from simulator.auth import DEFAULT_LIFETIME, AuthError, Principal, TokenService
from simulator.clock import Clock, iso
from simulator.entities import Account, Group, Server, Snapshot, User, hex_id
from simulator.errors import (
    BAD_LOGIN_MESSAGE,
    CANNOT_QUEUE_MESSAGE,
    ApiError,
    bad_request,
    forbidden,
    not_found,
    unauthorized,
)
from simulator.executions import Execution, ReadPhase, plan_execution
from simulator.faults import FaultKind, FaultRegistry, FaultRule, FaultSpecError
from simulator.fleet_file import FleetSpec, path_key
from simulator.jobs import Job
from simulator.oscatalog import (
    KNOWN_PACKAGES,
    OPERATOR_ROLES,
    canonical_package,
    is_patch_package,
    lookup_os,
)
from simulator.patch_state import cut_off_active_execution, installed_patches, roll_back
from simulator.persistence import StateStore
from simulator.timeline import record_maintenance

log = logging.getLogger("clc_simulator")

STATE_VERSION = 1
#: simulated seconds each server takes inside a job, per operation (shape of reference §6.2)
OP_SECONDS = {
    "powerOn": 20,
    "powerOff": 15,
    "shutDown": 30,
    "reboot": 60,
    "reset": 15,
    "pause": 30,
    "startMaintenance": 4,
    "stopMaintenance": 8,
    "setMaintenance": 6,
    "createSnapshot": 120,
    "restoreSnapshot": 40,
    "deleteSnapshot": 30,
    "executePackage": 5,
}
POWER_OPS = ("powerOn", "powerOff", "shutDown", "reboot", "reset", "pause")
MAINTENANCE_OPS = ("startMaintenance", "stopMaintenance", "setMaintenance")
SNAPSHOT_EXISTS_MESSAGE = "Server already has a snapshot."
SNAPSHOT_TOO_BIG_MESSAGE = "Snapshots are not supported on servers with more than 1 TB of storage."
PACKAGE_OS_MESSAGE = "The package is not supported on the operating system of this server."


@dataclass
class SimulatorSettings:
    seed: int = 0
    time_scale: float = 1.0
    token_lifetime: int = DEFAULT_LIFETIME
    state_file: str | None = None
    #: simulated seconds a new job stays ``notStarted``
    queue_delay: float = 2.0
    #: shuffle batch response arrays like the real API did (§6.1)
    shuffle_batch_order: bool = True
    #: refuse (isQueued:false) instead of failing the job for unsupported OS / wrong package (§12 #15)
    strict_package_os: bool = False


def _empty_counters() -> dict:
    return {
        "requests": {},
        "executions_per_server": {},
        "duplicate_executions_rejected": {},
        "operations_queued": {},
        "faults_injected": {},
        "logins": {"succeeded": 0, "failed": 0},
        # patch summary reads by where the server's newest execution stood (``ReadPhase``), detail
        # reads by where theirs did; the first read showing an execution completed is
        # "completion_seen", with its delay past the end (simulated s)
        "summary_reads": {},
        "detail_reads": {},
        "completion_seen_after": [],
        "emails": {"outbox": 0, "smtp_sent": 0, "smtp_failed": 0},
    }


class Simulator:
    def __init__(
        self,
        fleet: FleetSpec,
        settings: SimulatorSettings | None = None,
        clock: Clock | None = None,
        mailer: Callable[[dict], None] | None = None,
    ):
        self.fleet = fleet
        self.settings = settings or SimulatorSettings()
        self.clock = clock or Clock(start=fleet.clock_start, time_scale=self.settings.time_scale)
        self.faults = FaultRegistry(self.settings.seed)
        secret = hashlib.sha256(f"clc-simulator|{self.settings.seed}|{fleet.digest}".encode()).hexdigest()
        self.tokens = TokenService(secret, self.settings.token_lifetime)
        self.store = StateStore(self.settings.state_file) if self.settings.state_file else None
        self.mailer = mailer
        self.render_cache: dict[str, tuple[tuple, str]] = {}
        self.counters_dirty = False
        self._build_world()
        self._reset_dynamic()
        if self.store is not None:
            saved = self.store.load()
            if saved is not None:
                self.restore_state(saved)
            else:
                self.commit()

    # ------------------------------------------------------------------ world building
    def _build_world(self) -> None:
        fleet = self.fleet
        created = (fleet.clock_start or self.clock.now()) - 90 * 86400
        self.accounts: dict[str, Account] = {}
        self.users: dict[str, User] = {}
        for acc in fleet.accounts:
            self.accounts[acc.alias] = Account(acc.alias, acc.name, acc.parent, acc.primary_data_center)
            for u in acc.users:
                self.users[u.username.lower()] = User(u.username, u.password, u.roles, u.email, acc.alias)
        for alias, account in self.accounts.items():
            account.reachable = {alias}
        for alias in self.accounts:  # permissions flow down to every descendant
            cur = self.accounts[alias].parent
            while cur is not None:
                self.accounts[cur].reachable.add(alias)
                cur = self.accounts[cur].parent
        self.groups: dict[str, Group] = {}
        self.group_by_path: dict[tuple[str, str], str] = {}
        for alias in self.accounts:
            for dc in fleet.data_centers:
                gid = hex_id(alias, dc, "root")
                self.groups[gid] = Group(
                    gid, alias, dc, f"{dc} Hardware", f"{dc} Hardware", "default", None, created
                )
                self.group_by_path[(alias, dc)] = gid
        for g in fleet.groups:
            parent_id = self.group_by_path[(g.account, path_key(g.segments[:-1]))]
            gid = hex_id(g.account, g.path)
            dc = g.segments[0]
            self.groups[gid] = Group(gid, g.account, dc, g.name, g.description, g.type, parent_id, created)
            self.groups[parent_id].children.append(gid)
            self.group_by_path[(g.account, g.path)] = gid
        self.servers: dict[str, Server] = {}
        for s in fleet.servers:
            sid = s.name.lower()
            gid = self.group_by_path[(s.account, s.group_path)]
            server = Server(
                id=sid,
                name=s.name,
                uuid=hex_id("server", sid),
                account=s.account,
                data_center=s.data_center,
                group_id=gid,
                os=s.os,
                description=s.description,
                is_template=s.is_template,
                storage_gb=s.storage_gb,
                cpu=s.cpu,
                memory_mb=s.memory_mb,
                ip=s.ip,
                public_ip=s.public_ip,
                reboot_seconds=s.reboot_seconds,
                scan_seconds=s.scan_seconds,
                patches=s.patches,
                created=created,
                custom_fields=dict(s.custom_fields),
                unhealthy_after_patch=s.unhealthy_after_patch,
                status=s.status,
                power_state=s.power_state,
                in_maintenance=s.in_maintenance,
                modified=created,
            )
            if s.snapshot is not None:  # someone else's snapshot, there before the simulator started
                taken = self.clock.now() - s.snapshot.age
                server.snapshots = [Snapshot(1, taken, taken + s.snapshot.expiration_days * 86400)]
                server.next_snapshot_id = 2
                server.version = 1  # persisted, so its time survives restarts
            self.servers[sid] = server
            self.groups[gid].servers.append(sid)
        self.servers_by_uuid = {s.uuid: s for s in self.servers.values()}
        # recursive count of live servers (§12 #27); static because statuses never change here
        self.servers_count: dict[str, int] = {}
        for gid, group in self.groups.items():
            if group.parent_id is None:
                self._count(gid)
        self.render_cache.clear()

    def _count(self, gid: str) -> int:
        group = self.groups[gid]
        own = sum(1 for sid in group.servers if self.servers[sid].status == "active")
        total = own + sum(self._count(c) for c in group.children)
        self.servers_count[gid] = total
        return total

    def _reset_dynamic(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.executions: dict[str, Execution] = {}
        self.events: list[tuple[float, int, str, dict]] = []
        self.event_seq = 0
        self.outbox: list[dict] = []
        #: server id -> [[when, in maintenance], ...] as applied (simulator/timeline.py)
        self.maintenance_log: dict[str, list[list]] = {}
        self.counters = _empty_counters()
        self.next_job_no = 81001
        self.next_execution_no = 100001
        self.rng = random.Random(self.settings.seed)
        self.faults.clear()
        self.tokens.revoked_before = None  # token revocation is a fault too
        for server in self.servers.values():  # the fleet's own snapshots expire too
            for snap in server.snapshots:
                self._schedule(snap.expires, "snapshot_expire", {"server": server.id, "snapshot": snap.id})

    def reset(self) -> None:
        """Back to the fleet file's initial state; counters, outbox and faults cleared."""
        self._build_world()
        self._reset_dynamic()
        self.commit()

    # ------------------------------------------------------------------ time
    def now(self) -> float:
        return self.clock.now()

    def _schedule(self, when: float, kind: str, payload: dict) -> None:
        self.event_seq += 1
        heapq.heappush(self.events, (when, self.event_seq, kind, payload))

    def next_event_time(self) -> float | None:
        return self.events[0][0] if self.events else None

    def advance(self) -> int:
        """Apply every event that is due at the current simulated time."""
        now = self.clock.now()
        applied = 0
        while self.events and self.events[0][0] <= now:
            when, _, kind, payload = heapq.heappop(self.events)
            self._apply_event(when, kind, payload)
            applied += 1
        return applied

    def _apply_event(self, when: float, kind: str, payload: dict) -> None:
        if kind == "exec_end":
            self._finish_execution(self.executions[payload["execution"]], when)
            return
        server = self.servers.get(payload["server"])
        if server is None:
            return
        op = payload.get("op")
        by = payload.get("by", "simulator")
        if kind == "snapshot_expire":
            server.snapshots = [s for s in server.snapshots if s.id != payload["snapshot"]]
        elif op in ("powerOn", "reboot", "reset"):
            hang = op in ("reboot", "reset") and self.faults.server_fault(
                server.id, FaultKind.NO_RETURN_FROM_REBOOT
            )
            server.power_state = "stopped" if hang else "started"
        elif op in ("powerOff", "shutDown"):
            server.power_state = "stopped"
        elif op == "pause":
            server.power_state = "paused"
        elif op in MAINTENANCE_OPS:
            if self._deferred_until_rebooted(server, when, payload):
                return
            record_maintenance(self.maintenance_log, server, when, bool(payload["value"]))
            server.in_maintenance = bool(payload["value"])
        elif op == "createSnapshot":
            server.snapshot_pending = False
            if not payload.get("fails"):  # fault snapshot_create_fails: no snapshot, job failed
                installed = sorted(installed_patches(server, self.executions, when))
                snap = Snapshot(server.next_snapshot_id, when, when + payload["days"] * 86400, installed)
                server.next_snapshot_id += 1
                server.snapshots = [snap]
                self._schedule(snap.expires, "snapshot_expire", {"server": server.id, "snapshot": snap.id})
        elif op == "restoreBegin":  # the VM stops for the revert (reference §10.2)
            cut_off_active_execution(server, self.executions, when)
            server.power_state = "stopped"
        elif op == "restoreSnapshot":
            if not payload.get("fails"):  # fault restore_fails: back up, but nothing rolled back
                roll_back(server, payload["installed"], when)
            server.power_state = "started"
        elif op == "deleteSnapshot":
            server.snapshots = [s for s in server.snapshots if s.id != payload["snapshot"]]
            server.snapshots_deleting = [i for i in server.snapshots_deleting if i != payload["snapshot"]]
        server.touch(when, by)

    def _deferred_until_rebooted(self, server: Server, when: float, payload: dict) -> bool:
        """A maintenance change due while a patch reboot is under way waits for the server to
        come back (reference §12 #34); its job keeps ``executing`` until then. A server that
        never returns never gets the change, and the job never ends."""
        ex = self.executions.get(server.active_execution or "")
        back_at = ex.reboot_ends(when) if ex is not None else None
        if back_at is None:
            return False
        job = self.jobs.get(payload.get("job", ""))
        if job is not None:
            job.end = max(job.end, back_at)
        if back_at != math.inf:
            self._schedule(back_at, "op", payload)
        return True

    # ------------------------------------------------------------------ auth & access
    def login(self, username: str, password: str) -> dict:
        user = self.users.get(username.lower()) if isinstance(username, str) else None
        if user is None or user.password != password:
            self.counters["logins"]["failed"] += 1
            self.commit()
            raise bad_request(BAD_LOGIN_MESSAGE)
        account = self.accounts[user.account]
        token = self.tokens.issue(
            username=user.username,
            alias=account.alias,
            location=account.primary_data_center,
            roles=user.roles,
            now=self.now(),
        )
        self.counters["logins"]["succeeded"] += 1
        self.commit()
        return {
            "userName": user.username,
            "accountAlias": account.alias,
            "locationAlias": account.primary_data_center,
            "roles": list(user.roles),
            "bearerToken": token,
        }

    def authenticate(self, authorization: str | None) -> Principal:
        try:
            return self.tokens.verify(authorization, self.now(), self.faults.token_max_age())
        except AuthError:
            raise unauthorized() from None

    def require_alias(self, principal: Principal, alias: str, operate: bool = False) -> str:
        """Canonical alias if ``principal`` may reach it (own account or a descendant), else 403."""
        wanted = alias.upper()
        account = self.accounts.get(principal.alias)
        if account is None or wanted not in account.reachable:
            raise forbidden(f"The user is not authorized to access account '{wanted}'.")
        if operate and not OPERATOR_ROLES.intersection(principal.roles):
            raise forbidden("The user's roles do not permit this operation.")
        return wanted

    # ------------------------------------------------------------------ lookups
    def server_in(self, alias: str, server_id: str) -> Server | None:
        server = self.servers.get(server_id.lower())
        if server is None or server.account != alias:
            return None
        return server

    def power_now(self, server: Server, now: float | None = None) -> str:
        now = self.now() if now is None else now
        if server.active_execution:
            ex = self.executions[server.active_execution]
            if ex.is_rebooting(now):
                return "stopped"
        return server.power_state

    def patch_pending(self, server: Server) -> bool:
        return server.active_execution is not None

    def get_job(self, alias: str, job_id: str) -> Job:
        job = self.jobs.get(job_id.lower())
        if job is None or job.alias != alias:
            raise not_found()
        return job

    # ------------------------------------------------------------------ batch operations
    def _new_job(self, alias: str, kind: str, servers: list[Server], per_server: float) -> Job:
        now = self.now()
        job_id = f"{servers[0].data_center.lower()}-{self.next_job_no}"
        self.next_job_no += 1
        backlog, rule_ids = self.faults.take_queue_delay()
        if rule_ids:
            self.count_fault(rule_ids)
        start = now + self.settings.queue_delay + backlog
        job = Job(
            job_id,
            alias,
            kind,
            now,
            start,
            start + per_server * len(servers),
            "succeeded",
            [s.id for s in servers],
        )
        self.jobs[job_id] = job
        return job

    def _queued_entry(self, alias: str, server_id: str, job_id: str) -> dict:
        href = f"/v2/operations/{alias.lower()}/status/{job_id}"
        return {
            "server": server_id,
            "isQueued": True,
            "links": [{"rel": "status", "href": href, "id": job_id}],
        }

    @staticmethod
    def _refused_entry(server_id: str, message: str | None) -> dict:
        entry: dict = {"server": server_id, "isQueued": False}
        if message is not None:
            entry["errorMessage"] = message
        return entry

    def _finish_batch(self, results: list[dict]) -> tuple[list[dict], bool]:
        if self.settings.shuffle_batch_order and len(results) > 1:
            self.rng.shuffle(results)
        queued = any(r["isQueued"] for r in results)
        self.commit()
        return results, queued

    def _check_power_op(self, op: str, server: Server, now: float) -> tuple[bool, str | None]:
        """(queue?, errorMessage) for a power operation; (False, None) is a no-op."""
        if server.is_template or server.status != "active" or self.patch_pending(server):
            return False, CANNOT_QUEUE_MESSAGE
        power = self.power_now(server, now)
        desired = {"powerOn": "started", "powerOff": "stopped", "shutDown": "stopped", "pause": "paused"}
        if op in desired and power == desired[op]:
            return False, None
        allowed_from = {
            "powerOn": ("stopped", "paused"),
            "powerOff": ("started", "paused"),
            "shutDown": ("started",),
            "reboot": ("started",),
            "reset": ("started", "paused"),
            "pause": ("started",),
        }[op]
        if power not in allowed_from:
            return False, CANNOT_QUEUE_MESSAGE
        return True, None

    def _check_maintenance(self, server: Server, value: bool, now: float) -> tuple[bool, str | None]:
        """Maintenance changes are queued whatever the power or reboot state (§12 #34); the
        ``refuse_during_reboot`` fault makes the platform refuse them during a patch reboot."""
        if server.is_template or server.status != "active":
            return False, CANNOT_QUEUE_MESSAGE
        if self._refused_during_reboot(server, now):
            return False, CANNOT_QUEUE_MESSAGE
        if server.in_maintenance == value:
            return False, None
        return True, None

    def _refused_during_reboot(self, server: Server, now: float) -> bool:
        ex = self.executions.get(server.active_execution or "")
        if ex is None or not ex.is_rebooting(now):
            return False
        return self._operation_fault(FaultKind.REFUSE_DURING_REBOOT, server)

    def _operation_fault(self, kind: FaultKind, server: Server) -> bool:
        """Does an opt-in fault of ``kind`` hit this operation on ``server``? (counted)"""
        rule = self.faults.take_operation_fault(kind, server.id)
        if rule is None:
            return False
        self.count_fault([rule.id])
        return True

    def _unique(self, ids: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for sid in ids:
            seen.setdefault(sid.lower(), None)
        return list(seen)

    def server_operation(
        self,
        principal: Principal,
        alias: str,
        op: str,
        server_ids: list[str],
        maintenance_values: dict[str, bool] | None = None,
    ) -> tuple[list[dict], bool]:
        """Power and maintenance operations (reference §6). Returns (array, any queued)."""
        now = self.now()
        results: list[dict] = []
        accepted: list[tuple[Server, dict]] = []
        for sid in self._unique(server_ids):
            server = self.server_in(alias, sid)
            if server is None:
                results.append(self._refused_entry(sid, CANNOT_QUEUE_MESSAGE))
                continue
            payload: dict[str, object]
            if op in POWER_OPS:
                ok, msg = self._check_power_op(op, server, now)
                payload = {"server": server.id, "op": op, "by": principal.username}
            else:
                value = {"startMaintenance": True, "stopMaintenance": False}.get(op)
                if value is None:
                    value = (maintenance_values or {})[sid]
                ok, msg = self._check_maintenance(server, value, now)
                payload = {"server": server.id, "op": op, "value": value, "by": principal.username}
            if not ok:
                results.append(self._refused_entry(server.id, msg))
                continue
            accepted.append((server, payload))
        if accepted:
            job = self._new_job(alias, op, [s for s, _ in accepted], OP_SECONDS[op])
            for i, (server, payload) in enumerate(accepted):
                payload["job"] = job.id
                self._schedule(job.start + (i + 1) * OP_SECONDS[op], "op", payload)
                results.append(self._queued_entry(alias, server.id, job.id))
            self._bump("operations_queued", op, len(accepted))
        return self._finish_batch(results)

    def create_snapshot(self, principal: Principal, alias: str, server_ids: list[str], days: int):
        now = self.now()
        results: list[dict] = []
        accepted: list[Server] = []
        for sid in self._unique(server_ids):
            server = self.server_in(alias, sid)
            if server is None or server.is_template or server.status != "active":
                results.append(self._refused_entry(sid, CANNOT_QUEUE_MESSAGE))
            elif server.storage_gb > 1024:
                results.append(self._refused_entry(server.id, SNAPSHOT_TOO_BIG_MESSAGE))
            elif server.snapshot_pending or self._keeps_a_snapshot(server, now):
                results.append(self._refused_entry(server.id, SNAPSHOT_EXISTS_MESSAGE))
            else:
                accepted.append(server)
        if accepted:
            job = self._new_job(alias, "createSnapshot", accepted, OP_SECONDS["createSnapshot"])
            for i, server in enumerate(accepted):
                server.snapshot_pending = True
                payload = {
                    "server": server.id,
                    "op": "createSnapshot",
                    "days": days,
                    "by": principal.username,
                }
                if self._operation_fault(FaultKind.SNAPSHOT_CREATE_FAILS, server):
                    payload["fails"] = True
                    job.final_status = "failed"
                self._schedule(job.start + (i + 1) * OP_SECONDS["createSnapshot"], "op", payload)
                results.append(self._queued_entry(alias, server.id, job.id))
            self._bump("operations_queued", "createSnapshot", len(accepted))
        return self._finish_batch(results)

    @staticmethod
    def _keeps_a_snapshot(server: Server, now: float) -> bool:
        """A live snapshot that is not queued for deletion: the SDK deletes the old snapshot
        and asks for the new one at once, and the platform queues the two in that order."""
        return any(s.expires > now and s.id not in server.snapshots_deleting for s in server.snapshots)

    def snapshot_action(
        self, principal: Principal, alias: str, server_id: str, snapshot_id: str, action: str
    ) -> dict:
        """Revert to / delete a snapshot: one job, answered with a single status link (§10.2-10.3).

        A restore stops the server when its turn comes and brings it back ``started`` with the
        snapshot's patch state when the job ends (faults: ``restore_fails`` ends it ``failed``
        with nothing rolled back; ``restore_hangs`` never ends it and the server stays stopped)."""
        server = self.server_in(alias, server_id)
        if server is None:
            raise not_found()
        snap = next((s for s in server.snapshots if str(s.id) == snapshot_id.strip()), None)
        if snap is None:
            raise not_found()
        op = "restoreSnapshot" if action == "restore" else "deleteSnapshot"
        job = self._new_job(alias, op, [server], OP_SECONDS[op])
        if op == "deleteSnapshot" and snap.id not in server.snapshots_deleting:
            server.snapshots_deleting.append(snap.id)
        payload = {"server": server.id, "op": op, "snapshot": snap.id, "by": principal.username}
        if op == "restoreSnapshot":
            self._schedule(job.start, "op", {**payload, "op": "restoreBegin"})
            payload["installed"] = list(snap.installed)
            if self._operation_fault(FaultKind.RESTORE_HANGS, server):
                job.end = math.inf
            elif self._operation_fault(FaultKind.RESTORE_FAILS, server):
                payload["fails"] = True
                job.final_status = "failed"
        if job.end != math.inf:
            self._schedule(job.end, "op", payload)
        self._bump("operations_queued", op, 1)
        self.commit()
        return {"rel": "status", "href": f"/v2/operations/{alias.lower()}/status/{job.id}", "id": job.id}

    # ------------------------------------------------------------------ execute package
    def execute_package(
        self,
        principal: Principal,
        alias: str,
        server_ids: list[str],
        package_id: str,
        parameters: dict[str, str],
    ) -> tuple[list[dict], bool]:
        package = canonical_package(package_id)
        if package not in KNOWN_PACKAGES:
            raise bad_request(
                f"The package '{package_id}' does not exist or is not available to this account."
            )
        patching = is_patch_package(package)
        now = self.now()
        results: list[dict] = []
        accepted: list[tuple[Server, bool]] = []  # (server, will patch)
        for sid in self._unique(server_ids):
            server = self.server_in(alias, sid)
            if server is None or server.is_template or server.status != "active":
                results.append(self._refused_entry(sid, CANNOT_QUEUE_MESSAGE))
                continue
            if self.power_now(server, now) != "started":
                results.append(self._refused_entry(server.id, CANNOT_QUEUE_MESSAGE))
                continue
            if patching and self.patch_pending(server):
                # a patch run is still pending on this server: refuse and count (see docs/simulator.md)
                self._bump("duplicate_executions_rejected", server.id, 1)
                results.append(self._refused_entry(server.id, CANNOT_QUEUE_MESSAGE))
                continue
            info = lookup_os(server.os)
            fits = info is not None and info.patch_package == package
            if patching and not fits and self.settings.strict_package_os:
                results.append(self._refused_entry(server.id, PACKAGE_OS_MESSAGE))
                continue
            accepted.append((server, patching and fits))
        if accepted:
            per = OP_SECONDS["executePackage"]
            job = self._new_job(alias, "executePackage", [s for s, _ in accepted], per)
            for i, (server, will_patch) in enumerate(accepted):
                results.append(self._queued_entry(alias, server.id, job.id))
                if patching:
                    self._bump("executions_per_server", server.id, 1)
                    if will_patch:
                        self._start_execution(principal, alias, server, package, job, job.start + i * per)
                    else:
                        job.final_status = "failed"  # unsupported OS or wrong package (§12 #15)
            self._bump("operations_queued", "executePackage", len(accepted))
        return self._finish_batch(results)

    def _start_execution(
        self, principal: Principal, alias: str, server: Server, package: str, job: Job, start: float
    ) -> Execution:
        info = lookup_os(server.os)
        assert info is not None
        ex_id = f"{server.data_center}-{self.next_execution_no:06d}"
        self.next_execution_no += 1
        ex = plan_execution(
            execution_id=ex_id,
            server_id=server.id,
            alias=alias,
            package=package,
            requested_by=principal.username,
            requested=self.now(),
            start=start,
            os_info=info,
            patches=server.patches,
            scan_seconds=server.scan_seconds,
            reboot_seconds=server.reboot_seconds,
            installed=installed_patches(server, self.executions, self.now()),
        )
        self.executions[ex_id] = ex
        server.executions.append(ex_id)
        server.active_execution = ex_id
        server.touch(self.now(), principal.username)
        self._apply_server_faults(ex)
        self._schedule(ex.end, "exec_end", {"execution": ex_id})
        user = self.users.get(principal.username.lower())
        mail = emails.requested_email(
            now=self.now(),
            to=user.email if user else principal.username,
            alias=alias,
            server_name=server.name,
            execution_id=ex_id,
            package=package,
            job_id=job.id,
        )
        self._send(mail)
        return ex

    def _finish_execution(self, ex: Execution, when: float) -> None:
        if ex.finished or ex.halt_at is not None:
            return  # halted executions stay pending forever
        ex.finished = True
        server = self.servers.get(ex.server)
        if server is None:
            return
        if server.active_execution == ex.id:
            server.active_execution = None
        server.touch(when, "patching")
        user = self.users.get(ex.requested_by.lower())
        final = ex.final_attempts()  # a patch retried successfully is installed, not failed
        installed = [p.begin_message for p in final if p.ok]
        failed = [p.begin_message for p in final if not p.ok]
        mail = emails.completed_email(
            now=when,
            to=user.email if user else ex.requested_by,
            alias=ex.alias,
            server_name=server.name,
            execution_id=ex.id,
            installed=installed,
            failed=failed,
            reboots=ex.reboot_count(when),
            start=ex.start,
        )
        self._send(mail)
        self.commit()

    def _apply_server_faults(self, ex: Execution) -> None:
        now = self.now()
        if not ex.breaks_health and self.faults.server_fault(ex.server, FaultKind.UNHEALTHY_AFTER_PATCH):
            ex.breaks_health = True
        if ex.is_completed(now) or ex.halt_at is not None:
            return
        if self.faults.server_fault(ex.server, FaultKind.STUCK_EXECUTION):
            ex.halt_at = max(now, ex.initiations[-1].start + 1)
        elif self.faults.server_fault(ex.server, FaultKind.NO_RETURN_FROM_REBOOT):
            for init in ex.initiations:
                if init.reboot and init.reboot[1] > now:
                    ex.halt_at = max(now, init.reboot[0] + 1)
                    break

    def health(self, server: Server, now: float) -> tuple[bool, str]:
        """What the server's own health endpoint says (``GET /health/{id}``): not active, not
        powered on, or patched while it is set to break (fleet ``unhealthy_after_patch`` or the
        fault of that name) → unhealthy."""
        if server.status != "active":
            return False, f"server is {server.status}"
        power = self.power_now(server, now)
        if power != "started":
            return False, f"server is {power}"
        for ex_id in server.executions:
            ex = self.executions.get(ex_id)
            if ex is not None and ex.is_completed(now) and (ex.breaks_health or server.unhealthy_after_patch):
                return False, f"service unhealthy since patch execution {ex.id} completed"
        return True, "ok"

    # ------------------------------------------------------------------ patching service reads
    def patch_summary(self, alias: str, server_id: str) -> list[dict]:
        server = self.server_in(alias, server_id)
        if server is None:
            raise not_found()
        now = self.now()
        items = sorted((self.executions[e] for e in server.executions), key=lambda e: e.start)
        self.count_read("summary_reads", items[-1] if items else None, now)
        return [ex.summary(now) for ex in items if ex.start <= now]

    def count_read(self, counter: str, execution: Execution | None, now: float) -> None:
        """How a client's reads (``summary_reads``: of the server's newest execution;
        ``detail_reads``) fall on the executions' course: what a read plan is judged by."""
        phase = "no_execution" if execution is None else execution.phase(now)
        if execution is not None and phase == ReadPhase.COMPLETED and not execution.seen_completed:
            execution.seen_completed = True
            phase = "completion_seen"
            self.counters["completion_seen_after"].append(round(now - execution.end, 1))
        self._bump(counter, phase, 1)
        self.counters_dirty = True

    def patch_detail(self, alias: str, server_id: str, execution_id: str) -> dict:
        server = self.server_in(alias, server_id)
        if server is None:
            raise not_found()
        ex = self.executions.get(execution_id.strip().upper())
        now = self.now()
        if ex is None or ex.server != server.id or ex.start > now:
            raise not_found()
        self.count_read("detail_reads", ex, now)
        return ex.detail(now)

    # ------------------------------------------------------------------ e-mail, counters, faults
    def _send(self, mail: dict) -> None:
        mail["id"] = len(self.outbox) + 1
        self.outbox.append(mail)
        self.counters["emails"]["outbox"] += 1
        if self.mailer is not None:
            try:
                self.mailer(mail)
            except Exception as exc:  # delivery problems never break the simulator
                log.warning("e-mail hand-off failed: %s", exc)

    def smtp_result(self, ok: bool) -> None:
        self.counters["emails"]["smtp_sent" if ok else "smtp_failed"] += 1
        self.counters_dirty = True

    def _bump(self, counter: str, key: str, n: int) -> None:
        bucket = self.counters[counter]
        bucket[key] = bucket.get(key, 0) + n

    def count_request(self, route_key: str, status: int) -> None:
        per_route = self.counters["requests"].setdefault(route_key, {})
        code = str(status)
        per_route[code] = per_route.get(code, 0) + 1
        self.counters_dirty = True

    def count_fault(self, rule_ids: list[int]) -> None:
        for rid in rule_ids:
            self._bump("faults_injected", str(rid), 1)
        self.counters_dirty = True

    def add_fault(self, body: dict) -> dict:
        """Register a fault (see faults.py); returns what the admin API answers."""
        if isinstance(body, dict) and body.get("kind") == FaultKind.REVOKE_TOKENS:
            extra = set(body) - {"kind"}
            if extra:
                raise FaultSpecError(f"{sorted(extra)[0]}: not a field of a 'revoke_tokens' action")
            revoked_before = self.tokens.revoke_all(self.now())
            self.commit()
            return {"kind": "revoke_tokens", "revoked_before": iso(revoked_before)}
        rule: FaultRule = self.faults.add(body)
        if rule.server:
            server = self.servers.get(rule.server)
            if server is not None and server.active_execution:
                self._apply_server_faults(self.executions[server.active_execution])
                server.version += 1
            self.commit()
        return rule.to_dict()

    # ------------------------------------------------------------------ persistence
    def commit(self) -> None:
        """Persist everything before the response is sent (no-op without --state-file)."""
        self.counters_dirty = False
        if self.store is not None:
            self.store.save(self.dump_state())

    def flush_counters(self) -> None:
        if self.counters_dirty:
            self.commit()

    def dump_state(self) -> dict:
        return {
            "version": STATE_VERSION,
            "fleet_digest": self.fleet.digest,
            "fleet_source": self.fleet.source,
            "clock": self.clock.to_dict(),
            "tokens": self.tokens.to_dict(),
            "counters": self.counters,
            "outbox": self.outbox,
            "maintenance_log": self.maintenance_log,
            "jobs": [j.to_dict() for j in self.jobs.values()],
            "executions": [e.to_dict() for e in self.executions.values()],
            "events": [[t, seq, kind, payload] for t, seq, kind, payload in self.events],
            "event_seq": self.event_seq,
            "next_job_no": self.next_job_no,
            "next_execution_no": self.next_execution_no,
            "servers": {s.id: s.dump_mutable() for s in self.servers.values() if s.version},
            "settings": {
                "shuffle_batch_order": self.settings.shuffle_batch_order,
                "strict_package_os": self.settings.strict_package_os,
            },
        }

    def restore_state(self, data: dict) -> None:
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state file {self.store.path if self.store else ''}: unsupported version")
        if data.get("fleet_digest") != self.fleet.digest:
            raise ValueError(
                f"state file {self.store.path if self.store else ''} was written for a different fleet "
                f"({data.get('fleet_source')}); delete it or start with the same fleet"
            )
        self.clock.restore(data["clock"])
        self.tokens.restore(data.get("tokens", {}))
        self.counters = {**_empty_counters(), **data.get("counters", {})}
        self.outbox = data.get("outbox", [])
        self.maintenance_log = data.get("maintenance_log", {})
        self.jobs = {j["id"]: Job.from_dict(j) for j in data.get("jobs", [])}
        self.executions = {e["id"]: Execution.from_dict(e) for e in data.get("executions", [])}
        self.events = [(t, seq, kind, payload) for t, seq, kind, payload in data.get("events", [])]
        heapq.heapify(self.events)
        self.event_seq = data.get("event_seq", 0)
        self.next_job_no = data.get("next_job_no", self.next_job_no)
        self.next_execution_no = data.get("next_execution_no", self.next_execution_no)
        for sid, mutable in data.get("servers", {}).items():
            if sid in self.servers:
                self.servers[sid].load_mutable(mutable)
        for key, value in data.get("settings", {}).items():
            setattr(self.settings, key, value)
        self.render_cache.clear()

    # ------------------------------------------------------------------ admin views
    def state_view(self) -> dict:
        now = self.now()
        return {
            "now": now,
            "servers": {
                s.id: {
                    "account": s.account,
                    "powerState": self.power_now(s, now),
                    "inMaintenanceMode": s.in_maintenance,
                    "status": s.status,
                    "snapshots": [x.to_dict() for x in s.snapshots],
                    "activeExecution": s.active_execution,
                    "executions": list(s.executions),
                    "installedPatches": sorted(installed_patches(s, self.executions, now)),
                }
                for s in self.servers.values()
            },
            "jobs": {
                j.id: {"kind": j.kind, "status": j.status(now), "servers": j.servers}
                for j in self.jobs.values()
            },
            "executions": {
                e.id: {"server": e.server, **e.summary(now), "halted": e.halt_at is not None}
                for e in self.executions.values()
            },
            "pending_events": len(self.events),
            "settings": {
                "seed": self.settings.seed,
                "time_scale": self.clock.time_scale,
                "shuffle_batch_order": self.settings.shuffle_batch_order,
                "strict_package_os": self.settings.strict_package_os,
                "state_file": self.settings.state_file,
            },
        }


__all__ = ["ApiError", "Simulator", "SimulatorSettings"]
