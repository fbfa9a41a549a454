"""The crash fault point fires only when armed, and only once."""

from __future__ import annotations

import subprocess
import sys

from include.patching.chaos import CRASH_AFTER_SUBMIT

PROBE = (
    "from include.patching.chaos import crash_point, CRASH_AFTER_SUBMIT as N; crash_point(N); print('alive')"
)


def run(env_value: str | None):
    env = {"PYTHONPATH": "."} | ({CRASH_AFTER_SUBMIT: env_value} if env_value else {})
    return subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env)


def test_unarmed_does_nothing():
    proc = run(None)
    assert proc.returncode == 0 and proc.stdout.strip() == "alive"


def test_armed_kills_once(tmp_path):
    marker = tmp_path / "crashed"
    first, second = run(str(marker)), run(str(marker))
    assert first.returncode == 137 and first.stdout == ""
    assert marker.read_text().startswith(CRASH_AFTER_SUBMIT)
    assert second.returncode == 0 and second.stdout.strip() == "alive"
