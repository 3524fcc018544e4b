"""The app factory: ``create_app()`` wires settings, store, online state and routers together.

Nothing is built at import time. Uvicorn calls the factory (``shopflow.serving.app:create_app``
with ``factory=True``); the lifespan then opens the store and the online state named by the
settings, or uses the ones given (tests pass their own). Every error answer is JSON
``{"detail": ..., "status": ...}``.

Example
-------
>>> from fastapi.testclient import TestClient
>>> from shopflow.store.store import Store
>>> with TestClient(create_app(store=Store.from_url("sqlite://"))) as client:
...     client.get("/healthz").json()
{'status': 'ok'}
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from shopflow.config import Settings, load_settings
from shopflow.errors import BackendUnavailable, NotFound, ShopflowError, ValidationFailed
from shopflow.serving import metrics
from shopflow.serving.auth import KeyRing, ScopeRule, by_method, require_scope
from shopflow.serving.deps import Services
from shopflow.serving.ingest_service import BadRequest, BatchTooLarge, IngestService
from shopflow.serving.logs import AccessLogMiddleware
from shopflow.serving.recommend import RecommendService
from shopflow.serving.reload import pace_collector, watch_bundles
from shopflow.serving.routes import admin, assistant, events, health, items, recommendations, users
from shopflow.serving.shared import watch_shared
from shopflow.store.online import OnlineState, make_online_state
from shopflow.store.store import Store

log = logging.getLogger(__name__)

# `shopflow serve` puts the settings it resolved here, so that every uvicorn worker builds the same.
SETTINGS_ENV = "_SHOPFLOW_SERVE_SETTINGS"
# Largest request body: a full batch of events with long reviews fits; more is refused with 413.
MAX_BODY_BYTES = 64 * 1024 * 1024
# One router per resource, with the API-key scope it needs (shopflow.serving.auth): a fixed
# scope ("ingest", "read", "admin"), by_method(...) when reads and writes differ, or None (public).
# A new resource is one more module and one more (router, scope) entry here.
USER_ADMIN_ROUTES = ("GET /v1/users/{user_id}/export", "DELETE /v1/users/{user_id}")
ROUTERS: tuple[tuple[APIRouter, ScopeRule | None], ...] = (
    (health.router, None),
    (metrics.router, None),
    (events.router, "ingest"),
    (items.router, by_method(read="read", write="ingest")),
    (users.router, by_method(read="read", write="ingest", admin=USER_ADMIN_ROUTES)),
    (recommendations.router, "read"),
    (assistant.router, "read"),
    (admin.router, "admin"),
)
STATUS_OF: tuple[tuple[type[ShopflowError], int], ...] = (
    (NotFound, 404),
    (BatchTooLarge, 413),
    (ValidationFailed, 422),
    (BadRequest, 400),
    (BackendUnavailable, 503),
)


def settings_from_env() -> Settings:
    """The settings ``shopflow serve`` handed over, else those of the environment and TOML file."""
    raw = os.environ.get(SETTINGS_ENV)
    if raw:
        return load_settings(**orjson.loads(raw))
    return load_settings()


def _version() -> str:
    try:
        return version("shopflow")
    except PackageNotFoundError:
        return "0+unknown"


def create_app(
    settings: Settings | None = None,
    store: Store | None = None,
    online_state: OnlineState | None = None,
) -> FastAPI:
    """Build the HTTP app; the store and online state are opened when it starts.

    Parameters
    ----------
    settings
        Defaults to :func:`settings_from_env` (read at startup, not now).
    store
        Use this store instead of opening ``Store.from_settings(settings)``; the caller closes it.
    online_state
        Use this online state instead of ``make_online_state(settings)``.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings if settings is not None else settings_from_env()
        st = store if store is not None else Store.from_settings(s)
        online = online_state if online_state is not None else make_online_state(s)
        app.state.keyring = KeyRing.from_settings(s.auth)
        recommend = RecommendService(st, online, s)
        await asyncio.to_thread(recommend.start)
        ingest = IngestService(st, online, s.ingest, listener=recommend)
        # where recommendations are computed (routes/recommendations.respond): on the event loop
        # (None), or in this many threads at a time
        threads = recommend.config.compute_threads
        app.state.compute_limiter = anyio.CapacityLimiter(threads) if threads > 0 else None
        app.state.services = Services(s, st, online, ingest, recommend)
        watcher = asyncio.create_task(watch_bundles(recommend.keeper))
        tasks = [watcher]
        cfg = recommend.config
        if cfg.freeze_heap and cfg.collect_seconds > 0:  # young collections by the clock
            pacer = pace_collector(cfg.collect_seconds, cfg.freeze_ticks, cfg.settle_seconds)
            tasks.append(asyncio.create_task(pacer))
        if online.shared:  # several workers: replay what the others learned, share counts
            jobs = [
                lambda: recommend.context.shared.pull(recommend.state),
                recommend.impressions.flush,
            ]
            every = recommend.config.share_seconds
            tasks.append(asyncio.create_task(watch_shared(jobs, every)))
        log.info(
            "service started",
            extra={"database": st.backend, "online_state": type(online).__name__},
        )
        if not app.state.keyring.active:
            log.warning(
                "API keys are OFF: anyone who can reach this port can read and change everything",
                extra={"why": _auth_off_reason(s)},
            )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            app.state.services = None
            await asyncio.to_thread(ingest.close)  # batches still waiting are written first
            recommend.close()
            if store is None:
                st.close()
            log.info("service stopped")

    app = FastAPI(
        title="shopflow",
        summary="Self-hosted, real-time recommendations for e-commerce.",
        version=_version(),
        lifespan=lifespan,
        docs_url="/docs",
        max_body_size=MAX_BODY_BYTES,
    )
    app.state.services = None
    app.state.keyring = None
    _install_error_handlers(app)
    app.add_middleware(AccessLogMiddleware)
    app.add_middleware(metrics.MetricsMiddleware)
    for router, rule in ROUTERS:
        guard = [] if rule is None else [Depends(require_scope(rule))]
        app.include_router(router, dependencies=guard)
    return app


def _auth_off_reason(s: Settings) -> str:
    if s.auth.demo:
        return "demo mode (auth.demo)"
    if not s.auth.enabled:
        return "auth.enabled is false"
    return "no API key configured: set SHOPFLOW_AUTH__API_KEY or auth.keys (see `shopflow keys`)"


def error_response(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail, "status": status}, status_code=status, headers=headers)


def _describe_request_error(exc: RequestValidationError) -> tuple[int, str]:
    """Status and message of a request FastAPI could not parse (bad JSON, wrong query type, ...)."""
    parts, status = [], 422
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":
            pos = loc[1] if len(loc) > 1 else "?"
            reason = (err.get("ctx") or {}).get("error", "JSON decode error")
            parts.append(f"malformed JSON at character {pos}: {reason}")
            status = 400
        elif loc == ["body"] and err.get("type") == "missing":
            parts.append("the request body is empty; send JSON with Content-Type: application/json")
            status = 400
        else:
            where = ".".join(loc[1:] if loc and loc[0] in {"query", "path", "body"} else loc)
            parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg")))
    return status, "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    async def on_request_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(*_describe_request_error(exc))

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    async def on_shopflow_error(_: Request, exc: Exception) -> JSONResponse:
        for cls, status in STATUS_OF:
            if isinstance(exc, cls):
                return error_response(status, str(exc))
        log.error("unmapped shopflow error", extra={"error_type": type(exc).__name__})
        return error_response(500, str(exc))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", exc_info=exc, extra={"error_type": type(exc).__name__})
        return error_response(500, "internal error; the server log has the details")

    handlers: dict[Any, Any] = {
        RequestValidationError: on_request_error,
        HTTPException: on_http_error,
        ShopflowError: on_shopflow_error,
        Exception: on_unexpected,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
