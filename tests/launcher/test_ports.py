"""A port is reported busy exactly when a server could not listen there."""

from __future__ import annotations

import socket

import pytest

from launcher.ports import free_port, port_in_use


@pytest.mark.parametrize("listen_on", ["127.0.0.1", "0.0.0.0"])
def test_a_listening_port_is_in_use_on_loopback(listen_on):
    with socket.socket() as server:
        server.bind((listen_on, 0))
        server.listen()
        assert port_in_use("127.0.0.1", server.getsockname()[1])


def test_a_port_nobody_listens_on_is_free():
    assert not port_in_use("127.0.0.1", free_port())


def test_a_port_left_by_a_closed_connection_is_free():
    """A server stopped a moment ago leaves TIME_WAIT sockets; restarting on its port must work."""
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = server.accept()
        conn.close()  # the server side closes first: its end stays in TIME_WAIT
        client.close()
    assert not port_in_use("127.0.0.1", port)
