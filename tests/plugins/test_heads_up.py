"""The heads-up mail names the ring, its local window and every server the dry-run plan would patch."""

from __future__ import annotations

from datetime import UTC, datetime

from include.patching.rings import parse_rings
from patchflow.heads_up import HeadsUpNotifier, build_heads_up

RING = parse_rings(
    {
        "rings": [
            {"name": "dev", "schedule": {"offset_days": 2, "start": "22:00", "timezone": "Europe/Berlin"}},
            {
                "name": "staging",
                "requires": "dev",
                "schedule": {"offset_days": 7, "start": "22:00", "timezone": "Europe/Berlin"},
            },
        ]
    }
)[1]
PLAN = {
    "servers": [
        {
            "id": "va1web01",
            "name": "VA1WEB01",
            "data_center": "VA1",
            "package_id": "pkg-1",
            "state": "planned_dry_run",
        },
        {
            "id": "va1web02",
            "name": "<script>x</script>",
            "data_center": "VA1",
            "package_id": "pkg-1",
            "state": "planned_dry_run",
        },
        {
            "id": "va1ubu01",
            "name": "VA1UBU01",
            "data_center": "VA1",
            "package_id": None,
            "state": "skipped_unsupported_os",
        },
    ]
}


def test_the_heads_up_lists_what_will_be_patched_in_local_time():
    mail = build_heads_up(
        RING,
        PLAN,
        start=datetime(2026, 12, 15, 21, 0, tzinfo=UTC),
        end=datetime(2026, 12, 16, 1, 0, tzinfo=UTC),
        planned_at="2026-12-14T21:00:00Z",
    )
    assert (
        mail.subject == "[patchflow] ring staging: 2 server(s) to patch "
        "2026-12-15 22:00\u20132026-12-16 02:00 Europe/Berlin"
    )
    assert (mail.to_patch_total, mail.skipped_total) == (2, 1)
    assert [s["server_id"] for s in mail.servers] == ["va1web01", "va1web02"]
    html = HeadsUpNotifier(to="ops@example.com", heads_up=mail).message({}).html
    assert "va1web01" in html and "va1ubu01" not in html
    assert "&lt;script&gt;" in html and "<script>" not in html  # server names are text, never markup
    assert "ring <strong>dev</strong>" in html
