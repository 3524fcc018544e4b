"""Search through the real app over HTTP: personal re-ranking by the user's state (filters kept),
items searchable and recommendable right after upsert (edits found by their new words only), and
search events that change the next home feed."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopflow.config import Settings
from shopflow.ingest.schema import Item
from shopflow.store.online import OnlineState
from shopflow.store.store import Store
from tests.serving import recommend_shop as shop
from tests.serving.conftest import ClientFactory

NOW = time.time() - 600  # inside the validation window of every event timestamp

TEES = [
    Item(item_id="tee-n1", title="Dri-fit running t-shirt", brand="Nike", price=30,
         categories="Clothing > T-Shirts"),
    Item(item_id="tee-p1", title="Organic cotton t-shirt", brand="Patagonia", price=35,
         categories="Clothing > T-Shirts"),
    Item(item_id="tee-x1", title="Merino wool t-shirt", brand="Icebreaker", price=95,
         categories="Clothing > T-Shirts"),
    Item(item_id="sock-n", title="Running socks", brand="Nike", price=12,
         categories="Clothing > Socks"),
    Item(item_id="cap-n", title="Running cap", brand="Nike", price=20,
         categories="Clothing > Hats"),
    Item(item_id="fleece-p", title="Fleece jacket", brand="Patagonia", price=120,
         categories="Clothing > Jackets"),
    Item(item_id="vest-p", title="Down vest", brand="Patagonia", price=150,
         categories="Clothing > Jackets"),
]  # fmt: skip


def _post(client: TestClient, rows: list[tuple[str, str, str | None, str | None]]) -> None:
    """POST (user, type, item, query) events one second apart; all must be accepted."""
    batch = [{"event_id": f"ev-{user}-{i}-{NOW}", "type": kind, "user_id": user, "item_id": item,
              "query": query, "timestamp": NOW + i} for i, (user, kind, item, query) in
             enumerate(rows)]  # fmt: skip
    r = client.post("/v1/events", json=batch)
    assert r.status_code == 200 and r.json()["accepted"] == len(rows), r.text


def _ids(client: TestClient, url: str) -> list[str]:
    r = client.get(url)
    assert r.status_code == 200, r.text
    return [it["item_id"] for it in r.json()["items"]]


def test_two_users_get_their_own_order_for_one_query_and_its_filters_hold(
    tmp_path: Path, make_client: ClientFactory, online_state: OnlineState
) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'shop.db'}")
    store.catalogue.upsert(TEES)
    client = make_client(store, online_state)
    _post(client, [("runner", "view", i, None) for i in ("sock-n", "cap-n")])
    _post(client, [("hiker", "view", i, None) for i in ("fleece-p", "vest-p")])
    url = "/v1/search?q=t-shirt+under+50&n=5"
    runner = client.get(url + "&user_id=runner").json()
    hiker = _ids(client, url + "&user_id=hiker")
    assert [it["item_id"] for it in runner["items"]] == ["tee-n1", "tee-p1"]  # Nike fan
    assert hiker == ["tee-p1", "tee-n1"]  # Patagonia fan
    assert runner["strategy"] == "search:lexical+personal"
    assert all(it["price"] <= 50 for it in runner["items"])  # the merino tee (95) never shows


@pytest.fixture
def client(
    settings: Settings, tmp_path: Path, make_client: ClientFactory, online_state: OnlineState
) -> TestClient:
    shop.write(settings.data_dir / "bundles")
    c = make_client(shop.new_store(tmp_path / "db"), online_state)
    c.app.state.services.recommend.encoder = shop.HashEncoder()  # type: ignore[attr-defined]
    shop.with_sasrec(c.app.state.services.recommend)  # type: ignore[attr-defined]
    return c


def _put(client: TestClient, item_id: str, **fields: Any) -> None:
    r = client.put(f"/v1/items/{item_id}", json={"item_id": item_id, **fields})
    assert r.status_code in (200, 201), r.text


def _matched(client: TestClient, q: str) -> list[tuple[str, list[str]]]:
    """(item, query words its text matched) of each search result."""
    r = client.get(f"/v1/search?q={q}&n=10")
    assert r.status_code == 200, r.text
    return [
        (it["item_id"], next(x["evidence"]["matched"] for x in it["reasons"]
                             if x["kind"] == "matches_query"))
        for it in r.json()["items"]
    ]  # fmt: skip


def test_a_new_item_is_searchable_and_similar_right_after_upsert(client: TestClient) -> None:
    twin = shop.fitted().shop.items[7]  # the new item has the text of an existing one
    assert "brand-new" not in _ids(client, f"/v1/items/{twin.item_id}/similar?n=10")
    _put(client, "brand-new", title=twin.title, brand=twin.brand, categories=twin.categories,
         price=10.0, stock=5)  # fmt: skip
    similar = client.get(f"/v1/items/{twin.item_id}/similar?n=10").json()["items"]
    new = next(it for it in similar if it["item_id"] == "brand-new")  # found by its text
    assert new["reasons"][0]["kind"] == "similar"
    assert new["reasons"][0]["evidence"]["item_id"] == twin.item_id
    assert _ids(client, "/v1/items/brand-new/similar?n=10")[0] == twin.item_id
    _put(client, "lamp-1", title="Vexlorn glow unicorn night lamp", categories=["Home", "Lamps"])
    assert _matched(client, "vexlorn+unicorn")[0] == ("lamp-1", ["unicorn", "vexlorn"])
    _put(client, "lamp-1", title="Quixbit solar garden lantern", categories=["Home", "Lamps"])
    assert _matched(client, "quixbit+lantern")[0] == ("lamp-1", ["lantern", "quixbit"])
    old = _matched(client, "vexlorn")  # the dense half still lists items; no word matches
    assert old[0][0] != "lamp-1" and all(words == [] for _, words in old)
    state = client.app.state.services.recommend.state  # type: ignore[attr-defined]
    encoder = client.app.state.services.recommend.encoder  # type: ignore[attr-defined]
    index, _ = state.search_index(encoder)
    assert index.delta_rows >= 1 and "sasrec" in state.sources.names  # no rebuild, models kept


def test_a_search_event_changes_the_next_home_feed(client: TestClient) -> None:
    items = shop.fitted().shop.items
    user = shop.user_with_history()
    before = _ids(client, f"/v1/users/{user}/recommendations?n=20")
    leaf_of = {it.item_id: it.categories[-1] for it in items}
    shares = Counter(leaf_of[i] for i in before)
    target = min({it.categories[-1] for it in items}, key=lambda c: (shares[c], c))
    assert shares[target] == 0
    _post(client, [(user, "search", None, target.lower())])
    after = client.get(f"/v1/users/{user}/recommendations?n=20").json()
    found = [it for it in after["items"] if leaf_of[it["item_id"]] == target]
    assert found and after["strategy"] == "home:personal"  # none of them before
    reasons = [r for it in found for r in it["reasons"] if r["kind"] == "searched_for"]
    assert reasons and reasons[0]["text"] == f"Because you searched for “{target.lower()}”"
    assert reasons[0]["evidence"]["query"] == target.lower()


def test_models_keep_serving_after_an_upsert_and_learn_the_new_item(client: TestClient) -> None:
    _put(client, "mug-new", title="Vexlorn enamel camping mug", categories=["Home", "Mugs"])
    svc = client.app.state.services.recommend  # type: ignore[attr-defined]
    assert {"sequential", "covisit", "als", "content"} <= set(svc.state.sources.available())
    user = shop.user_with_history()
    body = client.get(f"/v1/users/{user}/recommendations?n=10").json()
    assert body["strategy"] == "home:personal"
    assert "because_you_viewed" in {r["kind"] for it in body["items"] for r in it["reasons"]}
    anchor = shop.fitted().shop.items[3].item_id
    rows = [(f"mugfan{j}", "view", item, None) for j in range(5) for item in (anchor, "mug-new")]
    _post(client, rows)  # its first events teach co-visitation
    similar = client.get(f"/v1/items/{anchor}/similar?n=10").json()["items"]
    new = next(it for it in similar if it["item_id"] == "mug-new")
    assert "viewed_together" in {r["kind"] for r in new["reasons"]}
