"""The client core imports no Airflow: it is usable (and tested) outside any Airflow process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ("client", "endpoints", "errors", "retry", "settings", "shapes", "token_cache", "tokens")


def test_importing_the_whole_core_loads_no_airflow():
    imports = "; ".join(f"import include.clc.{name}" for name in CORE)
    check = "assert not [m for m in sys.modules if m.split('.')[0] == 'airflow'], 'airflow imported'"
    subprocess.run([sys.executable, "-c", f"import sys; {imports}; {check}"], check=True, cwd=ROOT)


def test_the_core_package_lists_every_module():
    assert {p.stem for p in (ROOT / "include" / "clc").glob("*.py")} - {"__init__"} == set(CORE)
