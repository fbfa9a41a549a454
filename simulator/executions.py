"""Patching executions: the plan of initiations/patches/reboots and its view at time t.

When a patch package starts on a server the whole run is planned up front, from the
server's pending patches: initiation 1 scans and installs the patches of cycle 1, the
server reboots, initiation 2 installs the next batch ... and a last initiation finds
nothing ("Installed 0 updates"), which completes the execution. Everything a client can
read (summary, detail, power state while rebooting) is then a pure function of the
simulated time, so state advances lazily and survives restarts.

RHEL/CentOS runs never install ``kernel*`` or ``nss*`` packages (they stay pending).
A patch with ``failure: fail`` is attempted once and reported ``failed`` (result code 4);
``fail_once`` fails, is retried in the next initiation and then succeeds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum

from simulator.clock import iso
from simulator.fleet_file import PatchSpec
from simulator.oscatalog import OsInfo

# Microsoft OperationResultCode values (reference §9.3)
RESULT_IN_PROGRESS = "1"
RESULT_SUCCEEDED = "2"
RESULT_FAILED = "4"

BOOT_SETTLE_SECONDS = 30  # from "server is up again" to the next initiation
PATCH_GAP_SECONDS = 1


class ReadPhase(StrEnum):
    """Where an execution stood when a client read the summary (the simulator's read counters)."""

    NOT_STARTED = "not_started"
    SCANNING = "scanning"
    INSTALLING = "installing"
    BETWEEN = "between_initiations"
    LAST_SCAN = "last_scan"
    COMPLETED = "completed"


@dataclass
class PatchRun:
    start: float
    end: float
    begin_message: str
    installed_as: str  # name listed in init_end_message (NEVRA or update URL)
    ok: bool
    key: str = ""  # PatchSpec.key: what the server's patch state records once it is installed


@dataclass
class Initiation:
    start: float
    end: float
    begin_message: str
    patches: list[PatchRun] = field(default_factory=list)
    reboot: tuple[float, float] | None = None  # (down, up) after this initiation


@dataclass
class Execution:
    id: str  # "VA1-100042"
    server: str  # lower-case server id
    alias: str
    package: str
    requested_by: str
    requested: float
    start: float
    end: float
    initiations: list[Initiation]
    #: simulated instant after which nothing progresses (fault: stuck / no return from reboot)
    halt_at: float | None = None
    finished: bool = False  # completion processed (e-mail sent, server released)
    #: a summary read has shown it completed (``Simulator.count_summary_read``)
    seen_completed: bool = False
    #: the fault ``unhealthy_after_patch`` hit it: the server's health endpoint fails once it completed
    breaks_health: bool = False

    # ----- derived views -------------------------------------------------------------
    def effective(self, now: float) -> float:
        return now if self.halt_at is None else min(now, self.halt_at)

    def is_completed(self, now: float) -> bool:
        return self.halt_at is None and now >= self.end

    def phase(self, now: float) -> str:
        """Where the run stands at ``now``, for counting a client's reads (``ReadPhase``)."""
        if self.is_completed(now):
            return ReadPhase.COMPLETED
        t = self.effective(now)
        for number, init in enumerate(self.initiations):
            if t < init.start:
                return ReadPhase.BETWEEN if number else ReadPhase.NOT_STARTED
            if t <= init.end:
                if init.patches and t >= init.patches[0].start:
                    return ReadPhase.INSTALLING
                return ReadPhase.LAST_SCAN if number == len(self.initiations) - 1 else ReadPhase.SCANNING
        return ReadPhase.BETWEEN

    def is_rebooting(self, now: float) -> bool:
        t = self.effective(now)
        return any(i.reboot is not None and i.reboot[0] <= t < i.reboot[1] for i in self.initiations)

    def reboot_count(self, now: float) -> int:
        t = self.effective(now)
        return sum(1 for i in self.initiations if i.reboot and i.reboot[0] <= t)

    def reboot_ends(self, now: float) -> float | None:
        """When the reboot under way at ``now`` ends: None when not rebooting, ``math.inf``
        when the server never comes back (halted inside that reboot)."""
        t = self.effective(now)
        for init in self.initiations:
            if init.reboot is not None and init.reboot[0] <= t < init.reboot[1]:
                hangs = self.halt_at is not None and self.halt_at < init.reboot[1]
                return math.inf if hangs else init.reboot[1]
        return None

    def final_attempts(self) -> list[PatchRun]:
        """Each patch's last attempt, in first-attempt order: what the patch finally came to
        (a ``fail_once`` patch is listed failed, then installed; its outcome is installed)."""
        last: dict[str, PatchRun] = {}  # dicts keep first-insertion order on update
        for init in self.initiations:
            for patch in init.patches:
                last[patch.begin_message] = patch
        return list(last.values())

    def installed_between(self, after: float, now: float) -> set[str]:
        """Keys of the patches this run installed after ``after`` and by ``now`` (a halted run
        installs nothing past its halt)."""
        t = self.effective(now)
        return {p.key for i in self.initiations for p in i.patches if p.ok and after < p.end <= t}

    def failed_patches(self) -> int:
        """Patches whose last attempt failed."""
        return sum(1 for p in self.final_attempts() if not p.ok)

    def summary(self, now: float) -> dict:
        t = self.effective(now)
        done = self.is_completed(now)
        inits = []
        for init in self.initiations:
            if init.start > t:
                break
            ended = init.end <= t
            installed = [p.installed_as for p in init.patches if p.ok]
            msg = ""
            if ended:
                msg = f"Installed {len(installed)} updates" + (
                    ": " + ", ".join(installed) if installed else ""
                )
            inits.append(
                {
                    "start_time": iso(init.start),
                    "end_time": iso(init.end) if ended else "",
                    "init_begin_message": init.begin_message,
                    "init_end_message": msg,
                }
            )
        return {
            "execution_id": self.id,
            "status": "completed" if done else "pending",
            "start_time": iso(self.start),
            "end_time": iso(self.end) if done else "",
            "init_messages": inits,
        }

    def detail(self, now: float) -> dict:
        t = self.effective(now)
        done = self.is_completed(now)
        patches = []
        for init in self.initiations:
            for p in init.patches:
                if p.start > t:
                    break
                ended = p.end <= t
                if not ended:
                    code, status = RESULT_IN_PROGRESS, "pending"
                elif p.ok:
                    code, status = RESULT_SUCCEEDED, "completed"
                else:
                    code, status = RESULT_FAILED, "failed"
                patches.append(
                    {
                        "start_time": iso(p.start),
                        "end_time": iso(p.end) if ended else "",
                        "patch_begin_message": p.begin_message,
                        "patch_end_message": code,
                        "status": status,
                    }
                )
        return {
            "execution_id": self.id,
            "status": "completed" if done else "pending",
            "start_time": iso(self.start),
            "end_time": iso(self.end) if done else "",
            "duration": format_duration(self.end - self.start) if done else "",
            "begin_message": "Update Process BEGIN",
            "end_message": "Updating Complete" if done else "",
            "patches": patches,
        }

    # ----- persistence -----------------------------------------------------------------
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Execution:
        data = dict(data)
        inits = []
        for i in data.pop("initiations"):
            i = dict(i)
            patches = [PatchRun(**p) for p in i.pop("patches")]
            reboot = tuple(i.pop("reboot")) if i.get("reboot") else None
            i.pop("reboot", None)
            inits.append(Initiation(patches=patches, reboot=reboot, **i))
        return cls(initiations=inits, **data)


def format_duration(seconds: float) -> str:
    total = max(0, math.floor(seconds))
    return f"{total // 60} min {total % 60} sec"


def is_excluded_linux_package(package: str) -> bool:
    """kernel and nss updates are never installed on RHEL/CentOS (reference §9.1)."""
    lower = package.lower()
    return lower.startswith("kernel") or lower.startswith("nss")


def windows_update_url(kb: str, os_info: OsInfo, year: int, month: int) -> str:
    digest = hashlib.sha1(kb.encode(), usedforsecurity=False).hexdigest()
    return (
        f"http://download.windowsupdate.com/c/msdownload/update/software/secu/{year}/{month:02d}/"
        f"{os_info.label}-{kb.lower()}-x64_{digest}.msu"
    )


def plan_execution(
    *,
    execution_id: str,
    server_id: str,
    alias: str,
    package: str,
    requested_by: str,
    requested: float,
    start: float,
    os_info: OsInfo,
    patches: list[PatchSpec],
    scan_seconds: int,
    reboot_seconds: int,
    installed: frozenset[str] | set[str] = frozenset(),
) -> Execution:
    """Plan a whole patch run starting at ``start`` (simulated epoch seconds) from the
    patches the server does not have yet (``installed``: keys already installed)."""
    windows = os_info.family == "windows"
    begin = "Invoking SUS API" if windows else "Invoking yum check-update"
    applicable = [
        p
        for p in patches
        if p.key not in installed and (windows or not is_excluded_linux_package(p.package or p.name))
    ]
    cycles = sorted({p.cycle for p in applicable})
    batches: list[list[tuple[PatchSpec, bool]]] = [
        [(p, p.failure in ("fail", "fail_once")) for p in applicable if p.cycle == c] for c in cycles
    ]
    # fail_once patches fail in their cycle and are retried (successfully) in the next one
    b = 0
    while b < len(batches):
        retries = [(p, False) for p, fails in batches[b] if fails and p.failure == "fail_once"]
        if retries:
            if b + 1 == len(batches):
                batches.append([])
            batches[b + 1] = retries + batches[b + 1]
        b += 1
    batches.append([])  # the final scan that finds nothing left

    inits: list[Initiation] = []
    t = start
    for batch in batches:
        init = Initiation(start=t, end=t, begin_message=begin)
        t += scan_seconds
        for spec, fails in batch:
            title = f"{spec.name} ({spec.kb})" if windows else (spec.package or spec.name)
            if windows:
                when = _month_of(start)
                installed_as = spec.url or windows_update_url(spec.kb or "", os_info, *when)
            else:
                installed_as = spec.package or spec.name
            init.patches.append(PatchRun(t, t + spec.duration, title, installed_as, not fails, spec.key))
            t += spec.duration + PATCH_GAP_SECONDS
        init.end = t
        if batch and any(spec.reboot for spec, _ in batch):
            init.reboot = (t + 5, t + 5 + reboot_seconds)
            t = init.reboot[1] + BOOT_SETTLE_SECONDS
        else:
            t += 5
        inits.append(init)
    end = inits[-1].end
    return Execution(
        id=execution_id,
        server=server_id,
        alias=alias,
        package=package,
        requested_by=requested_by,
        requested=requested,
        start=start,
        end=end,
        initiations=inits,
    )


def _month_of(ts: float) -> tuple[int, int]:
    text = iso(ts)
    return int(text[:4]), int(text[5:7])
