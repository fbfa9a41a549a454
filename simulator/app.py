"""Assemble the FastAPI application around one :class:`Simulator`."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException as StarletteHTTPException

from simulator import admin, api_v2, health, patching
from simulator.core import Simulator
from simulator.errors import NOT_FOUND_MESSAGE, ApiError
from simulator.http_common import SimMiddleware, error_response, json_response


class SimHolder:
    """Indirection so that tests (and reset) can swap the simulator behind a running app."""

    def __init__(self, sim: Simulator, app: FastAPI):
        self.sim = sim
        self._app = app

    def routes(self):
        return self._app.router.routes


class SimApp(FastAPI):
    """FastAPI app with :class:`SimMiddleware` outermost, so that it sees uvicorn's own
    ``send`` (needed to cut the connection for the ``drop`` fault)."""

    _sim_middleware: SimMiddleware  # set by create_app, once the app it wraps is assembled

    async def __call__(self, scope, receive, send):
        await self._sim_middleware(scope, receive, send)

    async def _inner(self, scope, receive, send):
        await super().__call__(scope, receive, send)


def create_app(sim: Simulator) -> FastAPI:
    app = SimApp(title="CLC API v2 simulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.holder = SimHolder(sim, app)
    app.include_router(api_v2.router)
    app.include_router(patching.router)
    app.include_router(admin.router)
    app.include_router(health.router)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 405:
            return json_response(
                {"message": f"The requested resource does not support http method '{request.method}'."}, 405
            )
        if exc.status_code == 404:
            return json_response({"message": NOT_FOUND_MESSAGE}, 404)
        return json_response({"message": str(exc.detail)}, exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception):
        return json_response({"message": "An error has occurred."}, 500)

    app._sim_middleware = SimMiddleware(app._inner, app.state.holder)
    return app
