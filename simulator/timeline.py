"""What really happened on each server, in time: executions and maintenance-mode intervals.

A benchmark judges a client (patchflow, or a script on the published SDK) by the simulator's
own record, not by what the client believes: when each server's execution ran, and whether the
server was in maintenance all along. Maintenance changes are recorded as they are applied
(``record_maintenance``); executions already carry their planned start and end.
Every instant is given on the simulated clock and, for a client timing itself on the wall
clock, converted to wall time with the clock's current scale.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulator.core import Simulator
    from simulator.entities import Server


def record_maintenance(log: dict[str, list[list[Any]]], server: Server, when: float, value: bool) -> None:
    """Note a maintenance change about to be applied to ``server`` (no-op when unchanged)."""
    if server.in_maintenance != value:
        log.setdefault(server.id, []).append([when, value])


def maintenance_intervals(
    initially_on: bool, changes: list[list[Any]], now: float
) -> list[tuple[float | None, float | None]]:
    """``(on, off)`` intervals; ``on`` None = on since before the simulator started, ``off``
    None = still on at ``now``."""
    intervals: list[tuple[float | None, float | None]] = []
    on_since: float | None = None
    on = initially_on
    for when, value in changes:
        if value and not on:
            on_since = when
        elif on and not value:
            intervals.append((on_since, when))
            on_since = None
        on = bool(value)
    if on:
        intervals.append((on_since, None))
    return intervals


def timeline_view(sim: Simulator, server_id: str | None = None) -> dict[str, Any]:
    """The admin API's ``/_sim/timeline``: per server that was patched or had its maintenance
    changed, its executions and maintenance intervals (sim epoch, and ``*_wall`` wall epoch)."""
    now = sim.now()
    wall = sim.clock.wall_at
    log = sim.maintenance_log
    initial = {s.name.lower(): s.in_maintenance for s in sim.fleet.servers}
    wanted = (
        [server_id.lower()]
        if server_id
        else sorted(set(log) | {sid for sid, s in sim.servers.items() if s.executions or s.in_maintenance})
    )
    servers: dict[str, Any] = {}
    for sid in wanted:
        server = sim.servers.get(sid)
        if server is None:
            continue
        changes = log.get(sid, [])
        initially_on = (not changes[0][1]) if changes else server.in_maintenance
        executions = []
        for ex_id in server.executions:
            ex = sim.executions[ex_id]
            completed = ex.is_completed(now)
            executions.append(
                {
                    "id": ex.id,
                    "package": ex.package,
                    "requested": ex.requested,
                    "start": ex.start,
                    "end": ex.end if ex.halt_at is None else None,
                    "completed": completed,
                    "halted": ex.halt_at is not None,
                    "requested_wall": wall(ex.requested),
                    "start_wall": wall(ex.start),
                    "end_wall": wall(ex.end) if ex.halt_at is None else None,
                }
            )
        maintenance = [
            {
                "on": on,
                "off": off,
                "on_wall": None if on is None else wall(on),
                "off_wall": None if off is None else wall(off),
            }
            for on, off in maintenance_intervals(initially_on, changes, now)
        ]
        servers[sid] = {
            "initially_in_maintenance": initial.get(sid, initially_on),
            "executions": executions,
            "maintenance": maintenance,
        }
    return {"now": now, "now_wall": wall(now), "time_scale": sim.clock.time_scale, "servers": servers}
