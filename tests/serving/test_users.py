"""User records, recent events, export and erasure through the real app, on every backend."""

from __future__ import annotations

from typing import Any

import pytest

from shopflow.store.online import MemoryState, OnlineState
from shopflow.store.store import Store
from tests.serving.conftest import ClientFactory, ev

ALICE = {"attributes": {"country": "DE", "tier": 2}, "consent": {"personalization": False}}


def test_put_get_replace_user(store: Store, make_client: ClientFactory) -> None:
    client = make_client(store)
    r = client.put("/v1/users/alice", json=ALICE)
    assert r.status_code == 201, r.text
    assert r.json()["created"] is True
    got = client.get("/v1/users/alice").json()
    assert got["user_id"] == "alice"
    assert got["attributes"] == {"country": "DE", "tier": 2}
    assert got["consent"] == {"personalization": False, "tracking": True}
    assert got["created_at"] is not None
    again = client.put("/v1/users/alice", json={"user_id": "alice", "attributes": {}})
    assert (again.status_code, again.json()["created"]) == (200, False)
    assert client.get("/v1/users/alice").json()["attributes"] == {}
    assert store.users.count() == 1


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"consent": {"personalization": "yes"}}, 422, "consent.personalization: Input should be"),
        ({"attributes": "tall"}, 422, "attributes: Input should be a valid dictionary"),
        ({"user_id": "bob"}, 400, "user_id in the body ('bob') does not match the path ('alice')"),
        ({"user_id": None}, 422, "user_id: is required"),
        ({"email": "a@b.c"}, 422, "email: is not a known field"),
        ("alice", 400, "the body must be a JSON object, not string"),
    ],
)
def test_bad_user_bodies(
    store: Store, make_client: ClientFactory, body: Any, status: int, message: str
) -> None:
    client = make_client(store)
    r = client.put("/v1/users/alice", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert store.users.count() == 0


def test_unknown_user_is_404(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    r = client.get("/v1/users/nobody")
    assert r.status_code == 404
    assert r.json()["detail"] == ("user 'nobody' has no record; create it with PUT /v1/users/{id}")
    r = client.get("/v1/users/nobody/events")
    assert (r.status_code, r.json()["detail"]) == (404, "user 'nobody' has no events and no record")


def test_known_user_without_events_has_an_empty_list(
    sqlite_store: Store, make_client: ClientFactory
) -> None:
    client = make_client(sqlite_store)
    client.put("/v1/users/alice", json={})
    assert client.get("/v1/users/alice/events").json() == {
        "user_id": "alice",
        "source": "store",
        "events": [],
    }


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        (-1, "greater than or equal to 1"),
        (0, "greater than or equal to 1"),
        (5000, "less than or equal to 1000"),
        ("many", "valid integer"),
    ],
)
def test_bad_event_limit(
    sqlite_store: Store, make_client: ClientFactory, limit: Any, message: str
) -> None:
    client = make_client(sqlite_store)
    client.post("/v1/events", json=[ev(1)])
    r = client.get("/v1/users/u1/events", params={"limit": limit})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("limit: ") and message in r.json()["detail"]


def test_events_limit_and_fallback_to_the_store(store: Store, make_client: ClientFactory) -> None:
    client = make_client(store, MemoryState())
    client.post("/v1/events", json=[ev(i) for i in range(1, 6)])
    live = client.get("/v1/users/u1/events", params={"limit": 2}).json()
    assert (live["source"], [e["event_id"] for e in live["events"]]) == ("online", ["e4", "e5"])

    # A restarted process has an empty in-memory state: the event log answers.
    restarted = make_client(store, MemoryState())
    cold = restarted.get("/v1/users/u1/events", params={"limit": 3}).json()
    assert cold["source"] == "store"
    assert [e["event_id"] for e in cold["events"]] == ["e3", "e4", "e5"]
    assert cold["events"][0] == {
        "event_id": "e3",
        "type": "view",
        "item_id": "i3",
        "session_id": None,
        "query": None,
        "timestamp": "2023-11-14T22:13:23Z",
    }


def _seed(client: Any) -> None:
    client.put("/v1/users/u1", json=ALICE)
    client.put("/v1/users/u2", json={})
    review = ev(3, type="review", text="Lovely tea, would buy again")
    body = client.post("/v1/events", json=[ev(1), ev(2), review, ev(4, user="u2")]).json()
    assert body["accepted"] == 4


def test_export_holds_everything(store: Store, make_client: ClientFactory) -> None:
    client = make_client(store)
    _seed(client)
    out = client.get("/v1/users/u1/export").json()
    assert out["user"]["user_id"] == "u1"
    assert out["user"]["consent"]["personalization"] is False
    assert [e["event_id"] for e in out["events"]] == ["e1", "e2", "e3"]
    assert out["events"][2]["text"] == "Lovely tea, would buy again"
    assert [e["event_id"] for e in out["online"]] == ["e1", "e2", "e3"]


def _check_erasure(store: Store, online: OnlineState, client: Any) -> None:
    _seed(client)
    r = client.delete("/v1/users/u1")
    assert r.status_code == 200
    assert r.json() == {"user_id": "u1", "removed": {"user": True, "events": 3, "online_events": 3}}
    assert client.get("/v1/users/u1/export").json() == {
        "user_id": "u1",
        "user": None,
        "events": [],
        "online": [],
    }
    assert store.events.count() == 1
    assert store.events.user_events("u1") == []
    assert store.users.get("u1") is None
    assert online.recent("u1") == []
    assert client.get("/v1/users/u1").status_code == 404
    assert client.get("/v1/users/u1/events").status_code == 404
    # the other user is untouched
    assert [e["event_id"] for e in client.get("/v1/users/u2/events").json()["events"]] == ["e4"]
    # erasure is idempotent
    again = client.delete("/v1/users/u1").json()["removed"]
    assert again == {"user": False, "events": 0, "online_events": 0}


def test_delete_user_erases_everything_on_each_database(
    store: Store, make_client: ClientFactory
) -> None:
    online = MemoryState()
    _check_erasure(store, online, make_client(store, online))


def test_delete_user_erases_the_online_state(
    sqlite_store: Store, online_state: OnlineState, make_client: ClientFactory
) -> None:
    _check_erasure(sqlite_store, online_state, make_client(sqlite_store, online_state))
