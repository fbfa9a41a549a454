"""Test-wide environment: an isolated AIRFLOW_HOME set before anything imports Airflow."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_home = Path(tempfile.mkdtemp(prefix="patchflow-airflow-home-"))
if "PYTEST_XDIST_WORKER" in os.environ:
    # a worker inherits the controller's environment, home included: it gets one of its own,
    # so that no two workers share a metadata DB
    os.environ["AIRFLOW_HOME"] = str(_home)
    os.environ.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
os.environ.setdefault("AIRFLOW_HOME", str(_home))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_home / 'airflow.db'}")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")


LONGEST_FIRST = (
    "tests/faults/test_airflow_components.py",
    "tests/integration/test_full_stack.py",
    "tests/faults/test_exactly_once_faults.py",
    "tests/faults/test_scope_faults.py",
    "tests/integration/test_ring_dags.py",
    "tests/faults/test_maintenance_faults.py",
    "tests/launcher/test_up.py",
    "tests/integration/test_patch_fleet_dag.py",
    "tests/integration/test_staged_rollout_dag.py",
    "tests/plugins/operators/test_rollout_simulator_time_scale.py",
    "tests/integration/test_snapshot_dag.py",
)
"""The modules that take longest (``pytest --durations=0``), longest first. ``make test`` spreads
modules over parallel workers in collection order, so these start first and no worker is left
with one long module at the end."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        module = Path(str(item.fspath)).relative_to(ROOT).as_posix()
        return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order within a module, and of all other modules, is kept


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the session's SQLite metadata DB once, for every suite that runs DAGs in-process."""
    subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"],
        check=True,
        capture_output=True,
        env=os.environ.copy(),
        cwd=ROOT,
    )


@pytest.fixture(autouse=True)
def _own_token_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts without a cached CLC token (include/clc/token_cache.py): its own private
    cache folder, hence an empty process table too; tests that count logins stay exact."""
    folder = tmp_path_factory.mktemp("token-cache") / "cache"
    monkeypatch.setenv("AIRFLOW__PATCHFLOW__TOKEN_CACHE_DIR", str(folder))
    return folder
