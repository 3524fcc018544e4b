"""Cold start through the real app over HTTP: a new item in new-arrivals after its upsert, a new
user's new-arrivals personal from their first event.

(Similar items and search for a new item are covered with the search tests; a new user's home
feed from the first click in ``test_realtime.py``.)
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopflow.config import Settings
from shopflow.store.online import OnlineState
from tests.serving import recommend_shop as shop
from tests.serving.conftest import ClientFactory

NOW = time.time() - 600  # inside the validation window of event timestamps


def _new_item() -> dict[str, Any]:
    """A kettle created after every item of the demo shop (and not before now)."""
    newest = max(it.created_at.timestamp() for it in shop.fitted().shop.items if it.created_at)
    return {
        "title": "Brand-new cordless kettle",
        "brand": "Zed Appliances",
        "categories": "Home > Kitchen > Kettles",
        "price": 30.0,
        "stock": 5,
        "created_at": max(time.time(), newest + 3600),
    }


def _new_arrivals(client: TestClient, user: str | None = None, n: int = 20) -> dict[str, Any]:
    query = f"?n={n}" + (f"&user_id={user}" if user else "")
    r = client.get(f"/v1/new-arrivals{query}")
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def bundled(
    settings: Settings, tmp_path: Path, make_client: ClientFactory, online_state: OnlineState
) -> TestClient:
    """The app serving a bundle of models fitted on the demo shop."""
    shop.write(settings.data_dir / "bundles")
    c = make_client(shop.new_store(tmp_path / "db"), online_state)
    shop.with_sasrec(c.app.state.services.recommend)  # type: ignore[attr-defined]
    return c


def test_without_a_bundle_a_new_item_leads_new_arrivals_within_one_poll(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    client = make_client(shop.new_store(tmp_path / "db"))  # catalogue only: no model yet
    assert _new_arrivals(client)["strategy"] == "new_arrivals:newest"
    assert client.put("/v1/items/new-kettle", json=_new_item()).status_code == 201
    poll = client.app.state.services.recommend.keeper.config.poll_seconds  # type: ignore[attr-defined]
    deadline, ids = time.monotonic() + poll + 3.0, []
    while time.monotonic() < deadline:
        ids = [it["item_id"] for it in _new_arrivals(client)["items"]]
        if "new-kettle" in ids:
            break
        time.sleep(0.05)
    assert ids[:1] == ["new-kettle"], ids  # the newest item comes first


def test_a_new_item_is_in_new_arrivals_the_moment_it_is_upserted(bundled: TestClient) -> None:
    assert bundled.put("/v1/items/new-kettle", json=_new_item()).status_code == 201
    ids = [it["item_id"] for it in _new_arrivals(bundled)["items"]]
    assert ids[:1] == ["new-kettle"], ids


def test_a_new_user_gets_personal_new_arrivals_from_the_first_event(bundled: TestClient) -> None:
    st = bundled.app.state.services.recommend.state  # type: ignore[attr-defined]
    pool = set(st.sources.new_pool.tolist())
    table = st.table
    # an older item whose brand also has new arrivals, none of them in the newest 3 overall
    newest = [
        table.ids.index_of(i) for i in [x["item_id"] for x in _new_arrivals(bundled)["items"]]
    ]
    brands_new = {int(table.brand[i]) for i in pool if table.brand[i] >= 0}
    clicked = next(
        i for i in range(len(table))
        if i not in pool and int(table.brand[i]) in brands_new and table.in_stock()[i]
        and int(table.brand[i]) not in {int(table.brand[j]) for j in newest[:3]}
    )  # fmt: skip
    brand = table.brand_names[int(table.brand[clicked])]
    before = _new_arrivals(bundled, "first-timer", n=5)
    assert before["strategy"] == "new_arrivals:newest"
    assert before["items"][0]["brand"] != brand
    event = {"event_id": "ft-1", "type": "view", "user_id": "first-timer",
             "item_id": table.ids.external_ids[clicked], "timestamp": NOW}  # fmt: skip
    r = bundled.post("/v1/events", json=[event])
    assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
    after = _new_arrivals(bundled, "first-timer", n=5)
    assert after["strategy"] == "new_arrivals:personal"
    assert after["items"][0]["brand"] == brand
    assert after["items"][0]["reasons"][0]["kind"] == "new_from_brand"
    assert {table.ids.index_of(it["item_id"]) for it in after["items"]} <= pool
