"""What every browser step of the full-stack test starts with: signing in to Airflow's UI."""

from __future__ import annotations

from typing import Any


def sign_in(page: Any, base: str, password: str) -> None:
    """Log in as ``admin`` on Airflow's login page and wait for the home page."""
    page.goto(base + "/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")
