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
