"""`make up`'s options: command line over PATCHFLOW_* variables over defaults, checked before any start."""

from __future__ import annotations

import json
import socket

import pytest

from launcher.ports import free_port
from launcher.up import Settings, busy_ports_message, local_host, parse_args


def test_defaults_are_the_documented_ports_on_loopback():
    s = parse_args([], {})
    assert (s.port, s.sim_port, s.bind) == (8080, 8899, "127.0.0.1")


def test_environment_variables_choose_ports_and_address():
    env = {"PATCHFLOW_PORT": "8081", "PATCHFLOW_SIM_PORT": "8900", "PATCHFLOW_BIND": "0.0.0.0"}
    s = parse_args([], env)
    assert (s.port, s.sim_port, s.bind) == (8081, 8900, "0.0.0.0")


def test_the_command_line_wins_over_the_environment():
    s = parse_args(["--port", "9001", "--sim-port", "9002"], {"PATCHFLOW_PORT": "8081"})
    assert (s.port, s.sim_port) == (9001, 9002)


@pytest.mark.parametrize(
    ("argv", "env", "says"),
    [
        (["--port", "99999"], {}, "not a TCP port: '99999'"),
        ([], {"PATCHFLOW_SIM_PORT": "http"}, "not a TCP port: 'http'"),
        (["--port", "8899"], {}, "both 8899"),
    ],
)
def test_bad_ports_are_refused_with_a_usage_error(argv, env, says, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv, env)
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err


def test_a_busy_port_is_named_with_the_way_to_choose_another():
    free = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        message = busy_ports_message(Settings(port=port, sim_port=free, bind="127.0.0.1"))
        both = busy_ports_message(Settings(port=free, sim_port=port, bind="127.0.0.1"))
    assert "\n" not in message
    assert f"{port} (Airflow UI; choose another with PORT=" in message
    assert str(free) not in message
    assert f"{port} (CLC simulator; choose another with SIM_PORT=" in both


def test_no_message_when_both_ports_are_free():
    assert busy_ports_message(Settings(port=free_port(), sim_port=free_port(), bind="127.0.0.1")) == ""


@pytest.mark.parametrize(
    ("bind", "host"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "[::1]"), ("10.0.0.5", "10.0.0.5")],
)
def test_urls_reach_the_servers_from_this_machine(bind, host):
    assert local_host(bind) == host


def test_the_admin_password_is_known_before_start_and_kept_across_runs(tmp_path):
    """The tasks' airflow_api connection (the run note) logs in with it; a second `make up` keeps it."""
    from launcher.up import admin_password, passwords_file

    first = admin_password(tmp_path / "airflow")
    assert len(first) >= 12
    assert json.loads(passwords_file(tmp_path / "airflow").read_text()) == {"admin": first}
    assert passwords_file(tmp_path / "airflow").stat().st_mode & 0o077 == 0
    assert admin_password(tmp_path / "airflow") == first
