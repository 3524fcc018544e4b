"""Prometheus metrics of the service, exposed at ``/metrics`` (text format, public like /healthz).

What is measured (names as Prometheus shows them):

- ``shopflow_http_request_duration_seconds{method, route}``: latency histogram per route *template*
  (``/v1/users/{user_id}``, never the raw path, so no user or item id becomes a label; paths that
  match no route count as ``unmatched``);
- ``shopflow_http_requests_total{method, route, status}``: answers by status code;
- ``shopflow_events_total{outcome}``: events ``accepted``, ``duplicate`` and ``rejected`` by
  ``POST /v1/events`` (the ingest service calls :func:`observe_ingest`);
- ``shopflow_model_info{version}``: 1 for the model bundle in use (the recommend service calls
  :func:`set_model_version`), 0 for the ones it replaced.

Several workers: ``shopflow serve --workers N`` sets ``PROMETHEUS_MULTIPROC_DIR`` to
``<data_dir>/metrics`` (emptied at startup) before the workers start, and prometheus-client's
multiprocess mode then sums counters and histograms over all workers, whichever worker answers the
scrape. ``shopflow_model_info`` carries a ``pid`` label per worker in that mode; series of workers
that died stay until the next start. With one worker, metrics live in the process.

The middleware also names the worker process in an ``X-Shopflow-Worker`` header (its pid), so that a
client or a test can tell the workers apart.

Example
-------
>>> observe_ingest(accepted=2, duplicates=1, rejected=0)
>>> b'shopflow_events_total{outcome="duplicate"}' in render()[0]
True
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Read once, when prometheus-client decides how to store values (at its import), so both agree.
_MULTIPROC_DIR = os.environ.get(MULTIPROC_ENV)
WORKER_HEADER = b"x-shopflow-worker"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.035, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)

REGISTRY = CollectorRegistry()
REQUEST_SECONDS = Histogram(
    "shopflow_http_request_duration_seconds",
    "Time from request to the end of the answer, per route template.",
    ["method", "route"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
REQUESTS = Counter(
    "shopflow_http_requests",
    "HTTP answers by route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "shopflow_events",
    "Events received by POST /v1/events, by outcome (accepted, duplicate, rejected).",
    ["outcome"],
    registry=REGISTRY,
)
MODEL_INFO = Gauge(
    "shopflow_model_info",
    "1 for the model bundle version in use, 0 for versions it replaced.",
    ["version"],
    registry=REGISTRY,
    multiprocess_mode="liveall",
)
_current_version: list[str] = []  # the version MODEL_INFO shows as 1 (at most one entry)


def observe_ingest(accepted: int, duplicates: int, rejected: int) -> None:
    """Count the outcome of one events batch."""
    if accepted:
        EVENTS.labels("accepted").inc(accepted)
    if duplicates:
        EVENTS.labels("duplicate").inc(duplicates)
    if rejected:
        EVENTS.labels("rejected").inc(rejected)


def set_model_version(version: str | None) -> None:
    """Show ``version`` as the model bundle in use (None: no bundle loaded)."""
    for old in _current_version:
        if old != version:
            MODEL_INFO.labels(old).set(0)
    _current_version.clear()
    if version is not None:
        MODEL_INFO.labels(version).set(1)
        _current_version.append(version)


def render(accept: str | None = None) -> tuple[bytes, str]:
    """The metrics in the text format the ``Accept`` header asks for: ``(body, content type)``."""
    encoder, content_type = choose_encoder(accept or "")
    if _MULTIPROC_DIR:
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=_MULTIPROC_DIR)
        return encoder(registry), content_type
    return encoder(REGISTRY), content_type


def prepare_multiprocess_dir(path: Path) -> Path:
    """Create ``path`` empty (metrics of a previous run removed) for the workers to write into."""
    if path.is_dir():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    description="Latency per route, answers by status, events by outcome, model version.",
    response_class=Response,
)
def metrics(request: Request) -> Response:
    body, content_type = render(request.headers.get("accept"))
    return Response(body, media_type=content_type)


class MetricsMiddleware:
    """Time every HTTP request and count its status, labelled by route template (pure ASGI)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.worker = str(os.getpid()).encode()

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
                message["headers"] = [*message.get("headers", ()), (WORKER_HEADER, self.worker)]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"] if scope["method"] in METHODS else "other"
            REQUEST_SECONDS.labels(method, route).observe(time.perf_counter() - start)
            REQUESTS.labels(method, route, str(status)).inc()
