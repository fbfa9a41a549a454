"""Run-artifact folders: readable, one segment, never outside the base, one per run id; and the
one atomic writer every artifact goes through."""

from __future__ import annotations

import itertools
import os

import pytest

from include.artifacts import read_json, run_folder, safe_segment, write_bytes_atomic, write_json
from include.patching.rollout_state import ledger_path

TWINS = ("manual__2026-12-01T10:00:00", "manual__2026-12-01T10-00-00")


def test_plain_ids_are_used_as_is():
    assert safe_segment("patch_fleet") == "patch_fleet"
    assert safe_segment("backfill-2026.11") == "backfill-2026.11"


def test_run_ids_stay_readable():
    name = safe_segment("manual__2026-11-27T14:00:00+00:00")
    prefix, digest = name.split("~")
    assert prefix == "manual__2026-11-27T14-00-00_00-00"
    assert len(digest) == 16 and int(digest, 16) >= 0


@pytest.mark.parametrize(
    "pair",
    [
        TWINS,
        ("a b", "a_b"),
        ("x/y", "x_y"),
        (".hidden", "_hidden"),
        ("Manual", "manual"),  # one folder on a case-insensitive file system
        ("run~1", "run_1"),
        ("r" * 200 + "1", "r" * 200 + "2"),  # beyond the length limit
        ("r" * 250, "r" * 200),
    ],
    ids=["colon-vs-dash", "space", "slash", "leading-dot", "case", "tilde", "long", "truncated"],
)
def test_different_run_ids_never_share_a_folder(pair):
    """Issue 8 item 7: the rule was lossy, so two runs could share one ledger."""
    first, second = (safe_segment(value) for value in pair)
    assert first != second and first.lower() != second.lower()


def test_no_two_short_ids_collide():
    """Every id of up to 3 characters over an alphabet of replaced and kept characters."""
    alphabet = "aA-_:.~/ "
    ids = ["".join(chars) for size in (1, 2, 3) for chars in itertools.product(alphabet, repeat=size)]
    ids = [value for value in ids if value.strip()]
    names = {safe_segment(value).lower() for value in ids}
    assert len(names) == len(ids)


@pytest.mark.parametrize("value", ["x" * 1000, "a:" * 300, "é" * 150, "../" * 80])
def test_names_are_bounded_and_plain(value):
    name = safe_segment(value)
    assert len(name) <= 200 and "/" not in name and not name.startswith(".")


def test_two_runs_differing_only_in_colon_and_dash_keep_separate_ledgers(tmp_path):
    """The second run used to find the first run's ledger, patch nothing and report patched."""
    first, second = (run_folder(tmp_path, "patch_fleet", run_id) for run_id in TWINS)
    write_json(ledger_path(first, "linux_yum"), {"servers": {"va1demoweb01": {"phase": "done"}}})
    assert first != second
    assert not ledger_path(second, "linux_yum").exists()
    write_json(ledger_path(second, "linux_yum"), {"servers": {}})
    assert read_json(ledger_path(first, "linux_yum"))["servers"] == {"va1demoweb01": {"phase": "done"}}


@pytest.mark.parametrize("hostile", ["..", "../etc", "a/b", "./x"])
def test_hostile_run_ids_never_leave_the_base(tmp_path, hostile):
    folder = run_folder(tmp_path, "patch_fleet", hostile)
    assert folder.parent == tmp_path / "patch_fleet" and not folder.name.startswith(".")


def test_empty_is_refused():
    with pytest.raises(ValueError):
        safe_segment(" ")


def test_atomic_write_keeps_the_old_content_when_the_rename_never_happens(tmp_path, monkeypatch):
    target = tmp_path / "chain.json"
    write_bytes_atomic(target, b"old")

    def crash(*args, **kwargs):
        raise OSError("killed before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="killed"):
        write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["chain.json"]


def test_atomic_write_through_a_file_url(tmp_path):
    from airflow.sdk import ObjectStoragePath

    write_bytes_atomic(ObjectStoragePath(f"file://{tmp_path}/deep/er/x.json"), b"{}")
    assert (tmp_path / "deep" / "er" / "x.json").read_bytes() == b"{}"
    assert [p.name for p in (tmp_path / "deep" / "er").iterdir()] == ["x.json"]
