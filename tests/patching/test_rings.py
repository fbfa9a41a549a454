"""The ring file: the shipped one is valid; a bad one is refused naming every value with ring and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from include.patching.rings import RingFileError, load_rings, parse_rings

ROOT = Path(__file__).resolve().parents[2]


def ring(**overrides):
    base = {
        "name": "dev",
        "scope": {"groups": ["Legacy"]},
        "schedule": {"offset_days": 2, "start": "22:00", "timezone": "Europe/Berlin"},
        "window": {"duration_minutes": 240, "cutoff_minutes": 30},
        "rollout": {"max_concurrency": "50%", "max_errors": "1"},
    }
    return base | overrides


def problems_of(data) -> list[str]:
    with pytest.raises(RingFileError) as caught:
        parse_rings(data)
    return list(caught.value.problems)


def test_the_shipped_ring_file_is_valid_and_ordered():
    rings = load_rings(ROOT / "include" / "rings.yaml")
    assert [(r.name, r.calendar.offset_days, r.requires) for r in rings] == [
        ("dev", 2, None),
        ("staging", 7, "dev"),
        ("production", 14, "staging"),
    ]
    assert [r.dag_id for r in rings] == ["patch_ring_dev", "patch_ring_staging", "patch_ring_production"]
    assert rings[0].calendar.summary() == "2nd Tuesday + 2 days, 22:00\u201302:00 Europe/Berlin"


def test_a_valid_ring_gives_the_forms_defaults():
    (dev,) = parse_rings({"rings": [ring()]})
    assert dev.run_params() == {
        "groups": ["Legacy"],
        "max_concurrency": "50%",
        "max_errors": "1",
        "window_cutoff_minutes": 30,
    }


def test_every_bad_value_is_named_with_its_ring_and_field():
    bad = {
        "rings": [
            ring(),
            ring(
                name="staging",
                scope={"data_centers": ["VA"], "server_allow_list": ["web 1"], "tags": ["x"]},
                schedule={"offset_days": 45, "start": 1320, "timezone": "Europe/Paris"},
                window={"duration_minutes": 60, "cutoff_minutes": 90},
                rollout={"max_concurrency": "0", "max_errors": "-1", "maintenance_mode": "yes"},
                notify={"hours_before": 0},
                requires="production",
            ),
            ring(name="Prod!", requires="dev", colour="red"),
            ring(name="dev"),
        ]
    }
    problems = problems_of(bad)
    assert problems == [
        "rings[1] (staging).scope.tags: unknown setting (known: account_alias, data_centers, groups, "
        "server_allow_list, server_deny_list, custom_fields)",
        "rings[1] (staging).scope.data_centers: 'VA' is not a valid data center id "
        "(two letters and a digit, e.g. VA1)",
        "rings[1] (staging).scope.server_allow_list: 'web 1' is not a valid server id "
        "(letters, digits and '-' only, e.g. VA1DEMOWEB01)",
        "rings[1] (staging).rollout.maintenance_mode: expected true or false, got 'yes'",
        "rings[1] (staging).rollout.max_concurrency: must be at least 1, got '0'",
        "rings[1] (staging).rollout.max_errors: must be a count or a percentage like '10%' "
        "and not negative, got '-1'",
        "rings[1] (staging).window.cutoff_minutes: 90 is not a number from 0 to 59",
        "rings[1] (staging).schedule.offset_days: 45 is not a whole number from -30 to 30",
        "rings[1] (staging).schedule.start: 1320 is not a local time HH:MM (00:00 to 23:59) "
        "(quote it: YAML reads an unquoted 22:00 as the number 1320)",
        "rings[1] (staging).notify.hours_before: 0 is not a whole number from 1 to 168",
        "rings[1] (staging).requires: 'production' is not an earlier ring (the rings before it are: dev)",
        "rings[2] (Prod!).colour: unknown setting (known: name, description, scope, schedule, window, "
        "rollout, notify, requires)",
        "rings[2] (Prod!).name: 'Prod!' is not a ring name (a lower-case letter, then letters, digits or _; "
        "at most 40): it becomes the DAG id patch_ring_<name>",
        "rings[3] (dev).name: 'dev' is used by an earlier ring; names must be unique",
    ]


def test_a_ring_cannot_require_itself_or_miss_its_schedule():
    problems = problems_of({"rings": [{"name": "solo", "requires": "solo"}]})
    assert problems == [
        "rings[0] (solo).schedule: missing (at least the offset_days, start and timezone of its window)",
        "rings[0] (solo).requires: 'solo' is not an earlier ring (itself)",
    ]


def test_the_window_length_belongs_to_the_window(tmp_path):
    problems = problems_of({"rings": [ring(schedule={"duration_minutes": 60})]})
    assert problems == [
        "rings[0] (dev).schedule.duration_minutes: set the length under window.duration_minutes"
    ]


def test_a_file_that_is_not_yaml_or_has_no_rings_is_refused(tmp_path):
    path = tmp_path / "rings.yaml"
    path.write_text("rings: [unclosed\n")
    with pytest.raises(RingFileError, match="not valid YAML"):
        load_rings(path)
    path.write_text(yaml.safe_dump({"ring": []}))
    with pytest.raises(RingFileError, match="'rings' list"):
        load_rings(path)


def test_a_ring_scope_by_custom_field_reaches_the_run_params_and_bad_ones_name_ring_and_field():
    (dev,) = parse_rings({"rings": [ring(scope={"custom_fields": {"Ring": "dev"}})]})
    assert dev.run_params()["custom_fields"] == {"Ring": "dev"}
    bad = {"rings": [ring(scope={"custom_fields": {"Ring": ["dev", 2], "": "x"}})]}
    assert problems_of(bad) == [
        "rings[0] (dev).scope.custom_fields: 'Ring': 2 is not a non-empty string",
        "rings[0] (dev).scope.custom_fields: '' is not a field name (a non-empty string)",
    ]
    assert problems_of({"rings": [ring(scope={"custom_fields": "Ring=dev"})]}) == [
        "rings[0] (dev).scope.custom_fields: expected a JSON object of field name to value or list of "
        "values, got str 'Ring=dev'"
    ]
