"""What ``shopflow train`` reads: the store's events and catalogue, and the item text vectors.

:func:`load_training_data` turns the event log before a cutoff (:func:`parse_cutoff` reads one
from the command line) into per-user sequences over the whole catalogue, so every catalogue item
has a dense id even before anyone saw it, with the item columns and side information the models
use. :func:`item_vectors` embeds item texts within a time budget. :func:`store_fingerprint` and
:func:`needs_training` tell whether the current bundle was trained on what the store holds now.
Kept apart from ``train``, which runs the steps, fits the models and writes the bundle; names
here are importable from ``shopflow.train`` too.

Example
-------
>>> data, columns = load_training_data(store, parse_cutoff("2026-10-15"))  # doctest: +SKIP
>>> vectors, info = item_vectors(columns.texts, encoder, seconds=60.0)     # doctest: +SKIP
>>> needs_training(store, BundleStore(settings.data_dir / "bundles"))      # doctest: +SKIP
'the store changed since the current bundle was trained'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from shopflow.errors import NotFound, ShopflowError
from shopflow.features.sequences import InteractionData, ItemSide, from_events
from shopflow.models.bundle import ItemColumns, unit_rows
from shopflow.store.bundles import BundleStore
from shopflow.store.idmap import IdMap
from shopflow.store.store import Store
from shopflow.train_budget import torch_threads

log = logging.getLogger(__name__)


class NoEvents(ShopflowError):
    """The store holds nothing to learn from."""


# -- the store's data ------------------------------------------------------------------------------
def store_fingerprint(store: Store) -> dict[str, int]:
    """What changes with the store: event count and last seq, catalogue size and last update."""
    from sqlalchemy import func, select

    from shopflow.store.db import events, items

    with store.engine.connect() as conn:
        n_events, last_seq = conn.execute(select(func.count(), func.max(events.c.seq))).one()
        n_items, updated = conn.execute(select(func.count(), func.max(items.c.updated_at))).one()
    return {
        "n_events": int(n_events or 0),
        "last_seq": int(last_seq or 0),
        "n_catalogue_items": int(n_items or 0),
        "catalogue_updated_at": int(updated or 0),
    }


def needs_training(store: Store, bundles: BundleStore) -> str | None:
    """Why a new bundle should be trained (none yet, store changed since), or None if up to date."""
    try:
        manifest = bundles.manifest()
    except NotFound:
        return "no model bundle yet"
    if manifest.get("cutoff_requested"):
        return "the current bundle was trained with a cutoff"
    if manifest.get("store") != store_fingerprint(store):
        return "the store changed since the current bundle was trained"
    if manifest.get("text", {}).get("missing"):
        return "some item texts were not encoded yet"
    return None


def load_training_data(
    store: Store, cutoff: datetime | None = None
) -> tuple[InteractionData, ItemColumns]:
    """Events before ``cutoff`` as per-user sequences over the whole catalogue, and item columns.

    Raises
    ------
    NoEvents
        No event naming an item before the cutoff.
    """
    catalogue = store.catalogue.to_polars()
    events = store.events.to_polars(end=cutoff)
    data = from_events(events, name="store", items=IdMap(catalogue["item_id"].to_list()))
    if data.n_interactions == 0:
        when = f" before {cutoff.isoformat()}" if cutoff else ""
        raise NoEvents(f"no events{when}: run `shopflow demo generate` or `shopflow import …`")
    columns = ItemColumns.from_catalogue(catalogue, data.items)
    side = ItemSide(
        text=columns.texts,
        brand=columns.brands,
        categories=[list(p) for p in columns.paths],
        price=columns.price,
        created_at=columns.created_at,
    )
    last = events["timestamp"].max()
    meta = {"last_event": last.isoformat() if isinstance(last, datetime) else None}
    return replace(data, side=side, meta=meta), columns


def parse_cutoff(text: str | None) -> datetime | None:
    """An ISO 8601 date or time (naive means UTC), or None for no text."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time such as 2026-10-15T00:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


# -- item text vectors -----------------------------------------------------------------------------
def item_vectors(
    texts: Sequence[str | None],
    encoder: Any,
    order: Sequence[int] | None = None,
    seconds: float = float("inf"),
    chunk: int = 64,
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """Unit text vectors (n, E) aligned with ``texts``; zero rows: no text, or not encoded in time.

    Texts go to ``encoder`` (a :class:`~shopflow.text.encoder.TextEncoder`, whose cache keeps what
    was ever encoded) in chunks, items in ``order`` first; no chunk starts after ``seconds``.
    ``info`` counts the texts ``encoded`` now, taken from the ``cached`` ones and left ``missing``,
    and lists the ``done`` indices.
    """
    start = time.perf_counter()
    present = [int(i) for i in (range(len(texts)) if order is None else order) if texts[i]]
    before = int(getattr(encoder, "n_encoded", 0))
    out: np.ndarray | None = None
    done: list[int] = []
    for lo in range(0, len(present), chunk):
        if time.perf_counter() - start > seconds:
            break
        idx = present[lo : lo + chunk]
        with torch_threads():
            vecs = unit_rows(np.asarray(encoder.encode([str(texts[i]) for i in idx])))
        if out is None:
            out = np.zeros((len(texts), vecs.shape[1]), dtype=np.float32)
        out[idx] = vecs
        done.extend(idx)
    encoded = int(getattr(encoder, "n_encoded", 0)) - before
    info = {
        "model": str(getattr(encoder, "model_name", type(encoder).__name__)),
        "encoded": encoded,
        "cached": len(done) - encoded,
        "missing": len(present) - len(done),
        "dim": None if out is None else int(out.shape[1]),
        "done": sorted(done),
    }
    if info["missing"]:
        log.warning(
            "%d item texts not encoded within the time budget (zero vectors for now; "
            "the next `shopflow train` encodes them)",
            info["missing"],
        )
    return out, info
