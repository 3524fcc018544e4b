"""Structured logs of the service: one JSON object per line, through the standard ``logging``.

Personal data stays out: the access log names the route *template* (``/v1/users/{user_id}``), never
the path, query string or client address; services log counts and timings only.

Example
-------
>>> import logging
>>> rec = logging.LogRecord("shopflow", logging.INFO, "", 0, "events ingested", None, None)
>>> rec.accepted = 3
>>> JsonFormatter().format(rec).endswith('"message":"events ingested","accepted":3}')
True
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None)))
_STANDARD |= {"message", "asctime", "color_message"}  # uvicorn adds color_message
access_log = logging.getLogger("shopflow.access")
QUIET_ROUTES = frozenset({"/healthz", "/readyz"})


class JsonFormatter(logging.Formatter):
    """Format a record as a JSON line: time, level, logger, message, then every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(out, default=str).decode()


def configure_json_logging(level: str = "info") -> None:
    """Make every root handler write JSON lines (adding a stderr handler when there is none)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter())
    root.setLevel(level.upper())


class AccessLogMiddleware:
    """Log method, route template, status and duration of every HTTP request (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            level = logging.DEBUG if route in QUIET_ROUTES and status < 400 else logging.INFO
            access_log.log(
                level,
                "request",
                extra={
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                },
            )
