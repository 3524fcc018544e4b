"""A small demo shop with fitted models and bundles, shared by the recommendation tests.

Fitting is done once per test session (``fitted()`` is cached): a 300-item demo shop, co-visitation,
ALS, trending and a tiny SASRec, plus deterministic bag-of-words "text embeddings" (``HashEncoder``)
so that content similarity and dense search are exact and fast without loading a language model.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from shopflow.features.sequences import from_events
from shopflow.ingest.demo import DemoConfig, DemoShop, generate
from shopflow.ingest.schema import Item
from shopflow.models.base import Recommender
from shopflow.models.bundle import ItemColumns, load_bundle, write_bundle
from shopflow.models.registry import MODELS
from shopflow.store.bundles import BundleStore
from shopflow.store.idmap import IdMap
from shopflow.store.store import Store

CONFIG = DemoConfig(seed=11, n_users=160, n_items=300, days=28)
DIM = 256
_WORD = re.compile(r"\w+")


class HashEncoder:
    """Bag of hashed words → unit vectors: items sharing words are similar; deterministic."""

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for r, text in enumerate(texts):
            for w in _WORD.findall(text.lower()):
                h = int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little")
                out[r, h % DIM] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def encode(self, texts: list[str], batch_size: int = 64, **_: Any) -> np.ndarray:
        return self(list(texts))


def item_text(it: Item) -> str:
    return " ".join(filter(None, (it.title, it.brand, *it.categories)))


@dataclass
class Fitted:
    shop: DemoShop
    items: IdMap
    users: IdMap
    histories: list[np.ndarray]
    models: dict[str, Recommender]
    columns: ItemColumns
    vectors: np.ndarray


@functools.cache
def fitted() -> Fitted:
    """The demo shop and models fitted on all of its events (once per session)."""
    import torch

    from shopflow.models.covisit import CoVisitation
    from shopflow.models.mf import ALS
    from shopflow.models.popular import Trending
    from shopflow.models.sasrec_model import SASRecModel

    torch.set_num_threads(1)
    shop = generate(CONFIG)
    frame = pl.DataFrame(
        {
            "user_id": [e.user_id for e in shop.events],
            "item_id": [e.item_id for e in shop.events],
            "type": [e.type.value for e in shop.events],
            "timestamp": [e.timestamp for e in shop.events],
        }
    )
    items = IdMap([it.item_id for it in shop.items])
    data = from_events(frame, name="demo", items=items)
    assert data.items == items  # every event names a catalogue item
    models: dict[str, Recommender] = {
        "covisit": CoVisitation().fit(data),
        "als": ALS(factors=16, iterations=5, num_threads=1).fit(data),
        "trending": Trending().fit(data),
        "sasrec": SASRecModel(
            hidden=32, n_layers=1, max_len=20, epochs=4, validation=False, device="cpu", seed=0
        ).fit(data),
    }
    columns = ItemColumns(
        ids=items,
        titles=[it.title for it in shop.items],
        texts=[item_text(it) for it in shop.items],
        brands=[it.brand for it in shop.items],
        paths=[tuple(it.categories) for it in shop.items],
        price=np.array([np.nan if it.price is None else it.price for it in shop.items]),
        stock=np.array([-1 if it.stock is None else it.stock for it in shop.items]),
        created_at=np.array(
            [it.created_at.timestamp() if it.created_at else np.nan for it in shop.items]
        ),
        in_catalogue=np.ones(len(items), dtype=bool),
    )
    vectors = HashEncoder()([item_text(it) for it in shop.items])
    return Fitted(shop, items, data.users, data.sequences, models, columns, vectors)


def write(
    root: Path, models: list[str] | None = None, vectors: bool = True, **manifest: Any
) -> Path:
    """Publish a bundle of the fitted models (all, or those named) under ``root``; its path."""
    f = fitted()
    # only what the model registry can load back (the sequential model is added by `with_sasrec`
    # when the registry does not list it)
    chosen = {k: v for k, v in f.models.items() if (models is None or k in models) and k in MODELS}
    return write_bundle(
        BundleStore(root),
        items=f.items,
        users=f.users,
        models=chosen,
        item_columns=f.columns,
        item_vectors=f.vectors if vectors else None,
        histories=f.histories,
        manifest={"training_cutoff": f.shop.end.isoformat(), **manifest},
    )


def fill_store(store: Store) -> None:
    """Catalogue and users of the demo shop (no events: histories come from the bundle)."""
    shop = fitted().shop
    store.catalogue.upsert(shop.items)
    for user in shop.users:
        store.users.upsert(user)


@functools.cache
def _template() -> Path:
    path = Path(tempfile.mkdtemp(prefix="shopflow-recommend-")) / "shop.db"
    store = Store.from_url(f"sqlite:///{path}")
    fill_store(store)
    store.close()
    return path


def new_store(folder: Path) -> Store:
    """A SQLite store in ``folder`` holding the demo catalogue and users (a copy of a template)."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "shop.db"
    shutil.copyfile(_template(), target)
    return Store.from_url(f"sqlite:///{target}")


def user_with_history(min_len: int = 8) -> str:
    """A user of the shop with at least ``min_len`` training items."""
    f = fitted()
    for u, seq in enumerate(f.histories):
        if len(seq) >= min_len:
            return f.users.external_ids[u]
    raise AssertionError("no user with enough history")


def with_sasrec(service: Any) -> None:
    """Make sure the service's state has the sequential model: when the registry cannot load it
    from the bundle, install the bundle again with the fitted model added in memory."""
    state = service.state
    if "sasrec" in state.sources.names or state.bundle is None:
        return
    bundle = load_bundle(state.bundle.path)
    bundle.models["sasrec"] = fitted().models["sasrec"]
    service.install(bundle)
