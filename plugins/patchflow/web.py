"""A page in the Airflow UI listing the sealed evidence packs, and serving their files.

Mounted by the plugin under ``/patchflow``; behind Airflow's own authentication (the UI's
session cookie or a bearer token), so reports are visible to logged-in users only. Files are
looked up through the chain index, never by a path taken from the URL. The index page is
``templates/reports_index.html.j2`` (autoescaped, its CSS in ``templates/reports_index.css``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from include.templating import Templates
from patchflow.locations import reports_base

WEB_TEMPLATES = Templates(__file__)

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
        return WEB_TEMPLATES.render("reports_index.html.j2", packs=packs())

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
