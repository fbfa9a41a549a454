"""Issue 10: right after a good run, every server it patched is compliant, whatever the API's clock.

Each test drives a real ``Rollout`` against an in-memory patching service whose clock is the
simulator's fast clock, or a real API's clock 10 minutes ahead or behind ours; the rollout's
results become audit rows (``build_rows``), a sealed and validated evidence pack, and then the
compliance replay "as of now". Before ``observed_at`` the replay compared the API's ``ended_at``
with our ``as_of``, so the fast and the ahead clocks made every success "never patched".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from audit_samples import make_row, make_run

from include.artifacts import read_json
from include.patching.audit_rows import build_rows
from include.patching.packages import LINUX_YUM
from include.patching.rollout_state import ledger_path
from include.patching.watch import WatchState
from include.reporting.audit_document import build_audit_document
from include.reporting.compliance import build_compliance_report
from include.reporting.evidence_pack import build_evidence_pack, raise_if_invalid, write_evidence_pack
from include.timefmt import parse_utc_text, utc_text
from tests.patching.memory_api import MemoryApi, make_rollout, ours, report

SERVERS = ["va1demoapp01", "va1demoapp02", "uc1demoweb01"]
PASSED = {"suite": "audit", "success": True, "evaluated": 0, "failed": [], "checks": []}
#: The demo's situation: the simulator at time_scale 0.01 started 40 s before the run, so its
#: clock is already ~66 minutes ahead of ours and gains 100 s every second.
#: ``skew``: how far (seconds) the API's end time lies from our observation of it.
CLOCKS = {
    "fast_simulator_clock": {
        "api_speed": 100.0,
        "api_origin_ago": timedelta(seconds=40),
        "skew": (3900, 100_000),
    },
    "real_api_10_minutes_ahead": {"api_offset": timedelta(minutes=10), "skew": (540, 660)},
    "real_api_10_minutes_behind": {"api_offset": timedelta(minutes=-10), "skew": (-660, -540)},
}


def patching_service(clock: dict) -> MemoryApi:
    ago = clock.get("api_origin_ago")
    return MemoryApi(
        SERVERS,
        api_offset=clock.get("api_offset", timedelta(0)),
        api_speed=clock.get("api_speed", 1.0),
        api_origin=datetime.now(UTC) - ago if ago else None,
    )


def real_run(tmp_path, api: MemoryApi) -> dict:
    """One patch_fleet run in miniature: rollout, audit rows, sealed and validated pack."""
    started = utc_text(datetime.now(UTC))
    rollout = make_rollout(tmp_path, api, max_errors=10, server_timeout=3600)
    rollout.fill()
    api.start_queued()
    api.complete_all()
    rollout.apply({sid: report(WatchState.COMPLETED, execution=ours(api, sid)) for sid in SERVERS})
    rollout.finish(tmp_path / "results.json")
    plan = {
        "account_alias": "DEMO",
        "servers": [
            {"id": sid, "os": "centOS6_64Bit", "os_family": "linux", "package_key": LINUX_YUM.key}
            for sid in SERVERS
        ],
    }
    rows = build_rows(
        plan,
        {LINUX_YUM.key: read_json(tmp_path / "results.json")},
        {LINUX_YUM.key: read_json(ledger_path(tmp_path, LINUX_YUM.key))},
    )
    run = make_run("manual__clock", started_at=started, ended_at=utc_text(datetime.now(UTC)))
    pack = build_evidence_pack(tmp_path / "reports", rows, run, inventory_count=len(rows))
    raise_if_invalid(pack)  # the audit suite, observed_at checks included, passes
    return json.loads((pack.path / "audit.json").read_text())


@pytest.mark.parametrize("clock", list(CLOCKS.values()), ids=list(CLOCKS))
def test_every_server_patched_by_the_run_is_compliant_right_after_it(tmp_path, clock):
    api = patching_service(clock)
    audit = real_run(tmp_path, api)
    now = datetime.now(UTC)
    for row in audit["servers"]:
        observed, api_end = parse_utc_text(row["observed_at"]), parse_utc_text(row["ended_at"])
        assert row["state"] == "patched" and observed is not None and api_end is not None
        assert parse_utc_text(audit["run"]["started_at"]) <= observed <= now  # our clock
        low, high = clock["skew"]
        assert low <= (api_end - observed).total_seconds() <= high  # the API's own time, kept as evidence

    report_now = build_compliance_report(tmp_path / "reports", as_of=now)
    assert report_now.validation["success"], report_now.validation["failed"]
    assert report_now.summary["compliant"] == len(SERVERS) and report_now.summary["compliance_pct"] == 100.0
    for server in report_now.servers:
        row = next(r for r in audit["servers"] if r["server_id"] == server["server_id"])
        assert server["status"] == "compliant" and server["days_since_success"] == 0
        assert server["last_success_at"] == row["observed_at"]
        assert server["last_success_source"] == "observed_at"
        assert server["last_success_api_ended_at"] == row["ended_at"]

    later = build_compliance_report(
        tmp_path / "reports", as_of=now + timedelta(days=3, minutes=1), validate=False
    )
    assert {s["days_since_success"] for s in later.servers} == {3}
    assert {s["status"] for s in later.servers} == {"compliant"}


def test_a_pack_sealed_before_observed_at_counts_from_the_runs_end_on_our_clock(tmp_path):
    """Schema-2 packs have only the API's times: the run's end (our clock) dates the success."""
    run = make_run("manual__old", started_at="2026-11-27T14:00:00Z", ended_at="2026-11-27T14:30:00Z")
    ahead = {"started_at": "2026-11-27T15:40:00Z", "ended_at": "2026-11-27T15:55:00Z"}  # API 1h+ ahead
    document = build_audit_document([make_row("va1a", "patched", **ahead)], run)
    for row in document["servers"]:
        row["observed_at"] = None  # what the replay reads for a schema-2 row (no such key)
    write_evidence_pack(tmp_path, document, PASSED, now=datetime.now(UTC))
    report = build_compliance_report(
        tmp_path, as_of=datetime(2026, 11, 27, 14, 31, tzinfo=UTC), validate=False
    )
    [server] = report.servers
    assert server["status"] == "compliant" and server["days_since_success"] == 0
    assert server["last_success_at"] == "2026-11-27T14:30:00Z"
    assert server["last_success_source"] == "run_ended_at"
    assert server["last_success_api_ended_at"] == "2026-11-27T15:55:00Z"


def test_an_observation_later_than_the_runs_end_is_capped_at_it(tmp_path):
    """Triggerer and worker are both our clock but different machines: never later than the audit."""
    run = make_run("manual__cap", started_at="2026-11-27T14:00:00Z", ended_at="2026-11-27T14:30:00Z")
    document = build_audit_document([make_row("va1a", "patched", observed_at="2026-11-27T14:30:09Z")], run)
    write_evidence_pack(tmp_path, document, PASSED, now=datetime.now(UTC))
    [server] = build_compliance_report(
        tmp_path, as_of=datetime(2026, 11, 27, 14, 30, 1, tzinfo=UTC), validate=False
    ).servers
    assert server["status"] == "compliant" and server["last_success_at"] == "2026-11-27T14:30:00Z"
