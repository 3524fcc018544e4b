"""An item upserted after training is recommendable where the evidence allows, over HTTP: it
trends once shoppers view it, and co-visitation learns it (similar items, a home feed's pairs),
although no model of the bundle knew its id.

(New arrivals right after the upsert are in ``test_cold_start.py``.)
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from shopflow.config import Settings
from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.bundle import write_bundle
from shopflow.models.sasrec_model import SASRecModel
from shopflow.store.bundles import BundleStore
from tests.serving import recommend_shop as shop
from tests.serving.conftest import ClientFactory

NOW = time.time() - 300


def test_an_item_added_after_training_trends_and_is_co_visited(
    settings: Settings, tmp_path: Path, make_client: ClientFactory
) -> None:
    shop.write(settings.data_dir / "bundles", models=["covisit", "trending"])
    client = make_client(shop.new_store(tmp_path / "db"))
    state = client.app.state.services.recommend.state  # type: ignore[attr-defined]
    model_items = state.sources.covisit.n_items
    anchor = state.table.ids.external_ids[7]
    body = {"title": "Brand-new cordless kettle", "categories": ["Home", "Kitchen", "Kettles"],
            "price": 30.0, "stock": 5}  # fmt: skip
    assert client.put("/v1/items/kettle-2000", json=body).status_code == 201
    events = []
    for u in range(8):  # eight shoppers view the anchor, then the new kettle (twice as often)
        for j, item in enumerate((anchor, "kettle-2000", "kettle-2000")):
            events.append({"event_id": f"nk-{u}-{j}", "type": "view", "user_id": f"nk-{u}",
                           "item_id": item, "timestamp": NOW + 10 * u + j})  # fmt: skip
    r = client.post("/v1/events", json=events)
    assert r.status_code == 200 and r.json()["accepted"] == len(events), r.text

    recommend = client.app.state.services.recommend  # type: ignore[attr-defined]
    new = recommend.state.table.ids.index_of("kettle-2000")
    assert new >= model_items  # an id no model of the bundle has
    trending = client.get("/v1/trending?n=5").json()["items"]
    assert trending[0]["item_id"] == "kettle-2000"  # the most viewed item right now
    assert trending[0]["reasons"][0]["kind"] == "trending"

    similar = client.get(f"/v1/items/{anchor}/similar?n=20").json()["items"]
    kettle = next(it for it in similar if it["item_id"] == "kettle-2000")
    assert kettle["reasons"][0]["kind"] == "viewed_together"
    assert kettle["reasons"][0]["evidence"]["item_id"] == anchor

    # a shopper who just viewed the anchor gets the kettle in the home feed, "because you viewed"
    one = [{"event_id": "nk-z", "type": "view", "user_id": "nk-z", "item_id": anchor,
            "timestamp": NOW + 200}]  # fmt: skip
    assert client.post("/v1/events", json=one).status_code == 200
    home = client.get("/v1/users/nk-z/recommendations?n=10").json()
    assert "kettle-2000" in [it["item_id"] for it in home["items"]]


def test_the_sequential_model_knows_an_item_the_moment_it_is_upserted(
    settings: Settings, tmp_path: Path, make_client: ClientFactory
) -> None:
    f = shop.fitted()
    side = ItemSide(brand=list(f.columns.brands), categories=[list(p) for p in f.columns.paths])
    data = InteractionData(name="demo", users=f.users, items=f.items, sequences=f.histories)
    model = SASRecModel(hidden=32, n_layers=1, max_len=20, epochs=2, validation=False, seed=0)
    model.fit(dataclasses.replace(data, side=side))  # with brand and category tokens
    assert model.vocab
    write_bundle(
        BundleStore(settings.data_dir / "bundles"),
        items=f.items,
        users=f.users,
        models={"sasrec": model, "trending": f.models["trending"]},
        item_columns=f.columns,
        item_vectors=f.vectors,
        histories=f.histories,
        manifest={"training_cutoff": f.shop.end.isoformat()},
    )
    client = make_client(shop.new_store(tmp_path / "db"))
    recommend = client.app.state.services.recommend  # type: ignore[attr-defined]
    before = recommend.state.sources
    assert before.sasrec is not None
    n_model = before.sasrec.n_items
    old_vectors = before.seq_vectors.copy()
    twin = shop.fitted().shop.items[7]
    body = {"title": f"New {twin.title}", "brand": twin.brand, "categories": list(twin.categories),
            "price": 12.0, "stock": 5}  # fmt: skip
    assert client.put("/v1/items/twin-new", json=body).status_code == 201

    st = recommend.state
    new = st.table.ids.index_of("twin-new")
    assert new == n_model  # appended after every trained item
    assert st.sources.sasrec is not None and st.sources.sasrec.n_items == len(st.table)
    np.testing.assert_allclose(st.sources.seq_vectors[:n_model], old_vectors)  # trained kept
    assert (
        np.isfinite(st.sources.seq_vectors[new]).all() and np.abs(st.sources.seq_vectors[new]).sum()
    )
    hits = st.sources.sequential(np.array([7, 3]), k=len(st.table))
    assert new in hits.items.tolist()  # the sequential source can propose it from now on
    # a second upsert grows the bundle's model again, never the grown one
    assert client.put("/v1/items/twin-new-2", json=body).status_code == 201
    assert recommend.state.sources.sasrec.n_items == len(recommend.state.table) == n_model + 2
    assert recommend.state.sources.seq_vectors[new] == pytest.approx(st.sources.seq_vectors[new])
