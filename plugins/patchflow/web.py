"""A page in the Airflow UI listing the sealed evidence packs, and serving their files.

Mounted by the plugin under ``/patchflow``; behind Airflow's own authentication (the UI's
session cookie or a bearer token), so reports are visible to logged-in users only. Files are
looked up through the chain index, never by a path taken from the URL.
"""

from __future__ import annotations

import html
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from patchflow.locations import reports_base

MEDIA_TYPES = {
    "report.html": "text/html; charset=utf-8",
    "audit.json": "application/json",
    "validation.json": "application/json",
    "manifest.json": "application/json",
    "audit.csv": "text/csv; charset=utf-8",
}


def _auth() -> list[Any]:
    try:
        from airflow.api_fastapi.core_api.security import requires_authenticated
    except ImportError:  # outside the API server (unit tests build the app without Airflow auth)
        return []
    return [Depends(requires_authenticated())]


def create_app(base: Any = None, *, authenticate: bool = True) -> FastAPI:
    """The reports app; ``base`` defaults to the configured reports location."""
    app = FastAPI(title="patchflow reports", dependencies=_auth() if authenticate else [])

    def location() -> Any:
        return base if base is not None else reports_base()

    def packs() -> list[dict[str, Any]]:
        from include.reporting.evidence_pack import read_chain

        return list(reversed(read_chain(location())))

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        rows = "".join(
            f"<tr><td>{html.escape(p['created_at'])}</td><td>{html.escape(p['run_id'])}</td>"
            f'<td><a href="runs/{html.escape(p["pack"])}/report.html">report</a> · '
            f'<a href="runs/{html.escape(p["pack"])}/audit.csv">CSV</a> · '
            f'<a href="runs/{html.escape(p["pack"])}/manifest.json">manifest</a></td></tr>'
            for p in packs()
        )
        body = rows or '<tr><td colspan="3">No evidence pack has been sealed yet.</td></tr>'
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Patch reports</title>"
            "<style>body{font-family:system-ui,sans-serif;margin:2rem}td,th{padding:.3rem .8rem;"
            "text-align:left;border-bottom:1px solid #ddd}</style></head><body><h1>Patch audit reports</h1>"
            '<p><a href="compliance/compliance.html">Fleet compliance report</a></p>'
            f"<table><tr><th>Sealed</th><th>Run</th><th>Files</th></tr>{body}</table></body></html>"
        )

    @app.get("/runs/{run}/{name}")
    def pack_file(run: str, name: str) -> Response:
        from include.reporting.evidence_pack import safe_run_id

        if name not in MEDIA_TYPES:
            raise HTTPException(404, f"{name} is not part of an evidence pack")
        entry = next((p for p in packs() if run in (p["pack"], p["run_id"], safe_run_id(p["run_id"]))), None)
        if entry is None:
            raise HTTPException(404, f"no sealed evidence pack for run {run!r}")
        with (location() / "runs" / entry["pack"] / name).open("rb") as fh:
            return Response(fh.read(), media_type=MEDIA_TYPES[name])

    @app.get("/compliance/{name}")
    def compliance_file(name: str) -> Response:
        if name not in ("compliance.html", "compliance.csv", "compliance_runs.csv", "compliance.json"):
            raise HTTPException(404, f"{name} is not a compliance report file")
        path = location() / "compliance" / name
        if not path.exists():
            raise HTTPException(404, "the compliance report has not been built yet")
        with path.open("rb") as fh:
            kind = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}.get(
                name.rsplit(".", 1)[1], "application/json"
            )
            return Response(fh.read(), media_type=kind)

    return app
