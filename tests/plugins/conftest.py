"""Fixtures for the patchflow plugin tests: Airflow env first, then the real CLC simulator.

Sets the Airflow environment with ``setdefault`` (tests/conftest.py normally has already)
before anything imports Airflow, and provides ``cloud`` — the simulator in-process on a free
port with the four-server test fleet, ``AIRFLOW_CONN_CLC_DEFAULT`` pointing at it — and
``start_cloud`` for a test that needs another fleet or API clock.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="patchflow-plugins-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.plugins.cloud import FOUR_SERVERS, Cloud


@pytest.fixture
def start_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Cloud]]:
    """``start_cloud(servers=FOUR_SERVERS, **options)``: a started simulator the connection points at."""
    started: list[Cloud] = []

    def start(servers: dict[str, dict[str, Any]] = FOUR_SERVERS, **options: Any) -> Cloud:
        cloud = Cloud(servers, **options).start()
        started.append(cloud)
        monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", cloud.conn_json())
        return cloud

    yield start
    for cloud in started:
        cloud.stop()


@pytest.fixture
def cloud(start_cloud: Callable[..., Cloud]) -> Cloud:
    return start_cloud()
