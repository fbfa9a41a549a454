"""Fixtures of the reporting tests (helpers live in audit_samples.py)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from audit_samples import fleet_rows, make_run


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    return copy.deepcopy(fleet_rows())


@pytest.fixture
def run() -> dict[str, Any]:
    return make_run()
