"""patch_fleet's trigger form: types only, so preflight (not JSON schema) names every bad value."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Schema keys that only describe or draw a field; anything else would make Airflow refuse the
#: run with raw JSON-schema text (a regular expression, a schema dump) for the first bad value.
DESCRIPTIVE = {"type", "items", "title", "description", "section", "examples"}


@pytest.fixture(scope="module")
def params():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags")).dags["patch_fleet"].params


def accepted_by_airflow(params, conf: dict) -> dict:
    trial = copy.deepcopy(params)
    for key, value in conf.items():
        trial[key] = value
    return trial.validate()


def test_the_form_schema_holds_no_rule_that_airflow_would_report_as_raw_schema_text(params):
    for name in params:
        schema = params.get_param(name).schema
        assert set(schema) <= DESCRIPTIVE, f"{name}: {sorted(set(schema) - DESCRIPTIVE)}"


@pytest.mark.parametrize(
    "conf",
    [
        {"max_concurrency": 50},
        {"max_concurrency": "50", "max_errors": 0},
        {"max_concurrency": "10%", "max_errors": "5%"},
    ],
)
def test_limits_may_be_integers_or_strings(params, conf):
    resolved = accepted_by_airflow(params, conf)
    assert {k: resolved[k] for k in conf} == conf


def test_bad_values_reach_preflight_which_names_them_all(params):
    conf = {"max_concurrency": "abc", "max_errors": "\u0665\u0660", "server_timeout_minutes": 0}
    resolved = accepted_by_airflow(params, conf)
    from include.patching.run_params import check

    named = [p.split(":", 1)[0] for p in check(resolved).problems]
    assert named == ["max_concurrency", "max_errors", "server_timeout_minutes"]


def test_the_groups_field_documents_the_matching_rule(params):
    text = params.get_param("groups").description
    assert "sub-groups" in text and "'Finance/Prod'" in text and "id" in text


def marked_required_by_the_form(schema: dict) -> bool:
    """Airflow 3.3's trigger form rule (``isRequired`` in its UI): a field gets the red asterisk
    when its schema has a type, unless that type is a list that includes "null"."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


def test_the_form_rule_mirrored_here_is_the_one_the_installed_ui_ships():
    import airflow

    bundles = (Path(airflow.__file__).parent / "ui" / "dist" / "assets").glob("index-*.js")
    rule = "!!e.schema.type&&(!Array.isArray(e.schema.type)||!e.schema.type.includes(`null`))"
    assert any(rule in bundle.read_text(errors="replace") for bundle in bundles)


def test_no_field_of_the_form_is_marked_required(params):
    required = [name for name in params if marked_required_by_the_form(params.get_param(name).schema)]
    assert required == []


def test_an_emptied_field_is_accepted_and_preflight_gives_it_the_default(params):
    from include.patching.run_params import check

    resolved = accepted_by_airflow(params, dict.fromkeys(params))
    checked = check(resolved)
    assert checked.problems == ()
    assert checked.settings.maintenance_mode is True and checked.settings.dry_run is False
    assert checked.settings.max_concurrency == "50" and checked.settings.server_timeout_minutes == 240


def test_every_field_keeps_its_description(params):
    assert all(params.get_param(name).description for name in params)


def test_bad_snapshot_values_reach_preflight_which_names_them_all(params):
    conf = {"snapshot": "sometimes", "snapshot_expiration_days": 0, "revert_on_failure": True}
    resolved = accepted_by_airflow(params, conf)
    from include.patching.run_params import check

    named = [p.split(":", 1)[0] for p in check(resolved).problems]
    assert named == ["snapshot", "snapshot_expiration_days", "revert_on_failure"]


def test_the_safety_net_fields_have_their_own_section_and_keep_todays_behaviour(params):
    fields = ("snapshot", "snapshot_expiration_days", "snapshot_keep", "revert_on_failure")
    assert {params.get_param(f).schema.get("section") for f in fields} == {"Safety net"}
    assert [params[f] for f in fields] == ["off", 3, True, False]
