"""Run a DAG (``patch_fleet``) once with ``dag.test()`` in this process; record how Airflow ended it.

The fault matrix starts this module as a subprocess per scenario (``python -m tests.faults.runner``)
so that a run which never ends can be killed at its time bound (I7) and everything the run
printed lands in one log file the secret sweep reads (I6). What this writes is only Airflow's
own bookkeeping (run and task states); the invariants are judged from the simulator's state.

    python -m tests.faults.runner [--dag-id patch_fleet] --conf '{"max_concurrency": "2"}' \\
        --result out.json [--run-id ID]
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

ROOT = Path(__file__).resolve().parents[2]


def run_dag(dag_id: str, conf: dict[str, Any], run_id: str | None) -> dict[str, Any]:
    """One ``dag.test()`` run; ``run_id`` replaces Airflow's generated id when given."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.dagrun import DagRun

    dag = DagBag(dag_folder=str(ROOT / "dags")).get_dag(dag_id)
    with ExitStack() as stack:
        if run_id:
            stack.enter_context(mock.patch.object(DagRun, "generate_run_id", return_value=run_id))
        dag_run = dag.test(run_conf=conf)
    return {
        "run_id": dag_run.run_id,
        "state": str(dag_run.state),
        "tasks": {
            ti.task_id: {"state": str(ti.state), "try_number": ti.try_number}
            for ti in dag_run.get_task_instances()
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dag-id", default="patch_fleet")
    parser.add_argument("--conf", default="{}", help="the run's conf (JSON object)")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--result", required=True, type=Path)
    args = parser.parse_args(argv)
    outcome = run_dag(args.dag_id, json.loads(args.conf), args.run_id)
    args.result.write_text(json.dumps(outcome, indent=1))
    print(f"{args.dag_id} run {outcome['run_id']} ended {outcome['state']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
