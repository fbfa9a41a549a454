"""Run-artifact folders: readable, one segment, never outside the base."""

from __future__ import annotations

import pytest

from include.artifacts import run_folder, safe_segment


def test_run_ids_stay_readable():
    assert safe_segment("manual__2026-11-27T14:00:00+00:00") == "manual__2026-11-27T14-00-00_00-00"


@pytest.mark.parametrize("hostile", ["..", "../etc", "a/b", "./x"])
def test_hostile_run_ids_never_leave_the_base(tmp_path, hostile):
    folder = run_folder(tmp_path, "patch_fleet", hostile)
    assert folder.parent == tmp_path / "patch_fleet" and not folder.name.startswith(".")


def test_empty_is_refused():
    with pytest.raises(ValueError):
        safe_segment(" ")
