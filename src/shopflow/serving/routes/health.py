"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: its backends answer)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from shopflow.store.online import OnlineState
from shopflow.store.store import Store

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])
# A user id no shop uses: reading its sequence is a real round trip to the online state.
PROBE_USER = "__shopflow_readyz__"


def check_database(store: Store) -> str | None:
    """None when ``SELECT 1`` runs on the database, else the reason."""
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1")).scalar_one()
    except Exception as exc:
        return f"database ({store.backend}) unreachable: {type(exc).__name__}: {exc}"
    return None


def check_online_state(online: OnlineState) -> str | None:
    """None when the online state answers a read, else the reason."""
    try:
        online.recent(PROBE_USER, 1)
    except Exception as exc:
        return f"online state ({type(online).__name__}) unreachable: {type(exc).__name__}: {exc}"
    return None


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="The database and the online state answer",
    responses={503: {"description": "A backend is unreachable; `detail` says which and why."}},
)
def readyz(request: Request) -> JSONResponse:
    services = getattr(request.app.state, "services", None)
    if services is None:
        problems = ["the service is not started (or is shutting down)"]
        checks: dict[str, Any] = {}
    else:
        db = check_database(services.store)
        online = check_online_state(services.online)
        checks = {"database": db or "ok", "online_state": online or "ok"}
        problems = [p for p in (db, online) if p]
    if problems:
        log.warning("not ready", extra={"problems": len(problems)})
        body = {"ready": False, "checks": checks, "detail": "; ".join(problems), "status": 503}
        return JSONResponse(body, status_code=503)
    return JSONResponse({"ready": True, "checks": checks})
