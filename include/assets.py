"""Assets shared by the producing and consuming DAGs (one constant per dataset)."""

from __future__ import annotations

from airflow.sdk import Asset

PATCH_AUDIT = Asset(name="patch_audit", uri="patchflow://audit/patch_fleet")
"""A patch run's evidence pack was written; the event's extra says where and the counts."""
