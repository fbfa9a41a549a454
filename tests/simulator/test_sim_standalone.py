"""The simulator stands alone: it imports neither Airflow nor patchflow's own code.

It imitates the cloud patchflow talks to, so sharing code with the client would let a bug hide on
both sides of the wire; and docker-compose's clc-simulator service mounts only ``simulator/``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("airflow", "include", "patchflow", "launcher")


def test_importing_every_simulator_module_loads_no_airflow_and_no_product_code():
    modules = sorted(p.stem for p in (ROOT / "simulator").glob("*.py") if p.stem != "__main__")
    imports = "; ".join(f"import simulator.{name}" for name in modules)
    check = (
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})); "
        "assert not loaded, f'the simulator imported {loaded}'"
    )
    subprocess.run([sys.executable, "-c", f"import sys; {imports}; {check}"], check=True, cwd=ROOT)
