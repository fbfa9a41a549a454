"""The `clc_default` connection patchflow writes registers no secret too short to mask.

Airflow walks a connection's extra as possible secrets whenever a task reads it and warns once
per process ("Skipping masking for a secret as it's too short") about any short value — in
every rollout resume's log, since each resume is a new task process. A CLC alias is at most 4
characters, so it must not be in the extra; the login answer names it.
"""

from __future__ import annotations

import logging

import pytest

from launcher.env import clc_connection
from tests.plugins.cloud import ALIAS, PASSWORD, USER

TOO_SHORT = "too short"


@pytest.fixture
def fresh_masker_warning(monkeypatch):
    from airflow.sdk._shared.secrets_masker.secrets_masker import SecretsMasker

    monkeypatch.setattr(SecretsMasker, "_has_warned_short_secret", False)


def read_like_a_task(caplog) -> list[str]:
    from patchflow.hooks.clc import ClcHook

    hook = ClcHook("clc_default")
    with caplog.at_level(logging.WARNING):
        hook.settings  # noqa: B018 - what every task does first: read the connection
    return [r.getMessage() for r in caplog.records if TOO_SHORT in r.getMessage()]


def test_the_connection_of_demo_and_up_registers_no_short_secret(
    cloud, monkeypatch, caplog, fresh_masker_warning
):
    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", clc_connection(cloud.base, login=USER, password=PASSWORD))
    assert read_like_a_task(caplog) == []


def test_without_an_alias_in_the_connection_the_login_names_it(cloud, monkeypatch):
    from patchflow.hooks.clc import ClcHook

    monkeypatch.setenv("AIRFLOW_CONN_CLC_DEFAULT", clc_connection(cloud.base, login=USER, password=PASSWORD))
    hook = ClcHook("clc_default")
    hook.login()
    assert hook.account_alias == ALIAS


def test_an_alias_in_the_extra_is_what_makes_airflow_warn(cloud, caplog, fresh_masker_warning):
    """The cause, shown: the test cloud's own connection keeps ``account_alias`` in its extra."""
    assert read_like_a_task(caplog) == ["Skipping masking for a secret as it's too short (<5 chars)"]
