"""The catalogue endpoints through the real app, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shopflow.config import load_settings
from shopflow.store.store import Store
from tests.serving.conftest import ClientFactory

TEA = {
    "title": "Green tea",
    "brand": "Leafy",
    "categories": "Food > Tea",
    "price": 4.5,
    "currency": "EUR",
    "stock": 12,
    "attributes": {"organic": True},
}


def test_put_get_update_history_delete(store: Store, make_client: ClientFactory) -> None:
    client = make_client(store)
    r = client.put("/v1/items/tea", json=TEA)
    assert r.status_code == 201, r.text
    assert r.json()["result"] == "inserted"
    got = client.get("/v1/items/tea").json()
    assert got["item_id"] == "tea"
    assert got["categories"] == ["Food", "Tea"]
    assert (got["price"], got["currency"], got["stock"], got["in_stock"]) == (4.5, "EUR", 12, True)
    assert got["attributes"] == {"organic": True}

    same = client.put("/v1/items/tea", json={**TEA, "item_id": "tea"})
    assert (same.status_code, same.json()["result"]) == (200, "unchanged")
    cheaper = client.put("/v1/items/tea", json={**TEA, "price": 3.9, "stock": 0})
    assert (cheaper.status_code, cheaper.json()["result"]) == (200, "updated")
    assert cheaper.json()["item"]["in_stock"] is False
    renamed = client.put("/v1/items/tea", json={**TEA, "price": 3.9, "stock": 0, "title": "Tea"})
    assert renamed.json()["result"] == "updated"

    history = client.get("/v1/items/tea/history").json()["history"]
    assert [(h["price"], h["stock"]) for h in history] == [(4.5, 12), (3.9, 0)]  # title: no row

    gone = client.delete("/v1/items/tea")
    assert gone.json() == {"item_id": "tea", "deleted": True}
    assert store.catalogue.count() == 0
    assert client.get("/v1/items/tea").status_code == 404
    assert client.delete("/v1/items/tea").status_code == 404


def test_numeric_body_id_matches_the_path(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    assert client.put("/v1/items/42", json={"item_id": 42, "title": "x"}).status_code == 201
    assert sqlite_store.catalogue.get("42") is not None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({**TEA, "price": -1}, 422, "price: Input should be greater than or equal to 0"),
        ({**TEA, "price": "cheap"}, 422, "price: Input should be a valid number"),
        ({**TEA, "stock": -3}, 422, "stock: Input should be greater than or equal to 0"),
        ({**TEA, "currency": "euro"}, 422, "currency: String should match pattern"),
        ({**TEA, "colour": "green"}, 422, "colour: is not a known field"),
        ({**TEA, "item_id": "coffee"}, 400, "item_id in the body ('coffee') does not match"),
        ({**TEA, "item_id": ""}, 422, "item_id: must not be empty"),
        ([TEA], 400, "the body must be a JSON object, not array"),
    ],
)
def test_bad_item_bodies_say_what_is_wrong_and_write_nothing(
    store: Store, make_client: ClientFactory, body: Any, status: int, message: str
) -> None:
    client = make_client(store)
    r = client.put("/v1/items/tea", json=body)
    assert r.status_code == status, r.text
    assert message in r.json()["detail"]
    assert store.catalogue.count() == 0


def test_malformed_json_item(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    r = client.put(
        "/v1/items/tea", content=b'{"title": ', headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert r.json()["detail"].startswith("malformed JSON at character 10")
    assert sqlite_store.catalogue.count() == 0


def test_unknown_item_is_404_everywhere(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    for method, path in [
        ("GET", "/v1/items/nope"),
        ("DELETE", "/v1/items/nope"),
        ("GET", "/v1/items/nope/history"),
    ]:
        r = client.request(method, path)
        assert r.status_code == 404, (method, path)
        assert r.json()["detail"] == (
            "item 'nope' is not in the catalogue; add it with PUT /v1/items/{id}"
        )


def test_batch_upsert_counts_and_rejections(store: Store, make_client: ClientFactory) -> None:
    client = make_client(store)
    batch = [
        {"item_id": "a", "title": "A", "price": 1.0},
        {"item_id": "b", "title": "B", "price": 2.0},
        {"item_id": "c", "title": "C", "price": -3.0},
        {"title": "no id"},
        {"item_id": "d", "title": "D", "stock": 4},
    ]
    r = client.post("/v1/items", json=batch)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "inserted": 3,
        "updated": 0,
        "unchanged": 0,
        "rejected": [
            {"index": 2, "reason": "price: Input should be greater than or equal to 0"},
            {"index": 3, "reason": "item_id: is required"},
        ],
        "detail": None,
    }
    assert store.catalogue.count() == 3
    again = client.post(
        "/v1/items", json={"items": [batch[0], {**batch[1], "price": 2.5}, batch[4]]}
    ).json()
    assert (again["inserted"], again["updated"], again["unchanged"]) == (0, 1, 2)
    assert [h["price"] for h in store.catalogue.history("b")] == [2.0, 2.5]

    all_bad = client.post("/v1/items", json=[batch[2], batch[3]])
    assert all_bad.status_code == 422
    assert all_bad.json()["detail"] == "all 2 items were rejected; see `rejected` for the reasons"
    assert store.catalogue.count() == 3


def test_item_batch_over_the_limit(
    sqlite_store: Store, make_client: ClientFactory, tmp_path: Path
) -> None:
    small = load_settings(data_dir=tmp_path, ingest={"max_batch_size": 2})
    client = make_client(sqlite_store, settings_=small)
    r = client.post("/v1/items", json=[{"item_id": str(i)} for i in range(3)])
    assert r.status_code == 413
    assert "batch of 3 items is over the limit of 2" in r.json()["detail"]
    assert sqlite_store.catalogue.count() == 0


def test_paged_list(store: Store, make_client: ClientFactory) -> None:
    client = make_client(store)
    client.post("/v1/items", json=[{"item_id": i, "title": i.upper()} for i in "edcba"])
    page = client.get("/v1/items", params={"offset": 1, "limit": 2}).json()
    assert (page["total"], page["offset"], page["limit"]) == (5, 1, 2)
    assert [i["item_id"] for i in page["items"]] == ["b", "c"]
    assert [i["item_id"] for i in client.get("/v1/items").json()["items"]] == list("abcde")
    assert client.get("/v1/items", params={"offset": 10}).json()["items"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": 0}, "limit: Input should be greater than or equal to 1"),
        ({"limit": -5}, "limit: Input should be greater than or equal to 1"),
        ({"limit": 1001}, "limit: Input should be less than or equal to 1000"),
        ({"limit": 10**30}, "limit: Input should be less than or equal to 1000"),
        ({"offset": -1}, "offset: Input should be greater than or equal to 0"),
        ({"limit": "ten"}, "limit: Input should be a valid integer"),
    ],
)
def test_bad_paging_is_422(
    sqlite_store: Store, make_client: ClientFactory, params: dict[str, Any], message: str
) -> None:
    r = make_client(sqlite_store).get("/v1/items", params=params)
    assert r.status_code == 422
    assert message in r.json()["detail"]
