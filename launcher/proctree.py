"""Which processes exist, read from Linux's /proc: process groups and descendants.

Stopping a component's process group is not enough to know it is gone: Airflow's task
supervisor moves each task into a group of its own (``setpgid``), and a group leader can exit
while other members live on. So a stop records every member and descendant first, and waits
until each of them is gone. A zombie counts as gone (it holds no port and no memory); a pid
reused by a new process is told apart by its start time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    #: clock ticks after boot: with the pid, identifies one process even if the pid is reused
    start: int


def read(pid: int) -> ProcInfo | None:
    """The process ``pid``, or None when it is gone or a zombie."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ..." — comm may contain spaces and parentheses
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return ProcInfo(pid=pid, ppid=int(fields[1]), pgid=int(fields[2]), start=int(fields[19]))


def snapshot() -> list[ProcInfo]:
    """Every live process on the machine."""
    infos = (read(int(entry)) for entry in os.listdir(PROC) if entry.isdigit())
    return [info for info in infos if info is not None]


def family(pid: int, procs: list[ProcInfo] | None = None) -> set[ProcInfo]:
    """Process ``pid``, the members of the group it leads, and every descendant, whatever their group."""
    procs = snapshot() if procs is None else procs
    found = {p for p in procs if pid in (p.pid, p.pgid)}
    children: dict[int, list[ProcInfo]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    todo = list(found)
    while todo:
        for child in children.get(todo.pop().pid, []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(proc: ProcInfo) -> bool:
    """True while this very process (same pid and start time) runs."""
    now = read(proc.pid)
    return now is not None and now.start == proc.start
