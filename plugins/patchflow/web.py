"""The patchflow pages inside the Airflow UI: the reports index, each run's board and report.

Mounted by the plugin under ``/patchflow`` (``URL_PREFIX``); behind Airflow's own
authentication (the UI's session cookie or a bearer token), and every page of one run also
behind Airflow's permission to read that DAG's runs. Files are looked up through the chain
index, never by a path taken from the URL. A person never gets raw JSON: an error is a short
HTML page saying what is missing and where to go (JSON clients still get JSON).

Pages (templates in ``templates/``, autoescaped; their CSS and the one script are template
files too, served from here, so the pages load nothing from elsewhere):

- ``/``: every sealed evidence pack, newest first, with its counts (``reports_index.html.j2``);
- ``/run/<dag_id>/<run_id>``: the run's tab: the report once sealed, else the live board;
- ``/board/<dag_id>/<run_id>``: the live board (``?part=board``: only the part that refreshes);
- ``/rerun/<dag_id>/<run_id>``: a new run for the servers the run did not patch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from include.patching.progress import STATUS_LABELS, BoardStatus
from include.patching.states import SKIPPED_STATES, ServerState
from include.templating import Templates
from patchflow.board import (
    PATCH_DAG_ID,
    REFRESH_SECONDS,
    BoardPage,
    RerunPage,
    RunFactsLookup,
    airflow_run_facts,
    links_for,
    load_board,
    rows_to_retry,
)
from patchflow.locations import artifacts_base, reports_base

URL_PREFIX = "/patchflow"
WEB_TEMPLATES = Templates(
    __file__,
    names={"BoardStatus": BoardStatus, "STATUS_LABELS": STATUS_LABELS, "REFRESH_SECONDS": REFRESH_SECONDS},
)
INDEX_LIMIT = 100
"""Packs listed on the index (newest first); older ones stay in ``chain.json`` and on disk."""

MEDIA_TYPES = {
    "report.html": "text/html; charset=utf-8",
    "audit.json": "application/json",
    "validation.json": "application/json",
    "manifest.json": "application/json",
    "audit.csv": "text/csv; charset=utf-8",
}
#: Columns of the index: (label, states counted together).
INDEX_COUNTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Patched", frozenset({ServerState.PATCHED})),
    ("Up to date", frozenset({ServerState.PATCHED_NO_UPDATES})),
    ("Failed", frozenset({ServerState.FAILED})),
    ("Timed out", frozenset({ServerState.TIMED_OUT})),
    ("Unhealthy", frozenset({ServerState.UNHEALTHY})),
    ("Reverted", frozenset({ServerState.REVERTED, ServerState.REVERT_FAILED})),
    ("Not attempted", frozenset({ServerState.NOT_ATTEMPTED, ServerState.SKIPPED_NO_SNAPSHOT})),
    ("Skipped", frozenset(SKIPPED_STATES)),
    ("Planned", frozenset({ServerState.PLANNED_DRY_RUN})),
)
#: Counted as "needs a new run" on the index (the rerun page lists them).
RETRY_COLUMNS = frozenset({"Failed", "Timed out", "Reverted", "Not attempted"})


def _auth() -> list[Any]:
    try:
        from airflow.api_fastapi.core_api.security import requires_authenticated
    except ImportError:  # outside the API server (unit tests build the app without Airflow auth)
        return []
    return [Depends(requires_authenticated())]


def _run_access() -> list[Any]:
    """Airflow's permission to read the runs of the DAG named in the path (``dag_id``)."""
    try:
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
        from airflow.api_fastapi.core_api.security import requires_access_dag
    except ImportError:
        return []
    return [Depends(requires_access_dag(method="GET", access_entity=DagAccessEntity.RUN))]


@dataclass(frozen=True)
class IndexRow:
    """One sealed pack on the index."""

    run_id: str
    pack: str
    created_at: str
    dry_run: bool
    counts: list[tuple[str, int]] = field(default_factory=list)
    problem: str = ""
    dag_id: str = PATCH_DAG_ID
    """The DAG that sealed it: ``patch_fleet``, or a user's DAG built from the building blocks."""

    @property
    def to_retry(self) -> int:
        return sum(n for label, n in self.counts if label in RETRY_COLUMNS)

    @property
    def has_board(self) -> bool:
        """The board and the re-run page know ``patch_fleet``'s run folder and conf only."""
        return self.dag_id == PATCH_DAG_ID


def index_row(location: Any, entry: dict[str, Any]) -> IndexRow:
    """A pack's line: its counts by state from its ``audit.json`` summary."""
    from include.reporting.evidence_pack import read_json

    base = IndexRow(run_id=entry["run_id"], pack=entry["pack"], created_at=entry["created_at"], dry_run=False)
    try:
        document = read_json(location / "runs" / entry["pack"] / "audit.json")
        by_state = Counter({str(k): int(v) for k, v in document["summary"]["by_state"].items()})
        dry_run = bool(document["run"].get("dry_run"))
        dag_id = str(document["run"].get("dag_id") or PATCH_DAG_ID)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        return IndexRow(**{**base.__dict__, "problem": f"audit.json unreadable: {exc}"})
    counts = [(label, sum(by_state[s] for s in states)) for label, states in INDEX_COUNTS]
    return IndexRow(**{**base.__dict__, "dry_run": dry_run, "counts": counts, "dag_id": dag_id})


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def create_app(
    base: Any = None,
    *,
    artifacts: Any = None,
    run_facts: RunFactsLookup = airflow_run_facts,
    clock: Callable[[], datetime] | None = None,
    authenticate: bool = True,
) -> FastAPI:
    """The pages app; ``base``/``artifacts`` default to the configured reports and artifacts locations."""
    from include.timefmt import utcnow

    app = FastAPI(title="patchflow reports", dependencies=_auth() if authenticate else [])
    run_access = _run_access() if authenticate else []
    now = clock or utcnow

    def location() -> Any:
        return base if base is not None else reports_base()

    def artifacts_location() -> Any:
        return artifacts if artifacts is not None else artifacts_base()

    def packs() -> list[dict[str, Any]]:
        from include.reporting.evidence_pack import read_chain

        return list(reversed(read_chain(location())))

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        html = WEB_TEMPLATES.render(template, root=root, **context)
        return HTMLResponse(html, status_code=status_code)

    @app.exception_handler(StarletteHTTPException)  # also the router's own 404s
    def friendly_error(request: Request, exc: StarletteHTTPException) -> Response:
        if not _wants_html(request):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return page(request, "not_found.html.j2", exc.status_code, detail=str(exc.detail))

    @app.exception_handler(RequestValidationError)
    def friendly_validation_error(request: Request, exc: RequestValidationError) -> Response:
        return friendly_error(request, HTTPException(404, "no such page"))

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> HTMLResponse:
        listed = packs()
        rows = [index_row(location(), entry) for entry in listed[:INDEX_LIMIT]]
        return page(
            request,
            "reports_index.html.j2",
            rows=rows,
            total=len(listed),
            columns=[label for label, _ in INDEX_COUNTS],
            dag_id=PATCH_DAG_ID,
            compliance=(location() / "compliance" / "compliance.html").exists(),
        )

    def sealed_entry(run: str) -> dict[str, Any] | None:
        from include.reporting.evidence_pack import safe_run_id

        return next((p for p in packs() if run in (p["pack"], p["run_id"], safe_run_id(p["run_id"]))), None)

    @app.get("/runs/{run}/{name}")
    def pack_file(run: str, name: str) -> Response:
        if name not in MEDIA_TYPES:
            raise HTTPException(404, f"{name} is not part of an evidence pack")
        entry = sealed_entry(run)
        if entry is None:
            raise HTTPException(
                404,
                f"run {run!r} has no sealed evidence pack (yet): the audit seals it at the end of the run.",
            )
        with (location() / "runs" / entry["pack"] / name).open("rb") as fh:
            return Response(fh.read(), media_type=MEDIA_TYPES[name])

    @app.get("/compliance/{name}")
    def compliance_file(name: str) -> Response:
        if name not in ("compliance.html", "compliance.csv", "compliance_runs.csv", "compliance.json"):
            raise HTTPException(404, f"{name} is not a compliance report file")
        path = location() / "compliance" / name
        if not path.exists():
            raise HTTPException(404, "the compliance report has not been built yet (DAG compliance_report)")
        with path.open("rb") as fh:
            kind = {"html": "text/html; charset=utf-8", "csv": "text/csv; charset=utf-8"}.get(
                name.rsplit(".", 1)[1], "application/json"
            )
            return Response(fh.read(), media_type=kind)

    def board_page(request: Request, dag_id: str, run_id: str) -> BoardPage:
        facts = run_facts(dag_id, run_id)
        links = links_for(request.scope.get("root_path", ""), URL_PREFIX, dag_id, run_id)
        moment = now()
        return BoardPage(
            board=load_board(artifacts_location(), dag_id, run_id, facts, moment),
            dag_id=dag_id,
            run_id=run_id,
            facts=facts,
            links=links,
            sealed=sealed_entry(run_id) is not None,
            now=moment,
        )

    @app.get("/run/{dag_id}/{run_id:path}", dependencies=run_access)
    def run_tab(request: Request, dag_id: str, run_id: str) -> Response:
        """The run's tab: the sealed report (of any DAG that seals packs), else patch_fleet's live
        board; on other DAGs, what the tab is for."""
        entry = sealed_entry(run_id)
        if entry is not None and index_row(location(), entry).dag_id == dag_id:
            with (location() / "runs" / entry["pack"] / "report.html").open("rb") as fh:
                return HTMLResponse(fh.read())
        if dag_id != PATCH_DAG_ID:
            return page(request, "not_a_patch_run.html.j2", dag_id=dag_id, patch_dag_id=PATCH_DAG_ID)
        return page(request, "board.html.j2", view=board_page(request, dag_id, run_id))

    @app.get("/board/{dag_id}/{run_id:path}", dependencies=run_access)
    def board(request: Request, dag_id: str, run_id: str, part: str = "") -> Response:
        if dag_id != PATCH_DAG_ID:
            return page(request, "not_a_patch_run.html.j2", dag_id=dag_id, patch_dag_id=PATCH_DAG_ID)
        template = "_board_part.html.j2" if part == "board" else "board.html.j2"
        return page(request, template, view=board_page(request, dag_id, run_id))

    @app.get("/rerun/{dag_id}/{run_id:path}", dependencies=run_access)
    def rerun(request: Request, dag_id: str, run_id: str) -> Response:
        """A new run for the servers this one did not patch: from the sealed audit, else the ledgers."""
        from include.patching.rerun import rerun_for
        from include.reporting.evidence_pack import read_json

        if dag_id != PATCH_DAG_ID:
            return page(request, "not_a_patch_run.html.j2", dag_id=dag_id, patch_dag_id=PATCH_DAG_ID)
        links = links_for(request.scope.get("root_path", ""), URL_PREFIX, dag_id, run_id)
        entry = sealed_entry(run_id)
        if entry is not None:
            audit = read_json(location() / "runs" / entry["pack"] / "audit.json")
            servers = rows_to_retry(audit)
            settings = audit.get("run", {}).get("params") or {}
            source = "the sealed audit"
        else:
            view = board_page(request, dag_id, run_id)
            if view.live:
                raise HTTPException(409, "the run is still going: a new run is offered once it has ended")
            servers = [
                {"server_id": r.server_id, "name": r.name, "state": str(r.state), "reason": r.detail}
                for r in view.board.not_patched
            ]
            settings, source = view.board.settings, "the rollout ledgers (no evidence pack was sealed)"
        plan = rerun_for(dag_id, settings, [s["server_id"] for s in servers])
        view_model = RerunPage(
            dag_id=dag_id, run_id=run_id, rerun=plan, servers=servers, links=links, source=source
        )
        return page(request, "rerun.html.j2", view=view_model)

    @app.get("/static/board.js")
    def board_script() -> Response:
        with (WEB_TEMPLATES.folder / "board.js").open("rb") as fh:
            return Response(fh.read(), media_type="text/javascript; charset=utf-8")

    return app
