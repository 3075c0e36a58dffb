"""The allocation API: a thin Starlette app over outputs/allocation.py and outputs/metrics.py.

Every request opens the PUBLISHED warehouse copy read-only, cut off from other files (readonly_query.sandbox), and
closes it: a newly published copy is read by the next request, and the live warehouse is never opened. Endpoints:
``/allocation``, ``/metrics``, ``/openapi.json`` and ``/healthz``. With INFERCOST_API_TOKEN set, every endpoint but
``/healthz`` asks for ``Authorization: Bearer <token>``. A parameter that cannot be used is a 400 whose ``error``
says why; an unknown parameter too (a misspelled ``aggregrate`` is never silently ignored). Imports no Dagster.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from pipelines.outputs.allocation import BadParameter, allocate
from pipelines.outputs.metrics import CONTENT_TYPE, metrics_text
from pipelines.serve.openapi import openapi_spec
from pipelines.settings import current
from pipelines.warehouse.readonly_query import open_read_only, sandbox

ALLOCATION_PARAMETERS = ("window", "aggregate", "idle_policy")


def _error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class Unavailable(RuntimeError):
    """The published warehouse is missing or lacks a table an endpoint reads (503)."""


def _read(path: Path, query: Callable[[duckdb.DuckDBPyConnection], object]):
    """``query`` on a fresh, sandboxed, read-only connection to the published copy."""
    if not path.exists():
        raise Unavailable(f"no published warehouse at {path}: run `infercost materialize` (or `infercost demo`) first")
    try:
        with sandbox(open_read_only(path)) as con:
            return query(con)
    except duckdb.CatalogException as exc:
        first = str(exc).splitlines()[0]
        raise Unavailable(f"the published warehouse lacks what this endpoint reads ({first}): rebuild it") from None


def build_app(published: Path | None = None, token: str | None = None) -> Starlette:
    """The app over the published copy at ``published`` (default: the settings'), asking for ``token`` if given."""
    settings = current()
    path = Path(published or settings.published)
    token = token if token is not None else settings.api_token

    def authorized(request: Request) -> bool:
        if not token:
            return True
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())

    def guarded(endpoint: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def wrapped(request: Request) -> Response:
            if not authorized(request):
                return _error(401, "a bearer token is required", {"WWW-Authenticate": 'Bearer realm="infercost"'})
            try:
                return endpoint(request)
            except BadParameter as exc:
                return _error(400, str(exc))
            except Unavailable as exc:
                return _error(503, str(exc))

        return wrapped

    def allocation(request: Request) -> Response:
        unknown = sorted(set(request.query_params) - set(ALLOCATION_PARAMETERS))
        if unknown:
            raise BadParameter(f"unknown parameter {', '.join(unknown)}: use {', '.join(ALLOCATION_PARAMETERS)}")
        repeated = [p for p in ALLOCATION_PARAMETERS if len(request.query_params.getlist(p)) > 1]
        if repeated:
            raise BadParameter(f"parameter {repeated[0]} given more than once")
        q = request.query_params
        body = _read(path, lambda con: allocate(con, q.get("window"), q.get("aggregate"), q.get("idle_policy")))
        body["published_at"] = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        return JSONResponse(body)

    def metrics(request: Request) -> Response:
        return PlainTextResponse(_read(path, metrics_text), media_type=CONTENT_TYPE)

    def openapi(request: Request) -> Response:
        return JSONResponse(openapi_spec(secured=bool(token)))

    def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "published_warehouse": path.exists()})

    routes = [
        Route("/allocation", guarded(allocation), methods=["GET"]),
        Route("/metrics", guarded(metrics), methods=["GET"]),
        Route("/openapi.json", guarded(openapi), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def run_api(host: str | None = None, port: int | None = None) -> None:
    """Serve the API with uvicorn until SIGINT or SIGTERM (the settings' host and port unless given)."""
    import uvicorn

    settings = current()
    uvicorn.run(
        build_app(),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
        access_log=False,
    )
