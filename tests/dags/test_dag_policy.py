"""Policy as tests: every DAG loads, is documented, owned, tagged, retried, and parses cheaply."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
ALLOWED_TAGS = {"patching", "clc", "compliance", "audit", "reporting"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_file_loads_without_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"patch_fleet", "compliance_report", "example_patch_group"} <= set(dagbag.dag_ids)


def test_every_dag_follows_the_policy(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.doc_md and len(dag.doc_md) > 80, f"{dag_id}: needs a doc_md explaining the flow"
        assert dag.catchup is False, f"{dag_id}: catchup must be off"
        assert dag.tags and set(dag.tags) <= ALLOWED_TAGS, f"{dag_id}: tags {dag.tags} not in {ALLOWED_TAGS}"
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id}: needs a real owner"
            assert t.retries >= 1, f"{dag_id}.{t.task_id}: needs retries"


PROBE = r"""
import importlib.util, json, socket, sys
def refuse(*a, **k):
    raise RuntimeError("network I/O at DAG parse time")
socket.socket.connect = refuse
socket.create_connection = refuse
spec = importlib.util.spec_from_file_location("dag_under_test", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
heavy = sorted(m for m in ("great_expectations", "pandas", "numpy") if m in sys.modules)
print(json.dumps({"heavy": heavy}))
"""


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_does_no_network_io_and_no_heavy_imports_at_top_level(path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == [], f"{path.name} imports {result['heavy']} at top level"
