"""Real time, through the real app over HTTP: an accepted event changes that user's next answer,
co-visitation and trending learn online, and model bundles swap with no failed request."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopflow.config import Settings
from shopflow.store.bundles import BundleStore
from shopflow.store.online import OnlineState
from tests.serving import recommend_shop as shop
from tests.serving.conftest import ClientFactory

NOW = time.time() - 600  # inside the validation window of every event timestamp


@pytest.fixture
def client(
    settings: Settings, tmp_path: Path, make_client: ClientFactory, online_state: OnlineState
) -> TestClient:
    shop.write(settings.data_dir / "bundles")
    c = make_client(shop.new_store(tmp_path / "db"), online_state)
    shop.with_sasrec(c.app.state.services.recommend)  # type: ignore[attr-defined]
    return c


def _events(client: TestClient, rows: list[tuple[str, str, str]], start: float = NOW) -> None:
    """POST (user, item, type) events, one second apart; all must be accepted."""
    batch = [
        {"event_id": f"rt-{user}-{i}-{start}", "type": kind, "user_id": user, "item_id": item,
         "timestamp": start + i}
        for i, (user, item, kind) in enumerate(rows)
    ]  # fmt: skip
    r = client.post("/v1/events", json=batch)
    assert r.status_code == 200 and r.json()["accepted"] == len(rows), r.text


def _home(client: TestClient, user: str, n: int = 20) -> dict[str, Any]:
    r = client.get(f"/v1/users/{user}/recommendations?n={n}")
    assert r.status_code == 200, r.text
    return r.json()


def test_viewing_one_category_moves_the_next_home_feed_there(client: TestClient) -> None:
    items = shop.fitted().shop.items
    user = shop.user_with_history()
    before = _home(client, user)
    top_of = {it.item_id: it.categories[0] for it in items}
    shares = Counter(top_of[it["item_id"]] for it in before["items"])
    target = min({it.categories[0] for it in items}, key=lambda c: (shares[c], c))
    assert shares[target] <= 2
    pick = [it.item_id for it in items if it.categories[0] == target and (it.stock or 1) > 0][:4]
    _events(client, [(user, item, "view") for item in pick])
    after = _home(client, user)
    moved = sum(top_of[it["item_id"]] == target for it in after["items"])
    assert moved >= 8, (target, moved, [top_of[it["item_id"]] for it in after["items"]])
    assert after["recommendation_id"] != before["recommendation_id"]
    cited = {r["evidence"].get("item_id") for it in after["items"] for r in it["reasons"]}
    assert cited & set(pick)  # "because you viewed" the items just viewed


def test_a_new_shopper_gets_session_recommendations_from_the_first_click(
    client: TestClient,
) -> None:
    before = _home(client, "first-timer", n=10)
    assert before["strategy"] == "home:trending"
    clicked = shop.fitted().shop.items[42]
    _events(client, [("first-timer", clicked.item_id, "view")])
    after = _home(client, "first-timer", n=10)
    assert after["strategy"] == "home:session"
    assert clicked.item_id not in [it["item_id"] for it in after["items"]]
    first = [it["reasons"][0]["evidence"].get("item_id") for it in after["items"]]
    because = [x for x in first if x == clicked.item_id]
    assert len(because) >= 5
    assert any(it["category"] == clicked.categories[-1] for it in after["items"][:5])


def test_co_visitation_learns_from_each_event(client: TestClient) -> None:
    recommend = client.app.state.services.recommend  # type: ignore[attr-defined]
    covisit = recommend.state.sources.covisit
    table = recommend.state.table
    ids = table.ids.external_ids
    a = 3
    similar = {it["item_id"] for it in client.get(f"/v1/items/{ids[a]}/similar?n=40").json()[
        "items"]}  # fmt: skip
    b = next(
        j for j in range(len(ids))
        if j != a and ids[j] not in similar and covisit.pair_weight(a, j) == 0
        and table.in_stock()[j] and table.leaf[j] != table.leaf[a]
    )  # fmt: skip
    rows = []
    for u in range(6):  # six shoppers view a, then b
        rows += [(f"pair-{u}", ids[a], "view"), (f"pair-{u}", ids[b], "view")]
    _events(client, rows)
    assert covisit.pair_weight(a, b) > 0 and covisit.pair_weight(b, a) > 0
    got = client.get(f"/v1/items/{ids[a]}/similar?n=10").json()["items"]
    hit = next(it for it in got if it["item_id"] == ids[b])
    assert hit["reasons"][0] == {
        "kind": "viewed_together",
        "text": f"Often viewed with {table.titles[a]}",
        "evidence": hit["reasons"][0]["evidence"],
    }
    assert hit["reasons"][0]["evidence"]["item_id"] == ids[a]


def test_trending_follows_the_latest_events(client: TestClient) -> None:
    before = [it["item_id"] for it in client.get("/v1/trending?n=10").json()["items"]]
    items = shop.fitted().shop.items
    hot = next(it for it in items if it.item_id not in before and (it.stock or 1) > 0)
    _events(client, [(f"buyer-{u}", hot.item_id, "purchase") for u in range(8)])
    after = client.get("/v1/trending?n=10").json()["items"]
    assert after[0]["item_id"] == hot.item_id
    assert after[0]["reasons"][0]["kind"] == "trending"
    leaf = hot.categories[-1]
    in_leaf = client.get(f"/v1/trending?category={leaf}&n=3").json()["items"]
    assert in_leaf[0]["item_id"] == hot.item_id
    assert in_leaf[0]["reasons"][0]["text"] == f"Trending in {leaf}"


def test_bundles_swap_with_no_failed_request(client: TestClient, settings: Settings) -> None:
    bundles = BundleStore(settings.data_dir / "bundles")
    first = bundles.current_version()
    second = shop.write(bundles.root, models=["covisit", "trending"]).name
    third = shop.write(bundles.root).name
    user = shop.user_with_history()
    statuses: Counter[int] = Counter()
    versions: Counter[str] = Counter()
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            r = client.get(f"/v1/users/{user}/recommendations?n=10")
            statuses[r.status_code] += 1
            if r.status_code == 200:
                versions[r.json()["model_version"]] += 1

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        for version in [second, third, first, second, third, first]:
            time.sleep(0.15)
            r = client.post(f"/v1/admin/reload?version={version}")
            assert r.status_code == 200, r.text
            assert r.json()["version"] == version
    finally:
        time.sleep(0.15)
        stop.set()
        worker.join()
    assert set(statuses) == {200}, statuses
    assert sum(statuses.values()) >= 10
    assert len(versions) >= 2, versions


def test_a_newly_published_bundle_is_swapped_in_on_its_own(
    client: TestClient, settings: Settings
) -> None:
    old = client.get("/v1/admin/bundle").json()["version"]
    new = shop.write(settings.data_dir / "bundles", models=["covisit", "trending"]).name
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if client.get("/v1/admin/bundle").json()["version"] == new:
            break
        time.sleep(0.2)
    assert client.get("/v1/admin/bundle").json()["version"] == new != old
    assert _home(client, shop.user_with_history())["model_version"] == new
