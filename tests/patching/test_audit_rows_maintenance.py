"""The audit's maintenance column comes from the rollout ledger, never invented (I2, I3)."""

from __future__ import annotations

import pytest

from include.patching.audit_rows import NO_RELEASE_RECORDED, MaintenanceResult, build_rows
from include.patching.maintenance import record_release
from include.patching.rollout_state import LedgerEntry, MaintenanceOwnership, ReleaseOutcome
from include.patching.states import ServerState

PLAN = {
    "account_alias": "DEMO",
    "servers": [
        {"id": "va1skip", "package_key": None, "state": "skipped_unsupported_os", "reason": "old"},
        {"id": "va1dry", "package_key": "linux_yum", "state": "planned_dry_run"},
        {"id": "va1pre", "package_key": "linux_yum", "state": None},
        {"id": "va1done", "package_key": "linux_yum", "state": None},
        {"id": "va1stuck", "package_key": "linux_yum", "state": None},
        {"id": "va1lost", "package_key": "linux_yum", "state": None},
        {"id": "va1never", "package_key": "linux_yum", "state": None},
        {"id": "va1win", "package_key": "windows_2012", "state": None},
    ],
}


def entry(ownership: str, outcome: ReleaseOutcome | None = None, note: str = "") -> dict:
    e = LedgerEntry.new(preexisting_maintenance=ownership == "preexisting")
    e.maintenance = MaintenanceOwnership(ownership)
    e.end(ServerState.NOT_ATTEMPTED, "stopped", now="")
    if outcome is not None:
        record_release(e, outcome, note)
    return e.to_json()


@pytest.fixture
def rows() -> dict[str, dict]:
    ledger = {
        "servers": {
            "va1pre": entry("preexisting", ReleaseOutcome.KEPT_PREEXISTING, "in maintenance before the run"),
            "va1done": entry("ours", ReleaseOutcome.RELEASED),
            "va1stuck": entry("ours", ReleaseOutcome.REFUSED, "stopMaintenance refused: rebooting"),
            "va1lost": entry("requested"),  # the release task never recorded anything
            "va1never": entry("none"),
        }
    }
    built = build_rows(PLAN, {}, {"linux_yum": ledger, "windows_2012": None})
    return {row["server_id"]: row for row in built}


def test_every_row_has_a_maintenance_value_from_the_closed_set(rows):
    assert len(rows) == len(PLAN["servers"])
    assert {row["maintenance"] for row in rows.values()} <= set(MaintenanceResult)


@pytest.mark.parametrize(
    ("server", "maintenance", "note"),
    [
        ("va1skip", "not_used", ""),
        ("va1dry", "not_used", ""),
        ("va1never", "not_used", ""),
        ("va1win", "not_used", ""),  # its rollout never ran: no ledger
        ("va1pre", "kept_preexisting", "in maintenance before the run"),
        ("va1done", "released", ""),
        ("va1stuck", "left_on", "stopMaintenance refused: rebooting"),
        ("va1lost", "left_on", NO_RELEASE_RECORDED),
    ],
)
def test_maintenance_column_per_ledger_outcome(rows, server, maintenance, note):
    assert (rows[server]["maintenance"], rows[server]["maintenance_note"]) == (maintenance, note)
