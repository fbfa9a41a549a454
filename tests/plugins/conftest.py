"""Fixtures for the patchflow plugin tests: Airflow env first, then a fake CLC API.

Sets the Airflow environment with ``setdefault`` (tests/conftest.py normally has already)
before anything imports Airflow, and provides ``fake_clc`` — a live in-process fake of the
CLC API with ``AIRFLOW_CONN_CLC_DEFAULT`` pointing at it.
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="patchflow-plugins-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

import pytest

from tests.plugins.fake_clc import FakeClc


@pytest.fixture
def fake_clc(monkeypatch: pytest.MonkeyPatch):
    fake = FakeClc(
        {
            "va1demoweb01": {"group": "Web"},
            "va1demoweb02": {"group": "Web"},
            "va1demodb01": {"group": "DB"},
            "de1demoapp01": {"dc": "de1", "group": "App"},
        }
    ).start()
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", fake.conn_json())
    yield fake
    fake.stop()
