"""New and edited catalogue items in the serving state the moment they are upserted, no retrain.

A model bundle knows the items of its training catalogue. :func:`with_items` makes a new
:class:`~shopflow.serving.state.ServingState` that also holds items upserted since: new ids are
appended to the item table (existing dense ids keep their place, so every model still indexes its
own items), edited items get their new title, brand and category path, and both get a text vector
from the query encoder (the model the bundle's vectors were computed with), so that the content
source finds them (similar items, the content part of home and new arrivals) and they find their
neighbours. The search indexes of the old state are carried over and updated in place: the new
text goes to the BM25 delta (``text.lexical``), no index is rebuilt. Models that do not know an item
(co-visitation until its first events, ALS until the next training) simply never propose it
(``retrieval.sources``); the sequential model is grown to the new items from their side
information (:func:`_grow_sequential`), so it can propose them at once.

The caller swaps the new state in with one reference assignment, as a bundle swap does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from shopflow.features.sequences import ItemSide
from shopflow.ingest.schema import Item
from shopflow.models.bundle import item_text
from shopflow.retrieval.items import NO_STOCK_TRACKING, ItemTable
from shopflow.retrieval.sources import SourceSet
from shopflow.serving.state import RecommendConfig, ServingState

log = logging.getLogger(__name__)


def text_changed(st: ServingState, item: Item) -> bool:
    """True when ``item`` is new to ``st`` or its title, brand or category path differ."""
    t = st.table
    i = t.ids.get(item.item_id)
    if i < 0:
        return True
    return (
        t.titles[i] != (item.title or "")
        or (t.brand_name(i) or None) != (item.brand or None)
        or t.paths[i] != tuple(item.categories)
    )


def _vectors(st: ServingState, items: Sequence[Item], encoder: Any | None) -> np.ndarray | None:
    """(len(items), E) unit text vectors in the space of the state's item vectors (zeros when no
    encoder of that size is at hand); None when the state has no item vectors."""
    text = st.sources.text
    if text is None:
        return None
    out = np.zeros((len(items), text.shape[1]), dtype=np.float32)
    if encoder is None:
        log.warning("no query encoder loaded: upserted items get no text vector until it is")
        return out
    texts = [item_text(it.title, it.brand, it.categories, it.description) or "" for it in items]
    emb = np.asarray(encoder.encode(texts, batch_size=64), dtype=np.float32)
    if emb.ndim != 2 or emb.shape[1] != text.shape[1]:
        log.warning("the encoder's vectors (%s) do not match the bundle's: none given", emb.shape)
        return out
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _table(t: ItemTable, items: Sequence[Item]) -> ItemTable:
    """``t`` with ``items`` replaced (known ids) or appended (new ids); live columns kept."""
    ids = t.ids.extend(it.item_id for it in items)
    n_old, n = len(t), len(ids)
    titles, paths = list(t.titles) + [""] * (n - n_old), list(t.paths) + [()] * (n - n_old)
    brands = [t.brand_name(i) for i in range(n_old)] + [None] * (n - n_old)
    price = np.concatenate([t.price, np.full(n - n_old, np.nan)])
    stock = np.concatenate([t.stock, np.full(n - n_old, NO_STOCK_TRACKING, dtype=np.int64)])
    created = np.concatenate([t.created_at, np.full(n - n_old, np.nan)])
    available = np.concatenate([t.available, np.ones(n - n_old, dtype=bool)])
    tracked = np.concatenate([t.tracked, np.ones(n - n_old, dtype=bool)])
    for it in items:
        i = ids.index_of(it.item_id)
        titles[i], paths[i], brands[i] = it.title or "", tuple(it.categories), it.brand or None
        price[i] = np.nan if it.price is None else float(it.price)
        stock[i] = NO_STOCK_TRACKING if it.stock is None else int(it.stock)
        stamp = it.created_at.timestamp() if it.created_at is not None else None
        if i >= n_old or stamp is not None:
            created[i] = stamp if stamp is not None else time.time()
        available[i] = tracked[i] = True
    out = ItemTable.build(ids, titles, paths, brands, price, stock, created)
    out.available[:], out.tracked[:] = available, tracked
    return out


def with_items(
    st: ServingState, items: Sequence[Item], encoder: Any | None, config: RecommendConfig
) -> ServingState | None:
    """A state that also holds ``items`` (new or with edited text); None when none is."""
    changed = list({it.item_id: it for it in items if text_changed(st, it)}.values())
    if not changed:
        return None
    table = _table(st.table, changed)
    vectors = None
    fresh = _vectors(st, changed, encoder)
    if fresh is not None and st.sources.text is not None:
        vectors = np.zeros((len(table), st.sources.text.shape[1]), dtype=np.float32)
        vectors[: len(st.table)] = st.sources.text
        rows = table.ids.to_index([it.item_id for it in changed])
        vectors[rows] = fresh
    models = st.bundle.models if st.bundle is not None else {}
    models = _grow_sequential(models, table, vectors)
    sources = SourceSet(
        table,
        models,
        vectors,
        history_len=config.history_len,
        new_days=config.new_days,
        base=st.sources,  # what the models gave is taken over, the lock too
    )
    texts = None
    if st.texts is not None:
        texts = list(st.texts) + [None] * (len(table) - len(st.table))
        for it in changed:
            texts[table.ids.index_of(it.item_id)] = item_text(
                it.title, it.brand, it.categories, it.description
            )
    with st._lock:  # indexes the old state finished; one it is still building is built anew
        built = dict(st._search)
    new = ServingState(
        version=st.version, manifest=st.manifest, table=table, sources=sources, bundle=st.bundle,
        cutoff=st.cutoff, loaded_at=st.loaded_at, texts=texts, _search=built,
    )  # fmt: skip
    _update_search(new, changed, fresh)
    return new


def _grow_sequential(
    models: dict[str, Any], table: ItemTable, vectors: np.ndarray | None
) -> dict[str, Any]:
    """``models`` with the bundle's sequential model grown to every item of ``table``.

    Items appended since training get rows built from their side information (brand and category
    tokens, text vector when the model fuses text; ``models.sasrec_update.extend_items``), so the
    sequential source can propose them from the first request; trained items keep their vectors.
    Always grown from the bundle's own model, so repeated upserts never compound.
    """
    seq = models.get("sasrec")
    if seq is None or getattr(seq, "net", None) is None or len(table) <= seq.n_items:
        return models
    if not getattr(seq, "vocab", None) and seq.net.items.text is None:
        return models  # no side information: a new row would be an uninformed average
    from shopflow.models.sasrec_update import extend_items  # torch is loaded with the model

    n_old, n_new = seq.n_items, len(table) - seq.n_items
    side = ItemSide(
        brand=[table.brand_name(i) or None for i in range(len(table))],
        categories=[list(table.paths[i]) for i in range(len(table))],
    )
    text = None
    if seq.net.items.text is not None:
        dim = seq.net.items.text.shape[1]
        text = np.zeros((n_new, dim), dtype=np.float32)
        if vectors is not None and vectors.shape[1] == dim:
            text = vectors[n_old:]
    try:
        grown = extend_items(seq, n_new, side=side, text=text)
    except (ValueError, RuntimeError) as exc:  # never fail an upsert over it
        log.warning("sequential model not grown to new items: %s", exc)
        return models
    return {**models, "sasrec": grown}


def _update_search(st: ServingState, items: Sequence[Item], vectors: np.ndarray | None) -> None:
    """Add ``items`` to the search indexes the state already built (the others build later)."""
    from shopflow.text.query import QueryVocabulary
    from shopflow.text.search import SearchIndex

    with st._lock:
        for dense, (index, vocab) in list(st._search.items()):
            if not isinstance(index, SearchIndex):  # a catalogue that had no text: build anew
                del st._search[dense]
                continue
            if dense and vectors is not None:
                index.add(items, embeddings=vectors)
            else:
                index.add(items, embeddings=np.ones((len(items), 1)))  # lexical-only index
            more = QueryVocabulary.from_items(items)
            st._search[dense] = (
                index,
                QueryVocabulary(
                    brands=list(dict.fromkeys([*vocab.brands, *more.brands])),
                    categories=list(dict.fromkeys([*vocab.categories, *more.categories])),
                    attributes={
                        k: list(dict.fromkeys([*vocab.attributes.get(k, []), *v]))
                        for k, v in {**vocab.attributes, **more.attributes}.items()
                    },
                    words=vocab.words | more.words,
                ),
            )
