"""Preflight validation of the trigger form: each bad value is named before anything is touched."""

from __future__ import annotations

import pytest

from include.patching.run_params import ParameterError, validate


def test_defaults_are_no_looser_than_ssm():
    settings = validate({})
    assert settings.max_concurrency == "50" and settings.max_errors == "0"
    assert settings.maintenance_mode is True and settings.dry_run is False
    assert settings.account_alias is None


def test_values_are_normalised():
    settings = validate(
        {
            "account_alias": "demo",
            "data_centers": ["va1", "VA1", "uc1"],
            "server_allow_list": ["VA1DEMOWEB01"],
            "server_deny_list": "va1demodb01, va1demodb02",
            "max_concurrency": " 10% ",
            "max_errors": 2,
        }
    )
    assert settings.account_alias == "DEMO"
    assert settings.data_centers == ("VA1", "UC1")
    assert settings.server_allow_list == ("va1demoweb01",)
    assert settings.server_deny_list == ("va1demodb01", "va1demodb02")
    assert (settings.max_concurrency, settings.max_errors) == ("10%", "2")
    assert settings.as_dict()["data_centers"] == ["VA1", "UC1"]


@pytest.mark.parametrize(
    ("params", "name", "detail"),
    [
        ({"account_alias": "TOOLONG"}, "account_alias", "2-4"),
        ({"account_alias": "<x>"}, "account_alias", "'<x>'"),
        ({"data_centers": ["Virginia"]}, "data_centers", "'Virginia'"),
        ({"data_centers": 5}, "data_centers", "int"),
        ({"server_allow_list": ["va1;rm -rf"]}, "server_allow_list", "server id"),
        ({"server_allow_list": ["a"], "server_deny_list": ["A"]}, "server_deny_list", "also in"),
        ({"max_concurrency": "0"}, "max_concurrency", "at least 1"),
        ({"max_concurrency": "150%"}, "max_concurrency", "between 0% and 100%"),
        ({"max_concurrency": "abc"}, "max_concurrency", "count or a percentage"),
        ({"max_concurrency": True}, "max_concurrency", "neither a count"),
        ({"max_errors": "-1"}, "max_errors", "count or a percentage"),
        ({"server_timeout_minutes": 0}, "server_timeout_minutes", "1 to 1440"),
        ({"server_timeout_minutes": "60"}, "server_timeout_minutes", "1 to 1440"),
        ({"dry_run": "yes"}, "dry_run", "true or false"),
        ({"max_concurency": "5"}, "max_concurency", "unknown parameter"),
    ],
)
def test_bad_values_name_the_parameter(params, name, detail):
    with pytest.raises(ParameterError) as err:
        validate(params)
    assert str(err.value).startswith(f"{name}: ")
    assert detail in str(err.value)


def test_zero_errors_is_a_valid_budget():
    assert validate({"max_errors": "0"}).max_errors == "0"
    assert validate({"max_errors": "5%"}).max_errors == "5%"
