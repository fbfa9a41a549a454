"""Private PostgreSQL and Redis: two test runs on one machine never share or fight over a server."""

from __future__ import annotations

import socket
import subprocess

import pytest

from launcher.services import Services

pytestmark = pytest.mark.slow


def test_a_port_taken_between_pick_and_start_is_replaced_by_another():
    """Another run (or anyone) listening on the picked port: our servers move, never connect to it."""
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        services = Services()
        services.pg_port = services.redis_port = taken
        try:
            services.start()
            assert taken not in (services.pg_port, services.redis_port)
            services.psql("SELECT 1")
            ping = [*services.psql_args(), "-Atc", "SHOW port"]
            assert subprocess.run(ping, capture_output=True, text=True, check=True).stdout.strip() == str(
                services.pg_port
            )
            assert "Ready to accept connections" in (services.folder / "redis.log").read_text()
        finally:
            services.stop()
    assert not services.folder.exists()
