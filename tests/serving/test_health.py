"""Liveness, readiness with unreachable backends, startup, JSON logs without personal data."""

from __future__ import annotations

import logging
import socket

import pytest
import redis
from fastapi.testclient import TestClient
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine

from shopflow.config import Settings
from shopflow.serving.app import create_app
from shopflow.serving.logs import JsonFormatter
from shopflow.store.catalog import Catalogue, UserStore
from shopflow.store.event_log import EventLog
from shopflow.store.online import OnlineState
from shopflow.store.store import Store
from tests.serving.conftest import ClientFactory, ev


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_healthz_and_readyz(
    sqlite_store: Store, online_state: OnlineState, make_client: ClientFactory
) -> None:
    client = make_client(sqlite_store, online_state)
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"ready": True, "checks": {"database": "ok", "online_state": "ok"}}


def test_readyz_503_when_the_database_is_unreachable(make_client: ClientFactory) -> None:
    engine = create_engine(
        f"postgresql+psycopg://nobody@127.0.0.1:{_closed_port()}/none",
        connect_args={"connect_timeout": 2},
    )
    dead = Store(engine, EventLog(engine), Catalogue(engine), UserStore(engine))
    client = make_client(dead)
    assert client.get("/healthz").status_code == 200
    r = client.get("/readyz")
    assert r.status_code == 503
    body = r.json()
    assert body["ready"] is False
    assert body["checks"]["online_state"] == "ok"
    assert body["detail"].startswith("database (postgresql) unreachable: OperationalError")


@pytest.mark.redis
def test_readyz_503_when_redis_is_unreachable(
    sqlite_store: Store, make_client: ClientFactory
) -> None:
    from tests.conftest import REDIS_URL, _redis_reason

    if _redis_reason():
        pytest.skip(_redis_reason())
    from shopflow.store.online_redis import RedisState

    state = RedisState(REDIS_URL, prefix="sftest:ready:")
    state.client = redis.Redis(host="127.0.0.1", port=_closed_port(), retry=Retry(NoBackoff(), 0))
    r = make_client(sqlite_store, state).get("/readyz")
    assert r.status_code == 503
    assert r.json()["checks"]["database"] == "ok"
    assert r.json()["detail"].startswith("online state (RedisState) unreachable: ConnectionError")


def test_not_started_app_answers_503(sqlite_store: Store, settings: Settings) -> None:
    client = TestClient(create_app(settings, sqlite_store))  # no `with`: lifespan never ran
    r = client.get("/v1/items/x")
    assert r.status_code == 503
    assert "not started" in r.json()["detail"]
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_unknown_route_and_method_are_json(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    assert client.get("/v1/nothing").json() == {"detail": "Not Found", "status": 404}
    r = client.patch("/v1/events", json=[])
    assert (r.status_code, r.json()["status"]) == (405, 405)


def test_openapi_lists_every_route(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert set(paths) == {
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/events",
        "/v1/items",
        "/v1/items/{item_id}",
        "/v1/items/{item_id}/history",
        "/v1/users/{user_id}",
        "/v1/users/{user_id}/events",
        "/v1/users/{user_id}/export",
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/items/{item_id}/complementary",
        "/v1/recommendations/cart",
        "/v1/search",
        "/v1/trending",
        "/v1/new-arrivals",
        "/v1/assistant",
        "/v1/admin/reload",
        "/v1/admin/bundle",
        "/v1/admin/impressions",
    }
    assert set(paths["/v1/users/{user_id}"]) == {"put", "get", "delete"}


def test_logs_are_json_with_counts_and_no_personal_data(
    sqlite_store: Store, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    import orjson

    client = make_client(sqlite_store)
    secret_user, secret_query = "alice-4711", "pregnancy test"
    search = ev(2, user=secret_user, type="search", item_id=None, query=secret_query)
    review = ev(3, user=secret_user, type="review", text="my private review")
    with caplog.at_level(logging.INFO, logger="shopflow"):
        client.post("/v1/events", json=[ev(1, user=secret_user), search, review])
        client.get(f"/v1/users/{secret_user}/events", params={"limit": 5})
        client.delete(f"/v1/users/{secret_user}")
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("shopflow")]
    records = [orjson.loads(line) for line in lines]
    text = "\n".join(lines)
    for secret in (secret_user, secret_query, "private review"):
        assert secret not in text
    ingested = next(r for r in records if r["message"] == "events ingested")
    assert (ingested["received"], ingested["accepted"], ingested["rejected"]) == (3, 3, 0)
    assert ingested["append_ms"] >= 0
    access = [r for r in records if r["logger"] == "shopflow.access"]
    assert [(r["method"], r["route"], r["status"]) for r in access] == [
        ("POST", "/v1/events", 200),
        ("GET", "/v1/users/{user_id}/events", 200),
        ("DELETE", "/v1/users/{user_id}", 200),
    ]
