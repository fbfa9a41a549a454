"""Preflight validation of the trigger form: each bad value is named before anything is touched."""

from __future__ import annotations

import pytest

from include.patching.run_params import ParameterError, check, validate


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
        ({"account_alias": "TOOLONG"}, "account_alias", "2 to 4 letters or digits"),
        ({"account_alias": "<x>"}, "account_alias", "'<x>'"),
        ({"data_centers": ["Virginia"]}, "data_centers", "'Virginia'"),
        ({"data_centers": 5}, "data_centers", "int"),
        ({"server_allow_list": ["va1;rm -rf"]}, "server_allow_list", "server id"),
        ({"server_allow_list": ["a"], "server_deny_list": ["A"]}, "server_deny_list", "also in"),
        ({"max_concurrency": "0"}, "max_concurrency", "at least 1"),
        ({"max_concurrency": "150%"}, "max_concurrency", "between 0% and 100%"),
        ({"max_concurrency": "abc"}, "max_concurrency", "count or a percentage"),
        ({"max_concurrency": True}, "max_concurrency", "a count like '50'"),
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


def test_every_bad_value_is_named_at_once_not_only_the_first():
    with pytest.raises(ParameterError) as err:
        validate(
            {
                "account_alias": "TOOLONG",
                "data_centers": ["Virginia", "va1", "x"],
                "server_deny_list": ["ok-01", "bad id", "also;bad"],
                "max_concurrency": "abc",
                "max_errors": "200%",
                "server_timeout_minutes": 0,
                "dry_run": "yes",
                "max_concurency": "5",
            }
        )
    named = [p.split(":", 1)[0] for p in err.value.problems]
    assert named == [
        "max_concurency",
        "account_alias",
        "data_centers",
        "data_centers",
        "server_deny_list",
        "server_deny_list",
        "dry_run",
        "max_concurrency",
        "max_errors",
        "server_timeout_minutes",
    ]  # in the form's order
    text = str(err.value)
    for bad in ("'Virginia'", "'x'", "'bad id'", "'also;bad'", "'abc'", "'200%'", "'yes'"):
        assert bad in text
    assert "'va1'" not in text and "'ok-01'" not in text  # good entries are not blamed
    assert "did you mean max_concurrency?" in text


def test_check_keeps_the_good_values_next_to_the_problems():
    checked = check({"data_centers": ["va1", "Virginia"], "server_deny_list": ["va1x01", "bad id"]})
    assert checked.settings.data_centers == ("VA1",)
    assert checked.settings.server_deny_list == ("va1x01",)
    assert len(checked.problems) == 2 and checked.alias_is_usable()
    assert not check({"account_alias": "<x>"}).alias_is_usable()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_concurrency": 50}, ("50", "0")),
        ({"max_concurrency": 50, "max_errors": 0}, ("50", "0")),
        ({"max_concurrency": "50", "max_errors": 3}, ("50", "3")),
        ({"max_concurrency": " 10% ", "max_errors": "10%"}, ("10%", "10%")),
    ],
)
def test_limits_accept_integers_as_well_as_strings(params, expected):
    settings = validate(params)
    assert (settings.max_concurrency, settings.max_errors) == expected


@pytest.mark.parametrize(
    "value",
    [
        "\u0665\u0660",  # Arabic-Indic 50
        "\uff15\uff10",  # full-width 50
        "\u0967\u0966%",  # Devanagari 10%
    ],
)
def test_only_ascii_digits_are_numbers(value):
    with pytest.raises(ParameterError) as err:
        validate({"max_concurrency": value, "max_errors": value})
    assert err.value.problems == (
        f"max_concurrency: must be written with the digits 0-9, got {value!r}",
        f"max_errors: must be written with the digits 0-9, got {value!r}",
    )


def test_a_server_in_both_lists_is_named():
    with pytest.raises(ParameterError) as err:
        validate({"server_allow_list": ["a1", "b1"], "server_deny_list": ["A1", "B1"]})
    assert len(err.value.problems) == 2


def test_snapshot_parameters_default_to_todays_behaviour():
    settings = check({}).settings
    assert (settings.snapshot, settings.snapshot_expiration_days) == ("off", 3)
    assert settings.snapshot_keep is True and settings.revert_on_failure is False


def test_every_bad_snapshot_value_is_named_at_once():
    problems = check(
        {"snapshot": "always", "snapshot_expiration_days": 11, "snapshot_keep": "yes", "revert_on_failure": 1}
    ).problems
    assert [p.split(":", 1)[0] for p in problems] == [
        "snapshot",
        "snapshot_expiration_days",
        "snapshot_keep",
        "revert_on_failure",
    ]
    assert "off, best_effort, required" in problems[0] and "1 to 10" in problems[1]


def test_revert_on_failure_needs_a_snapshot_to_revert_to():
    (problem,) = check({"revert_on_failure": True}).problems
    assert problem.startswith("revert_on_failure:") and "best_effort or required" in problem
    settings = check(
        {"snapshot": "Required", "revert_on_failure": True, "snapshot_expiration_days": 10}
    ).settings
    assert (settings.snapshot, settings.revert_on_failure, settings.snapshot_expiration_days) == (
        "required",
        True,
        10,
    )


def test_custom_fields_are_trimmed_into_lists_of_values():
    settings = validate({"custom_fields": {" Ring ": " dev", "Environment": ["staging", "qa", "qa"]}})
    assert settings.custom_fields == {"Ring": ["dev"], "Environment": ["staging", "qa"]}
    assert validate({"custom_fields": None}).custom_fields == {} == validate({}).custom_fields


def test_every_bad_custom_field_entry_is_named():
    assert check({"custom_fields": ["Ring", "dev"]}).problems == (
        "custom_fields: expected a JSON object of field name to value or list of values, "
        "got list ['Ring', 'dev']",
    )
    problems = check(
        {"custom_fields": {"": "dev", "Ring": 3, "Env": [], "Tier": ["web", 1, " "], "Ok": "x", " Ok": "y"}}
    ).problems
    assert problems == (
        "custom_fields: '' is not a field name (a non-empty string)",
        "custom_fields: 'Ring': 3 is not a string or a non-empty list of strings",
        "custom_fields: 'Env': [] is not a string or a non-empty list of strings",
        "custom_fields: 'Tier': 1, ' ' is not a non-empty string",
        "custom_fields: ' Ok' is given twice",
    )
