"""A model bundle on disk: what ``shopflow train`` writes and what the service loads.

One bundle is one directory published by :class:`~shopflow.store.bundles.BundleStore`::

    manifest.json        version, created_at, training_cutoff, models {name: subdir}, n_items,
                         n_users, features, metrics, settings, data fingerprint
    items.json           item IdMap (dense index → item id); every catalogue item has a place
    users.json           user IdMap of the training events
    items.parquet        per-item columns by dense index: item_id, title, text, brand, categories,
                         price, stock, created_at, in_catalogue (filters and reasons, no database)
    item_vectors.npy     float32 (n_items, E) unit text embeddings (zero rows: no text); optional
    histories.npz        the last items of each training user (CSR: indptr, items); optional
    models/<name>/       one fitted model each, written by ``Recommender.save``

This module is the only one the service needs: it imports no training code (``shopflow.train``,
the training loops), and :func:`load_bundle` reads everything in one pass.

Example
-------
>>> bundle = load_bundle(BundleStore("data/bundles").current())      # doctest: +SKIP
>>> bundle.version, sorted(bundle.models)                              # doctest: +SKIP
('20261101T120000.000000-ab12', ['als', 'content', 'covisit', 'sasrec', 'trending'])
>>> bundle.models["covisit"].similar_items(bundle.items.index_of("i00042"), k=5)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shopflow.errors import NotFound, ShopflowError
from shopflow.models.base import MANIFEST as MODEL_MANIFEST
from shopflow.models.base import Recommender
from shopflow.store.bundles import MANIFEST, BundleStore
from shopflow.store.idmap import IdMap

log = logging.getLogger(__name__)

ITEMS_MAP = "items.json"
USERS_MAP = "users.json"
ITEM_COLUMNS = "items.parquet"
ITEM_VECTORS = "item_vectors.npy"
HISTORIES = "histories.npz"
MODELS_DIR = "models"
UNTRACKED_STOCK = -1  # stock of items whose stock is not tracked (always available)


class BundleError(ShopflowError):
    """A bundle on disk is incomplete or inconsistent."""


@dataclass
class ItemColumns:
    """Per-item data by dense index (row ``i`` is item ``ids.external_ids[i]``).

    The field names match ``retrieval.items.ItemTable.build`` so that the service builds its table
    with ``ItemTable.build(cols.ids, **cols.table_kwargs())``.
    """

    ids: IdMap
    titles: list[str | None]
    texts: list[str | None]  # what the text embedding was computed from
    brands: list[str | None]
    paths: list[tuple[str, ...]]  # category path, root first
    price: np.ndarray  # float64, NaN unknown
    stock: np.ndarray  # int64, UNTRACKED_STOCK when untracked
    created_at: np.ndarray  # float64 unix seconds, NaN unknown
    in_catalogue: np.ndarray  # bool: False for items known only from events

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in (
            "titles",
            "texts",
            "brands",
            "paths",
            "price",
            "stock",
            "created_at",
            "in_catalogue",
        ):
            if len(getattr(self, name)) != n:
                raise ValueError(f"ItemColumns.{name} has {len(getattr(self, name))} rows, ids {n}")

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_catalogue(cls, catalogue: Any, ids: IdMap) -> ItemColumns:
        """Rows of a catalogue frame (``Catalogue.to_polars``) aligned with ``ids``; ids the
        catalogue lacks (items known only from events) get empty rows."""
        row_of = {e: r for r, e in enumerate(catalogue["item_id"].to_list())}
        idx = np.array([row_of.get(e, -1) for e in ids.external_ids], dtype=np.int64)
        ok = idx >= 0

        def column(name: str) -> list[Any]:
            values = catalogue[name].to_list()
            return [values[r] if r >= 0 else None for r in idx]

        def array(values: np.ndarray, fill: float, dtype: Any) -> np.ndarray:
            out = np.full(len(idx), fill, dtype=dtype)
            out[ok] = values[idx[ok]]
            return out

        titles, brands, descs = column("title"), column("brand"), column("description")
        paths = [tuple(p or ()) for p in column("categories")]
        texts = [
            item_text(t, b, p, d) if r >= 0 else None
            for t, b, p, d, r in zip(titles, brands, paths, descs, idx, strict=True)
        ]
        created = catalogue["created_at"].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
        stock = catalogue["stock"].fill_null(UNTRACKED_STOCK).to_numpy().astype(np.int64)
        return cls(
            ids=ids,
            titles=titles,
            texts=texts,
            brands=[b or None for b in brands],
            paths=paths,
            price=array(catalogue["price"].to_numpy().astype(np.float64), np.nan, np.float64),
            stock=array(stock, UNTRACKED_STOCK, np.int64),
            created_at=array(created, np.nan, np.float64),
            in_catalogue=ok,
        )

    def table_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``ItemTable.build`` (all but ``ids``)."""
        return {
            "titles": self.titles,
            "paths": self.paths,
            "brands": self.brands,
            "price": self.price,
            "stock": self.stock,
            "created_at": self.created_at,
        }

    def save(self, path: Path) -> None:
        import polars as pl

        frame = pl.DataFrame(
            {
                "item_id": list(self.ids.external_ids),
                "title": self.titles,
                "text": self.texts,
                "brand": self.brands,
                "categories": [list(p) for p in self.paths],
                "price": self.price,
                "stock": self.stock,
                "created_at": self.created_at,
                "in_catalogue": self.in_catalogue,
            },
            schema={
                "item_id": pl.String,
                "title": pl.String,
                "text": pl.String,
                "brand": pl.String,
                "categories": pl.List(pl.String),
                "price": pl.Float64,
                "stock": pl.Int64,
                "created_at": pl.Float64,
                "in_catalogue": pl.Boolean,
            },
        )
        frame.write_parquet(path)

    @classmethod
    def load(cls, path: Path, ids: IdMap) -> ItemColumns:
        import polars as pl

        frame = pl.read_parquet(path)
        if frame["item_id"].to_list() != list(ids.external_ids):
            raise BundleError(f"{path} does not follow the bundle's item map: retrain the bundle")
        return cls(
            ids=ids,
            titles=frame["title"].to_list(),
            texts=frame["text"].to_list(),
            brands=frame["brand"].to_list(),
            paths=[tuple(p or ()) for p in frame["categories"].to_list()],
            price=frame["price"].to_numpy().astype(np.float64),
            stock=frame["stock"].to_numpy().astype(np.int64),
            created_at=frame["created_at"].to_numpy().astype(np.float64),
            in_catalogue=frame["in_catalogue"].to_numpy().astype(bool),
        )


@dataclass
class LoadedBundle:
    """A bundle in memory: id maps, fitted models by name, item columns and vectors."""

    path: Path
    manifest: dict[str, Any]
    items: IdMap
    users: IdMap
    models: dict[str, Recommender]
    item_columns: ItemColumns
    item_vectors: np.ndarray | None = None  # (n_items, E) float32, unit rows (or zero)
    history_indptr: np.ndarray | None = None  # (n_users + 1,)
    history_items: np.ndarray | None = None  # dense item ids, user after user, oldest first
    load_seconds: float = 0.0
    skipped: dict[str, str] = field(default_factory=dict)  # model → why it is not here

    @property
    def version(self) -> str:
        return str(self.manifest["version"])

    @property
    def n_items(self) -> int:
        return len(self.items)

    def history(self, user_id: str) -> np.ndarray:
        """The user's last training items (dense ids, oldest first); empty for an unknown user."""
        u = self.users.get(user_id)
        if u < 0 or self.history_indptr is None or self.history_items is None:
            return np.empty(0, dtype=np.int64)
        return self.history_items[self.history_indptr[u] : self.history_indptr[u + 1]]


def item_text(
    title: str | None, brand: str | None, categories: Sequence[str], description: str | None
) -> str | None:
    """The text an item is embedded by: exactly ``text.search.item_text`` (title, brand, category
    path, description), so that the search index finds its vectors in the encoder's cache."""
    from shopflow.ingest.schema import Item
    from shopflow.text.search import item_text as search_text

    item = Item.model_construct(
        title=title or "", brand=brand, categories=list(categories), description=description or ""
    )
    return search_text(item) or None


def write_bundle(
    bundles: BundleStore,
    *,
    items: IdMap,
    users: IdMap,
    models: Mapping[str, Recommender],
    item_columns: ItemColumns,
    item_vectors: np.ndarray | None = None,
    histories: Sequence[np.ndarray] | None = None,
    manifest: Mapping[str, Any] | None = None,
    max_history: int = 200,
    publish: bool = True,
) -> Path:
    """Write one bundle atomically (see the module docstring) and return its directory.

    Any exception (a model that cannot be saved, a full disk) removes the partial bundle and leaves
    the current one in force; the exception propagates.

    Parameters
    ----------
    bundles
        Where bundles live (``<data_dir>/bundles``).
    items, users
        The id maps the models were fitted with.
    models
        Fitted models by name; each goes to ``models/<name>/``.
    item_columns
        Per-item data aligned with ``items``.
    item_vectors
        Text embeddings aligned with ``items`` (normalised here; zero rows stay zero).
    histories
        Training sequences aligned with ``users``; the last ``max_history`` items of each are kept.
    manifest
        Extra manifest fields (training cutoff, metrics, settings, ...).
    publish
        Make the new bundle current.
    """
    if item_columns.ids != items:
        raise ValueError("item_columns must follow the item map of the bundle")
    if item_vectors is not None and len(item_vectors) != len(items):
        raise ValueError(f"item_vectors has {len(item_vectors)} rows for {len(items)} items")
    for name, model in models.items():
        if model.n_items != len(items):
            raise ValueError(f"model {name} knows {model.n_items} items, the bundle {len(items)}")
    with bundles.new_version(publish=publish) as w:
        items.save(w.path / ITEMS_MAP)
        users.save(w.path / USERS_MAP)
        item_columns.save(w.path / ITEM_COLUMNS)
        files = [ITEMS_MAP, USERS_MAP, ITEM_COLUMNS]
        if item_vectors is not None:
            np.save(w.path / ITEM_VECTORS, unit_rows(item_vectors))
            files.append(ITEM_VECTORS)
        if histories is not None:
            if len(histories) != len(users):
                raise ValueError(f"{len(histories)} histories for {len(users)} users")
            cut = [np.asarray(h, dtype=np.int64)[-max_history:] for h in histories]
            indptr = np.concatenate([[0], np.cumsum([len(h) for h in cut])]).astype(np.int64)
            flat = np.concatenate(cut) if cut else np.empty(0, dtype=np.int64)
            np.savez(w.path / HISTORIES, indptr=indptr, items=flat)
            files.append(HISTORIES)
        subdirs = {}
        for name, model in models.items():
            sub = f"{MODELS_DIR}/{name}"
            model.save(w.path / sub)
            subdirs[name] = sub
        w.manifest.update(dict(manifest or {}))
        w.manifest.update(
            {
                "version": w.version,
                "models": subdirs,
                "model_classes": {name: m.name for name, m in models.items()},
                "n_items": len(items),
                "n_users": len(users),
                "files": files,
            }
        )
        version = w.version
    return bundles.root / version


def load_bundle(path: str | Path) -> LoadedBundle:
    """Read a bundle directory: id maps, every model, item columns, vectors and histories.

    Raises
    ------
    NotFound
        ``path`` is not a bundle (no manifest).
    BundleError
        A file is missing or does not agree with the id maps.
    """
    import json

    start = time.perf_counter()
    path = Path(path)
    if not (path / MANIFEST).is_file():
        raise NotFound(f"no model bundle at {path}: run `shopflow train`")
    manifest = json.loads((path / MANIFEST).read_text())
    for name in (ITEMS_MAP, USERS_MAP, ITEM_COLUMNS):
        if not (path / name).is_file():
            raise BundleError(f"bundle {path} lacks {name}: retrain it (`shopflow train`)")
    items = IdMap.load(path / ITEMS_MAP)
    users = IdMap.load(path / USERS_MAP)
    columns = ItemColumns.load(path / ITEM_COLUMNS, items)
    models: dict[str, Recommender] = {}
    for name, sub in manifest.get("models", {}).items():
        model_file = path / sub / MODEL_MANIFEST
        if not model_file.is_file():
            raise BundleError(f"bundle {path} lists model {name} but {sub} is missing: retrain it")
        kind = json.loads(model_file.read_text())["model"]
        try:
            cls = model_class(kind)
        except NotFound as exc:
            raise BundleError(f"bundle {path}: {exc}; retrain the bundle") from None
        model = cls.load(path / sub)
        if model.n_items != len(items):
            raise BundleError(f"model {name} of {path} has {model.n_items} items, map {len(items)}")
        models[name] = model
    vectors = None
    if (path / ITEM_VECTORS).is_file():
        vectors = np.load(path / ITEM_VECTORS)
        if len(vectors) != len(items):
            raise BundleError(f"{ITEM_VECTORS} of {path} has {len(vectors)} rows, map {len(items)}")
    indptr = hist = None
    if (path / HISTORIES).is_file():
        with np.load(path / HISTORIES) as z:
            indptr, hist = z["indptr"], z["items"]
        if len(indptr) != len(users) + 1:
            raise BundleError(f"{HISTORIES} of {path} does not follow the user map")
    seconds = time.perf_counter() - start
    log.info(
        "loaded bundle %s (%d models) in %.2f s", manifest.get("version"), len(models), seconds
    )
    return LoadedBundle(
        path=path,
        manifest=manifest,
        items=items,
        users=users,
        models=models,
        item_columns=columns,
        item_vectors=vectors,
        history_indptr=indptr,
        history_items=hist,
        load_seconds=seconds,
        skipped=dict(manifest.get("skipped", {})),
    )


def model_class(name: str) -> type[Recommender]:
    """The class of model ``name`` in the registry (imported on first use: it pulls in torch)."""
    from shopflow.models.registry import MODELS

    if name in MODELS:
        return MODELS[name]
    raise NotFound(f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}")


def load_current(root: str | Path) -> LoadedBundle | None:
    """The bundle in force under ``root`` (``<data_dir>/bundles``); None when none was trained."""
    current = BundleStore(root).current()
    return load_bundle(current) if current is not None else None


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero), float32."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return (v / np.where(norms > 0, norms, 1.0)).astype(np.float32)
