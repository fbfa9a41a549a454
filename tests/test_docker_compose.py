"""docker-compose.yaml checked statically: there is no Docker engine here to run it."""

from __future__ import annotations

import ast
import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
SERVICES = COMPOSE["services"]
AIRFLOW_SERVICES = [
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
]
#: Top-level folders that are dev tooling, not Airflow code: no Airflow service mounts or imports them.
DEV_TOOLING = {"simulator", "launcher"}


def env_of(name: str) -> dict[str, str]:
    env = SERVICES[name].get("environment", {})
    assert isinstance(env, dict), f"{name}: environment must be a mapping"
    return env


def test_official_services_and_the_simulator_exist():
    for name in ["postgres", "redis", *AIRFLOW_SERVICES, "flower", "clc-simulator"]:
        assert name in SERVICES, f"service {name} missing"
    assert "flower" in SERVICES["flower"]["profiles"]
    assert SERVICES["airflow-worker"]["command"] == "celery worker"
    assert SERVICES["airflow-apiserver"]["command"] == "api-server"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_share_the_production_topology(name):
    env = env_of(name)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"], "every container needs the same JWT secret"
    assert "/opt/airflow" in env["PYTHONPATH"].split(":"), "include/ must be importable as include.*"


def repo_mounts(name: str) -> dict[str, str]:
    """The service's bind mounts of repository folders: container path -> repository path."""
    volumes = [v.split(":") for v in SERVICES[name].get("volumes", [])]
    return {target: source for source, target, *_ in volumes if source.startswith(".")}


@pytest.mark.parametrize("name", [*AIRFLOW_SERVICES, "clc-simulator"])
def test_every_mounted_path_exists_in_the_repo(name):
    for source in repo_mounts(name).values():
        assert (ROOT / source).exists(), f"{name} mounts {source}, which is not in the repo"


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_get_the_product_code_and_no_dev_tooling(name):
    mounts = repo_mounts(name)
    assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include"} <= set(mounts)
    assert not DEV_TOOLING & {Path(source).parts[0] for source in mounts.values()}
    assert not (ROOT / "include" / "clc_simulator").exists(), "the simulator lives in simulator/"


def imported_top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    return {name.split(".")[0] for name in names}


def test_the_code_airflow_services_mount_never_imports_the_dev_tooling():
    """They do not mount simulator/ or launcher/: an import of either would fail in every container."""
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(DEV_TOOLING & imported_top_level_names(path))}"
        for folder in ("dags", "plugins", "include")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if DEV_TOOLING & imported_top_level_names(path)
    ]
    assert offenders == []


def test_the_connection_is_the_one_the_code_reads():
    from launcher.env import CLC_CONN_ENV, CLC_CONN_ID

    dag_source = (ROOT / "plugins" / "patchflow" / "dag_factory.py").read_text()  # patch_fleet and rings
    assert f'CLC_CONN_ID = "{CLC_CONN_ID}"' in dag_source
    assert f"AIRFLOW_CONN_{CLC_CONN_ID.upper()}" == CLC_CONN_ENV
    conn = json.loads(env_of("airflow-worker")[CLC_CONN_ENV])
    assert conn["conn_type"] == "http"
    assert conn["host"] == "http://clc-simulator:8899/v2"
    assert "patching_base_url" in conn["extra"]
    # no short value in the extra: Airflow would warn in every task log that it is too short to mask
    assert not [v for v in conn["extra"].values() if isinstance(v, str) and len(v) < 5]
    assert conn["extra"]["patching_base_url"] == "http://clc-simulator:8899/patching/rest"


def test_the_location_variables_are_the_ones_the_code_reads():
    from patchflow.locations import ARTIFACTS_ENV, REPORTS_ENV

    env = env_of("airflow-worker")
    assert env[ARTIFACTS_ENV].startswith("/opt/airflow/patchflow")
    assert env[REPORTS_ENV].startswith("/opt/airflow/patchflow")


def test_the_simulator_service_runs_the_documented_command_on_a_bundled_fleet():
    sim = SERVICES["clc-simulator"]
    args = shlex.split(sim["command"])
    assert args[:3] == ["python", "-m", "simulator"]
    fleet = args[args.index("--fleet") + 1]
    assert (ROOT / fleet).is_file()
    assert " ".join(args[:5]) in (ROOT / "docs" / "simulator.md").read_text(), "the documented command"
    port = args[args.index("--port") + 1]
    assert any(p.endswith(f":{port}") for p in sim["ports"])
    assert re.search(rf"localhost:{port}/_sim/health", " ".join(sim["healthcheck"]["test"]))


def test_the_simulator_service_runs_from_its_own_folder_only():
    """It mounts simulator/ (code and fleets) where ``python -m simulator`` finds it, and no product code."""
    sim = SERVICES["clc-simulator"]
    assert repo_mounts("clc-simulator") == {f"{sim['working_dir']}/simulator": "./simulator"}
    assert (ROOT / "simulator" / "__main__.py").is_file()
    args = shlex.split(sim["command"])
    fleet = args[args.index("--fleet") + 1]
    assert Path(fleet).parts[0] == "simulator", "the fleet must come from the mounted simulator/"


def test_the_image_is_built_from_the_pinned_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "apache/airflow:3.3.2" in dockerfile
    assert "-r /opt/patchflow/requirements.txt -c /opt/patchflow/constraints.txt" in dockerfile


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_patchflow_timings_run_at_the_simulators_speed(name):
    """One knob: every patchflow timing is scaled like the simulator's clock (same races as production)."""
    command = SERVICES["clc-simulator"]["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    sim_scale = float(argv[argv.index("--time-scale") + 1])
    assert float(env_of(name)["AIRFLOW__PATCHFLOW__TIME_SCALE"]) == sim_scale


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_services_hide_the_same_airflow_warnings_as_the_local_launcher(name):
    """Task logs read the same under docker-compose as under make demo / make up."""
    from launcher.env import AIRFLOW_OWN_WARNINGS

    assert env_of(name).get("PYTHONWARNINGS") == AIRFLOW_OWN_WARNINGS
