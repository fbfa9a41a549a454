"""Run the simulator as a real HTTP server (uvicorn), print the ready line, stop cleanly.

A sleeping ticker applies due events (e.g. an execution finishing, so that its e-mail
goes out) without any request arriving; it sleeps until the next due event, at most 1 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time

import uvicorn

from simulator.app import create_app
from simulator.core import Simulator

log = logging.getLogger("clc_simulator")
READY_PREFIX = "CLC simulator ready at "


class _Server(uvicorn.Server):
    """uvicorn server whose signal handling ends in a clean exit 0 (no re-raised signal)."""

    @contextlib.contextmanager
    def capture_signals(self):
        def stop(signum, frame):
            self.should_exit = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


async def _ticker(sim: Simulator, stop: asyncio.Event) -> None:
    last_flush = time.monotonic()
    while not stop.is_set():
        try:
            sim.advance()
            if time.monotonic() - last_flush >= 1.0:  # read-only counters: at most one write a second
                sim.flush_counters()
                last_flush = time.monotonic()
        except Exception:  # keep ticking; a bad event must not kill the server
            log.exception("tick failed")
        nxt = sim.next_event_time()
        delay = 1.0 if nxt is None else min(1.0, max(0.01, sim.clock.wall_seconds_until(nxt)))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)


async def serve(sim: Simulator, host: str = "127.0.0.1", port: int = 8899, access_log: bool = False) -> None:
    app = create_app(sim)
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP,
    # and without it every response waits ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    actual_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=access_log,
        lifespan="off",
        timeout_graceful_shutdown=3,
        date_header=False,  # the app sends Date on the simulated clock, like the API it stands in for
    )
    server = _Server(config)
    stop = asyncio.Event()
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started and not serving.done():
        await asyncio.sleep(0.01)
    if serving.done():
        await serving
        return
    ticker = asyncio.create_task(_ticker(sim, stop))
    sys.stdout.write(f"{READY_PREFIX}http://{host}:{actual_port}\n")
    sys.stdout.flush()
    try:
        await serving
    finally:
        stop.set()
        await ticker
        sim.commit()
