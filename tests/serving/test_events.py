"""POST /v1/events through the real app: partial acceptance, idempotency, limits, bad input."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from shopflow.config import load_settings
from shopflow.ingest.schema import Event
from shopflow.store.online import MemoryState, OnlineState
from shopflow.store.store import Store
from tests.serving.conftest import T0, ClientFactory, ev

UNKNOWN_TYPE = (
    "type: unknown event type 'teleport'; expected one of: view, click, add_to_cart, "
    "remove_from_cart, purchase, search, favorite, rating, review, impression"
)
FUTURE = (
    "timestamp: 2100-01-01T00:00:00+00:00 is in the future (more than 1 day, 0:00:00 after now)"
)


def test_partial_batch_keeps_valid_events_and_resend_is_idempotent(
    store: Store, make_client: ClientFactory
) -> None:
    client = make_client(store)
    batch = [
        ev(1),
        ev(2, type="teleport"),
        ev(3, type="purchase", value=2),
        ev(4, timestamp="2100-01-01T00:00:00Z"),
        ev(5, user="u2"),
    ]
    r = client.post("/v1/events", json=batch)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["accepted"] == 3
    assert body["duplicates"] == 0
    assert body["accepted_ids"] == ["e1", "e3", "e5"]
    assert body["rejected"] == [
        {"index": 1, "reason": UNKNOWN_TYPE},
        {"index": 3, "reason": FUTURE},
    ]
    assert store.events.count() == 3
    assert store.events.contains(["e1", "e2", "e3", "e4", "e5"]) == {"e1", "e3", "e5"}

    again = client.post("/v1/events", json=batch).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    assert again["duplicate_ids"] == ["e1", "e3", "e5"]
    assert [x["index"] for x in again["rejected"]] == [1, 3]
    assert store.events.count() == 3
    # the online state took each event once, not once per request
    assert [e["event_id"] for e in client.get("/v1/users/u1/events").json()["events"]] == [
        "e1",
        "e3",
    ]


def test_object_form_and_repeated_id_inside_a_batch(
    store: Store, make_client: ClientFactory
) -> None:
    client = make_client(store)
    first, second = ev(1, item_id="first"), ev(1, item_id="second")
    body = client.post("/v1/events", json={"events": [first, second, ev(2)]}).json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert body["accepted_ids"] == ["e1", "e2"]
    stored = store.events.user_events("u1")
    assert [(e.event_id, e.item_id) for e in stored] == [("e1", "first"), ("e2", "i2")]


def test_accepted_event_is_visible_at_once(
    sqlite_store: Store, online_state: OnlineState, make_client: ClientFactory
) -> None:
    client = make_client(sqlite_store, online_state)
    search = ev(2, type="search", item_id=None, query="green tea", session_id="s1")
    r = client.post("/v1/events", json=[ev(1, session_id="s1"), search])
    assert r.json()["accepted"] == 2
    seen = client.get("/v1/users/u1/events").json()
    assert seen["source"] == "online"
    assert [(e["event_id"], e["type"], e["item_id"], e["query"]) for e in seen["events"]] == [
        ("e1", "view", "i1", None),
        ("e2", "search", None, "green tea"),
    ]
    assert seen["events"][0]["timestamp"] == "2023-11-14T22:13:21Z"
    assert [r.event_id for r in online_state.recent("u1")] == ["e1", "e2"]
    assert online_state.item_counts("i1") == {"view": 1}


def test_batch_over_the_limit_is_refused_whole(
    store: Store, make_client: ClientFactory, tmp_path: Path
) -> None:
    small = load_settings(data_dir=tmp_path, ingest={"max_batch_size": 3})
    online = MemoryState()
    client = make_client(store, online, small)
    r = client.post("/v1/events", json=[ev(i) for i in range(1, 5)])
    assert r.status_code == 413
    assert "batch of 4 events is over the limit of 3" in r.json()["detail"]
    assert store.events.count() == 0
    assert online.recent("u1") == []
    assert client.post("/v1/events", json=[ev(i) for i in range(1, 4)]).json()["accepted"] == 3


@pytest.mark.parametrize(
    ("content", "headers", "message"),
    [
        (b'[{"event_id": "e1",', {}, "malformed JSON at character"),
        (b"", {}, "the request body is empty"),
        (b"5", {}, 'expected a JSON array of events or an object {"events": [...]}, not number'),
        (b'"e1"', {}, "not string"),
        (b'{"event_id": "e1"}', {}, "the object has no 'events' key"),
        (b'{"events": {"event_id": "e1"}}', {}, "'events' must be a JSON array, not object"),
        (b"[]", {"content-type": "text/plain"}, "the body is not JSON"),
    ],
)
def test_bad_bodies_are_400_and_write_nothing(
    sqlite_store: Store,
    make_client: ClientFactory,
    content: bytes,
    headers: dict[str, str],
    message: str,
) -> None:
    client = make_client(sqlite_store)
    r = client.post(
        "/v1/events", content=content, headers={"content-type": "application/json", **headers}
    )
    assert r.status_code == 400, r.text
    assert message in r.json()["detail"]
    assert r.json()["status"] == 400
    assert sqlite_store.events.count() == 0


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (ev(1, type="teleport"), UNKNOWN_TYPE),
        (ev(1, timestamp="2100-01-01T00:00:00Z"), FUTURE),
        ({k: v for k, v in ev(1).items() if k != "user_id"}, "user_id: is required"),
        (ev(1, user=""), "user_id: must not be empty"),
        (ev(1, user=["u1"]), "user_id: must be a string id, not list"),
        (ev(1, timestamp="yesterday"), "timestamp: 'yesterday' is not an ISO 8601 time"),
        (ev(1, timestamp=T0 * 1000), "too large for unix seconds (milliseconds? divide by 1000)"),
        (ev(1, type="purchase", value=-2), "value: quantity must not be negative"),
        (ev(1, item_id=None), "item_id: is required for a view event"),
        (ev(1, colour="red"), "colour: is not a known field"),
        ("e1", "must be a JSON object, not str"),
    ],
)
def test_a_batch_of_only_bad_events_is_422_with_reasons(
    sqlite_store: Store, make_client: ClientFactory, event: Any, reason: str
) -> None:
    client = make_client(sqlite_store)
    r = client.post("/v1/events", json=[event])
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["accepted"] == 0
    assert body["detail"] == "all 1 events were rejected; see `rejected` for the reasons"
    assert [x["index"] for x in body["rejected"]] == [0]
    assert reason in body["rejected"][0]["reason"]
    assert sqlite_store.events.count() == 0


def test_failed_online_update_still_answers_after_the_durable_append(
    sqlite_store: Store, make_client: ClientFactory
) -> None:
    """Redis down after startup: the events are stored, and the answer says the state lagged."""
    from tests.conftest import REDIS_URL, _redis_reason

    if _redis_reason():
        pytest.skip(_redis_reason())
    from shopflow.store.online_redis import RedisState

    state = RedisState(REDIS_URL, prefix="sftest:down:")
    state.client = redis.Redis(host="127.0.0.1", port=1, retry=Retry(NoBackoff(), 0))
    client = make_client(sqlite_store, state)
    body = client.post("/v1/events", json=[ev(1)]).json()
    assert (body["accepted"], body["online_updated"]) == (1, False)
    assert sqlite_store.events.contains(["e1"]) == {"e1"}


def test_service_callable_without_http(sqlite_store: Store) -> None:
    """The orchestration is framework-free: same answers when called directly."""
    from shopflow.config import IngestSettings
    from shopflow.serving.ingest_service import BatchTooLarge, IngestService

    online = MemoryState()
    service = IngestService(sqlite_store, online, IngestSettings(max_batch_size=2))
    report = service.ingest_events([ev(1), ev(2, type="teleport")])
    assert (report.accepted, [r.index for r in report.rejected]) == (1, [1])
    assert [r.event_id for r in online.recent("u1")] == ["e1"]
    with pytest.raises(BatchTooLarge):
        service.ingest_events([ev(3), ev(4), ev(5)])
    assert isinstance(sqlite_store.events.user_events("u1")[0], Event)
    assert sqlite_store.events.count() == 1
