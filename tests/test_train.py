"""``train_bundle`` and ``shopflow train`` on a tiny demo shop and on a hand-built store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from shopflow.cli import app
from shopflow.config import Settings, load_settings
from shopflow.ingest.demo import DemoConfig, DemoShop, generate, load_into
from shopflow.ingest.schema import Event, Item
from shopflow.models.bundle import load_bundle
from shopflow.store.bundles import BundleStore
from shopflow.store.store import Store
from shopflow.train import (
    NoEvents,
    cap_training,
    item_vectors,
    load_training_data,
    make_model,
    needs_training,
    train_bundle,
)

T0 = datetime(2026, 10, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def shop() -> DemoShop:
    return generate(DemoConfig(seed=5, n_users=40, n_items=100, days=10))


@pytest.fixture
def demo(tmp_path: Path, shop: DemoShop) -> Iterator[tuple[Store, Settings]]:
    """The tiny demo shop, one catalogue item nobody saw, one event on an item not in it."""
    settings = load_settings(data_dir=tmp_path / "data")
    store = Store.from_settings(settings)
    load_into(store, shop)
    store.catalogue.upsert(
        [
            Item(
                item_id="zz-new",
                title="Brand new teapot",
                brand="Acme",
                categories=["Home", "Tea"],
                price=9.5,
                stock=3,
                created_at=T0,
            )
        ]
    )
    store.events.append(
        [Event(event_id="g1", type="view", user_id="u-ghost", item_id="ghost", timestamp=T0)]
    )
    yield store, settings
    store.close()


def hand_store(settings: Settings) -> Store:
    """Items a..e; u1 views a b c d, u2 a c e d, u3 a b d (one minute apart, in that order)."""
    store = Store.from_settings(settings)
    store.catalogue.upsert([Item(item_id=i, title=f"item {i}") for i in "abcde"])
    views = {"u1": "abcd", "u2": "aced", "u3": "abd"}
    store.events.append(
        [
            Event(
                event_id=f"{u}-{n}",
                type="view",
                user_id=u,
                item_id=i,
                timestamp=T0 + timedelta(minutes=n),
            )
            for u, items in views.items()
            for n, i in enumerate(items)
        ]
    )
    return store


class WordHashEncoder:
    """A small real encoder for tests: bag of hashed words (no model download, no torch)."""

    model_name = "word-hash-16"

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.n_encoded = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        self.n_encoded += len(texts)
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.lower().split():
                out[row, sum(map(ord, word)) % 16] += 1.0
        return out


def manifest(path: Path) -> dict:
    return json.loads((path / "manifest.json").read_text())


# -- train_bundle ----------------------------------------------------------------------------------
def test_bundle_models_load_with_the_scores_of_models_fitted_on_all_the_data(
    demo: tuple[Store, Settings],
) -> None:
    store, settings = demo
    path = train_bundle(
        store, settings, models=("trending", "covisit", "als"), text_vectors=False, eval_users=20
    )
    m = manifest(path)
    assert m["models"] == {n: f"models/{n}" for n in ("trending", "covisit", "als")}
    assert m["failed"] == {} and m["skipped"] == {}
    assert BundleStore(settings.data_dir / "bundles").current() == path
    bundle = load_bundle(path)
    data, _ = load_training_data(store)
    assert bundle.items == data.items and bundle.users == data.users
    assert m["n_interactions"] == data.n_interactions
    histories = [*data.sequences[:6], np.array([], dtype=np.int64)]
    for name in ("trending", "covisit", "als"):
        fresh = make_model(name, settings).fit(data)
        np.testing.assert_allclose(
            bundle.models[name].score(histories), fresh.score(histories), rtol=1e-5, atol=1e-6
        )
    user = data.users.external_ids[3]
    assert bundle.history(user).tolist() == data.sequences[3][-200:].tolist()


def test_every_catalogue_item_has_a_place_and_the_item_columns_align(
    demo: tuple[Store, Settings],
) -> None:
    store, settings = demo
    bundle = load_bundle(train_bundle(store, settings, models=("trending",), text_vectors=False))
    cols = bundle.item_columns
    catalogue = store.catalogue.all()
    assert len(bundle.items) == len(catalogue) + 1  # + the item known only from an event
    for item in catalogue:
        i = bundle.items.index_of(item.item_id)
        assert cols.titles[i] == item.title and cols.brands[i] == (item.brand or None)
        assert cols.paths[i] == tuple(item.categories) and cols.price[i] == item.price
        assert cols.stock[i] == item.stock and cols.in_catalogue[i]
        assert cols.created_at[i] == item.created_at.timestamp()
    new = bundle.items.index_of("zz-new")
    assert cols.texts[new] == "Brand new teapot . Acme . Home Tea"  # as text.search.item_text
    assert bundle.models["trending"].score([np.array([], dtype=np.int64)])[0, new] == 0.0
    ghost = bundle.items.index_of("ghost")
    assert not cols.in_catalogue[ghost] and cols.titles[ghost] is None and cols.stock[ghost] == -1
    assert np.isnan(cols.price[ghost])


def test_offline_metrics_rank_the_held_out_validation_item(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    store = hand_store(settings)
    path = train_bundle(store, settings, models=("pop",), text_vectors=False)
    m = manifest(path)["metrics"]
    # train part (last two items of each user held out): u1 a b, u2 a c, u3 a → a:3 b:1 c:1.
    # u1 (a b seen) ranks c first: val c hit at 1. u2 (a c seen) ranks b, d, e: val e at 3.
    # u3 (a seen) ranks b, c (tie → lower index): val b at 1. NDCG@10 = (1 + 1/log2(4) + 1) / 3.
    assert m["users"] == ["u1", "u2", "u3"] and m["train_interactions"] == 5
    assert m["models"]["pop"] == {"hr@10": 1.0, "ndcg@10": pytest.approx((1 + 0.5 + 1) / 3)}
    # the bundle's own model learnt from all 11 views: a:3 b:2 c:2 d:3 e:1
    pop = load_bundle(path).models["pop"]
    assert pop.score([np.array([], dtype=np.int64)])[0].tolist() == [3, 2, 2, 3, 1]
    store.close()


def test_a_cutoff_keeps_later_events_out(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    store = hand_store(settings)
    cutoff = T0 + timedelta(minutes=3)  # drops the 4th view of u1 and u2 (both d)
    path = train_bundle(store, settings, models=("pop",), cutoff=cutoff, text_vectors=False)
    m = manifest(path)
    assert m["n_interactions"] == 9 and m["training_cutoff"] == cutoff.isoformat()
    bundle = load_bundle(path)
    assert bundle.history("u1").tolist() == [0, 1, 2]
    assert bundle.models["pop"].score([np.array([], dtype=np.int64)])[0].tolist() == [3, 2, 2, 1, 1]
    assert needs_training(store, BundleStore(tmp_path / "bundles")) == (
        "the current bundle was trained with a cutoff"
    )
    with pytest.raises(NoEvents, match=r"no events before .*shopflow demo generate"):
        train_bundle(store, settings, models=("pop",), cutoff=T0, text_vectors=False)
    store.close()


def test_a_failing_model_is_left_out_and_the_rest_is_published(
    demo: tuple[Store, Settings],
) -> None:
    store, settings = demo
    path = train_bundle(
        store,
        settings,
        models=("trending", "nope", "sasrec"),
        text_vectors=False,
        overrides={"sasrec": {"loss": "nope", "epochs": 1}},
        eval_users=10,
    )
    m = manifest(path)
    assert m["models"] == {"trending": "models/trending"}
    assert "unknown loss 'nope'" in m["failed"]["sasrec"]
    assert "unknown model 'nope'" in m["failed"]["nope"]
    assert BundleStore(settings.data_dir / "bundles").current() == path
    assert sorted(load_bundle(path).models) == ["trending"]


def test_sasrec_in_the_bundle_and_out_of_it_when_the_budget_is_spent(
    demo: tuple[Store, Settings],
) -> None:
    store, settings = demo
    small = {"epochs": 1, "hidden": 16, "max_len": 20, "max_val_users": 20}
    path = train_bundle(
        store,
        settings,
        models=("sasrec", "trending"),
        text_vectors=False,
        overrides={"sasrec": small},
        eval_users=20,
    )
    m = manifest(path)
    assert set(m["models"]) == {"sasrec", "trending"} and set(m["metrics"]["models"]) == {
        "sasrec",
        "trending",
    }
    data, _ = load_training_data(store)
    fresh = make_model("sasrec", settings, small).fit(data)
    histories = data.sequences[:5]
    np.testing.assert_allclose(
        load_bundle(path).models["sasrec"].score(histories),
        fresh.score(histories),
        rtol=1e-4,
        atol=1e-5,
    )

    path = train_bundle(
        store,
        settings,
        models=("sasrec", "trending"),
        text_vectors=False,
        overrides={"sasrec": small},
        time_budget_s=1e-3,
    )
    m = manifest(path)
    assert set(m["models"]) == {"trending"}  # the cheap models are always fitted
    assert "budget" in m["skipped"]["sasrec"]


def test_torch_training_is_capped_so_that_its_last_epoch_ends_in_time(tmp_path: Path) -> None:
    model = make_model("sasrec", load_settings(data_dir=tmp_path))
    assert cap_training(model, seconds=25.0, epoch=10.0) is None
    assert model.config.max_seconds == 15.0  # epochs start until 15 s: the last ends before 25 s
    reason = cap_training(model, seconds=20.0, epoch=30.0)
    assert reason == "one epoch takes about 30 s; 20 s of the budget left"


def test_text_vectors_cold_items_first_and_within_the_deadline() -> None:
    texts = ["red tea", None, "green tea cup", "blue cup", ""]
    enc = WordHashEncoder()
    vectors, info = item_vectors(texts, enc, order=[3, 2, 0, 1, 4], chunk=2)
    assert enc.calls == [["blue cup", "green tea cup"], ["red tea"]]
    assert vectors is not None and vectors.shape == (5, 16)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), [1, 0, 1, 1, 0], atol=1e-6)
    assert (info["encoded"], info["missing"], info["done"]) == (3, 0, [0, 2, 3])
    vectors, info = item_vectors(texts, WordHashEncoder(), seconds=0.0)
    assert vectors is None and (info["encoded"], info["missing"]) == (0, 3)


def test_bundle_item_vectors_follow_the_item_map(demo: tuple[Store, Settings]) -> None:
    store, settings = demo
    path = train_bundle(store, settings, models=("trending",), encoder=WordHashEncoder())
    bundle = load_bundle(path)
    m = manifest(path)
    assert m["text"]["encoded"] == len(store.catalogue.all()) and m["text"]["dim"] == 16
    assert bundle.item_vectors is not None
    new = bundle.items.index_of("zz-new")
    expected = WordHashEncoder().encode(["Brand new teapot . Acme . Home Tea"])[0]
    np.testing.assert_allclose(
        bundle.item_vectors[new], expected / np.linalg.norm(expected), rtol=1e-6
    )
    assert not bundle.item_vectors[bundle.items.index_of("ghost")].any()  # no text


@pytest.mark.slow
def test_content_with_the_packaged_encoder_never_encodes_an_unchanged_item_twice(
    demo: tuple[Store, Settings],
) -> None:
    store, settings = demo
    n_items = len(store.catalogue.all())
    first = manifest(train_bundle(store, settings, models=("content",), eval_users=10))
    assert "content" in first["models"] and first["text"]["encoded"] == n_items
    item = store.catalogue.get("zz-new")
    store.catalogue.upsert([item.model_copy(update={"title": "Brand new glass teapot"})])
    path = train_bundle(store, settings, models=("content",), eval_users=10)
    second = manifest(path)
    assert (second["text"]["encoded"], second["text"]["cached"]) == (1, n_items - 1)
    bundle = load_bundle(path)
    np.testing.assert_allclose(bundle.models["content"].embeddings, bundle.item_vectors, atol=1e-6)


def test_needs_training_follows_the_store(demo: tuple[Store, Settings]) -> None:
    store, settings = demo
    bundles = BundleStore(settings.data_dir / "bundles")
    assert needs_training(store, bundles) == "no model bundle yet"
    train_bundle(store, settings, models=("trending",), text_vectors=False, eval_users=0)
    assert needs_training(store, bundles) is None
    store.events.append(
        [Event(event_id="late", type="view", user_id="u-late", item_id="zz-new", timestamp=T0)]
    )
    assert (
        needs_training(store, bundles) == "the store changed since the current bundle was trained"
    )


# -- the command line ------------------------------------------------------------------------------
def test_cli_trains_prints_the_table_and_explains_errors(tmp_path: Path, shop: DemoShop) -> None:
    runner = CliRunner()
    env = {"SHOPFLOW_DATA_DIR": str(tmp_path)}
    empty = runner.invoke(app, ["train", "--no-text"], env=env)
    assert empty.exit_code == 1
    assert "no events: run `shopflow demo generate` or `shopflow import" in empty.output

    store = Store.from_settings(load_settings(data_dir=tmp_path))
    load_into(store, shop)
    store.close()
    ok = runner.invoke(
        app,
        [
            "train",
            "--models",
            "trending,covisit",
            "--no-text",
            "--eval-users",
            "15",
            "--set",
            "covisit.window=5",
        ],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    current = BundleStore(tmp_path / "bundles").current()
    m = manifest(current)
    assert set(m["models"]) == {"trending", "covisit"} and m["metrics"]["n_users"] == 15
    assert m["settings"]["configs"]["covisit"]["window"] == 5
    for text in ("model trending: fitted", "model covisit: fitted", "val NDCG@10", str(current)):
        assert text in ok.output
    ndcg = m["metrics"]["models"]["covisit"]["ndcg@10"]
    assert f"{ndcg:.4f}" in ok.output

    for args, message in (
        (["--models", "trending,nope"], "unknown model 'nope'"),
        (["--cutoff", "yesterday"], "is not an ISO 8601 time"),
        (["--set", "als.bogus=1"], "als has no setting bogus"),
        (["--set", "als"], "is not MODEL.SETTING=VALUE"),
    ):
        bad = runner.invoke(app, ["train", *args], env=env)
        assert bad.exit_code == 2 and message in bad.output, (args, bad.output)
