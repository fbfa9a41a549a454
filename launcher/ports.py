"""TCP ports on this machine: a free one for a private server, and whether a chosen one is taken."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody listens on now (the kernel's pick), for a server this project starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    """True when something already listens on ``host:port`` (so a server we start there would die).

    Binds the way uvicorn and aiohttp do (SO_REUSEADDR), so a port a stopped server left in
    TIME_WAIT counts as free, and a listener on the wildcard address counts as taking it.
    """
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False
