"""The rollout ledger: created once from the plan, reloaded as-is, atomic on disk."""

from __future__ import annotations

import json

import pytest

from include.patching.rollout_state import Ledger, ledger_path, results_path


def test_create_then_reload(tmp_path):
    path = ledger_path(tmp_path, "linux_yum")
    ledger = Ledger.open(
        path, package_key="linux_yum", package_id="pkg", alias="DEMO", targets=[("b", False), ("a", True)]
    )
    assert ledger.in_phase("queued") == ["b", "a"]  # plan order kept
    assert ledger.servers["a"]["maintenance"] == "preexisting"
    ledger.servers["b"].update(phase="submitting", maintenance="requested")
    ledger.save()
    again = Ledger.open(path, package_key="linux_yum", package_id="pkg", alias="DEMO", targets=[])
    assert again.servers["b"]["phase"] == "submitting" and again.run_owned_maintenance() == ["b"]
    assert json.loads(path.read_text())["alias"] == "DEMO"
    assert not list(tmp_path.glob(".*.tmp"))
    assert results_path(tmp_path, "linux_yum").name == "results_linux_yum.json"


def test_refuses_another_packages_ledger(tmp_path):
    path = ledger_path(tmp_path, "linux_yum")
    Ledger.open(path, package_key="linux_yum", package_id="p", alias="DEMO", targets=[])
    with pytest.raises(ValueError, match="belongs to package 'linux_yum'"):
        Ledger.open(path, package_key="windows_2012", package_id="p", alias="DEMO", targets=[])
