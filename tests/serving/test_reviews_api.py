"""Review sentiment through the real app over HTTP: reviews scored on arrival rank items and give
them a "buyers praise it" reason with the right counts; evidence counts (3 glowing < 300 good)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from shopflow.config import Settings
from shopflow.ingest.schema import Item
from shopflow.store.online import OnlineState
from shopflow.store.store import Store
from tests.serving.conftest import ClientFactory

HOUR = 3600
# Every event of a test in one trending bucket (an hour), well inside the validation window.
T0 = (int(time.time()) // HOUR - 2) * HOUR + 60

CATALOGUE = [
    Item(item_id="tea-a", title="Sencha green tea", brand="Leafco", categories="Tea > Green"),
    Item(item_id="tea-b", title="Gyokuro green tea", brand="Leafco", categories="Tea > Green"),
    Item(item_id="tea-c", title="Matcha green tea", brand="Leafco", categories="Tea > Green"),
    Item(item_id="tea-g", title="Bancha green tea", brand="Leafco", categories="Tea > Green"),
    Item(item_id="tea-h", title="Hojicha green tea", brand="Leafco", categories="Tea > Green"),
    Item(item_id="mug-1", title="Stoneware mug", brand="Potter", categories="Kitchen > Mugs"),
]


def _client(tmp_path: Path, make_client: ClientFactory, online: OnlineState) -> TestClient:
    store = Store.from_url(f"sqlite:///{tmp_path / 'shop.db'}")
    store.catalogue.upsert(CATALOGUE)  # no model bundle: the catalogue's fallbacks answer
    return make_client(store, online)


def _post(client: TestClient, events: list[dict[str, Any]]) -> None:
    r = client.post("/v1/events", json=events)
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text


def _review(j: int, item: str, text: str, stars: float) -> dict[str, Any]:
    return {"event_id": f"rev-{item}-{j}", "type": "review", "user_id": f"r{j}", "item_id": item,
            "timestamp": T0 + j, "text": text, "value": stars}  # fmt: skip


def _order(body: dict[str, Any], *items: str) -> list[str]:
    return [it["item_id"] for it in body["items"] if it["item_id"] in items]


def _reasons(body: dict[str, Any], item: str) -> list[dict[str, Any]]:
    return next(it["reasons"] for it in body["items"] if it["item_id"] == item)


def test_a_praised_item_rises_above_an_otherwise_equal_panned_one(
    tmp_path: Path, make_client: ClientFactory, online_state: OnlineState
) -> None:
    client = _client(tmp_path, make_client, online_state)
    similar, home = "/v1/items/tea-c/similar?n=5", "/v1/users/newcomer/recommendations?n=6"
    assert _order(client.get(similar).json(), "tea-a", "tea-b") == ["tea-a", "tea-b"]  # a tie
    panned = [_review(j, "tea-a", "Terrible, stale and bitter. Awful, a waste of money.", 1)
              for j in range(20)]  # fmt: skip
    praised = [_review(j, "tea-b", "Excellent tea, wonderful aroma. I love it!", 5 if j < 15 else 4)
               for j in range(20)]  # fmt: skip
    _post(client, panned + praised)  # as many reviews each: trending stays equal
    for url in (similar, home):
        body = client.get(url).json()
        assert _order(body, "tea-a", "tea-b") == ["tea-b", "tea-a"], url
        praise = [r for r in _reasons(body, "tea-b") if r["kind"] == "buyers_praise"]
        assert len(praise) == 1, _reasons(body, "tea-b")
        assert praise[0]["text"] == "Buyers praise it — 4.8/5 from 20 reviews"
        ev = praise[0]["evidence"]
        assert (ev["reviews"], ev["rated"], ev["positive"], ev["mean_stars"]) == (20, 20, 20, 4.75)
        assert not any(r["kind"] == "buyers_praise" for r in _reasons(body, "tea-a"))


def test_three_glowing_reviews_do_not_outrank_three_hundred_good_ones(
    tmp_path: Path, make_client: ClientFactory, online_state: OnlineState, settings: Settings
) -> None:
    client = _client(tmp_path, make_client, online_state)
    glowing = [_review(j, "tea-g", "Absolutely perfect, the best tea I have ever had!", 5)
               for j in range(3)]  # fmt: skip
    good = [_review(j, "tea-h", "Good tea, works well.", 4) for j in range(300)]
    w = settings.event_weights
    n_views = round((len(good) - len(glowing)) * w["review"] / w["view"])  # equal trending weight
    views = [{"event_id": f"view-{j}", "type": "view", "user_id": f"v{j}", "item_id": "tea-g",
              "timestamp": T0 + 400 + j} for j in range(n_views)]  # fmt: skip
    _post(client, glowing + good + views)
    reviews = client.app.state.services.recommend.reviews  # type: ignore[attr-defined]
    g, h = reviews.stats(["tea-g", "tea-h"])
    assert (g.count, h.count) == (3, 300)
    assert g.mean > h.mean and g.lift < h.lift  # the plain mean would put the three first
    body = client.get("/v1/items/tea-c/similar?n=5").json()
    assert _order(body, "tea-g", "tea-h") == ["tea-h", "tea-g"]
    assert [r["text"] for r in _reasons(body, "tea-h") if r["kind"] == "buyers_praise"] == [
        "Buyers praise it — 4.0/5 from 300 reviews"
    ]
    assert not any(r["kind"] == "buyers_praise" for r in _reasons(body, "tea-g"))  # 3 < 5


def test_reviews_without_stars_and_chinese_reviews_are_scored(
    tmp_path: Path, make_client: ClientFactory, online_state: OnlineState
) -> None:
    client = _client(tmp_path, make_client, online_state)
    english = [{**_review(j, "tea-b", "Lovely, fresh and fragrant. Highly recommended!", 0),
                "value": None} for j in range(20)]  # fmt: skip
    chinese = [{**_review(j, "tea-a", "质量很差，味道难闻，非常失望", 0), "value": None,
                "event_id": f"zh-{j}"} for j in range(12)]  # fmt: skip
    _post(client, english + chinese)
    reviews = client.app.state.services.recommend.reviews  # type: ignore[attr-defined]
    panned, praised = reviews.stats(["tea-a", "tea-b"])
    assert panned.lift < 0 < praised.lift and panned.rated == praised.rated == 0
    body = client.get("/v1/items/tea-c/similar?n=5").json()
    assert [r["text"] for r in _reasons(body, "tea-b") if r["kind"] == "buyers_praise"] == [
        "Buyers praise it — 100% positive in 20 reviews"
    ]
