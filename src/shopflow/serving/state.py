"""What one request of the recommend service reads: an immutable-by-reference serving state.

:class:`ServingState` bundles the item table, the candidate sources and the model version of one
model bundle (or of the bare catalogue when no bundle was trained yet). The service holds exactly
one reference to the current state; a reload builds a complete new state first and then replaces
that reference, so a request that started on the old state finishes on it. :class:`UserView` is a
user's history as the sources see it (dense item indices), built per request from the online state.

Example
-------
>>> from shopflow.ingest.schema import Item
>>> st = state_from_items([Item(item_id="a", title="Tea")], RecommendConfig())
>>> st.version is None, len(st.table), st.sources.names
(True, 1, [])
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

import numpy as np

from shopflow.ingest.schema import Item
from shopflow.retrieval.cache import CandidateCache
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.sources import SourceSet
from shopflow.store.online import RecentEvent, current_session
from shopflow.types import POSITIVE_EVENT_TYPES

POSITIVE = frozenset(str(t) for t in POSITIVE_EVENT_TYPES)


def default_weights() -> dict[str, dict[str, float]]:
    """Blend weight of each candidate source, per scenario (sources not named get 0.1).

    ``sentiment`` is review sentiment's lift in [-1, 1] (``serving.reviews``), added unscaled;
    ``searched``: the results of the session's latest queries (``serving.intent``)."""
    return {
        "home": {
            "searched": 0.8,
            "sentiment": 0.3,
            "sequential": 1.0,
            "covisit": 0.8,
            "als": 0.6,
            "content": 0.4,
            "session": 0.5,
            "trending": 0.15,
        },
        "similar": {
            "sentiment": 0.3,
            "covisit": 1.0,
            "content": 0.8,
            "sequential": 0.5,
            "als": 0.5,
            "session": 0.3,
            "trending": 0.1,
        },
        "complementary": {
            "bought_together": 1.0,
            "viewed_together": 0.5,
            "trending": 0.1,
            "sentiment": 0.2,
        },
        "cart": {
            "bought_together": 1.0,
            "viewed_together": 0.5,
            "sequential": 0.3,
            "covisit": 0.2,
            "trending": 0.1,
            "sentiment": 0.2,
        },
        "new_arrivals": {"new_arrivals": 1.0, "sentiment": 0.2},
        "trending": {"trending": 1.0, "sentiment": 0.1},
        "search": {"search": 1.0, "dense": 0.5, "content": 0.2, "session": 0.1, "sentiment": 0.1},
    }


@dataclass
class RecommendConfig:
    """Settings of the recommend service (defaults in code)."""

    max_n: int = 100  # largest page a request may ask for
    max_offset: int = 1_000  # deepest page start
    pool_factor: int = 2  # candidates asked of each source: pool_factor * (offset + n) ...
    min_pool: int = 40  # ... at least this many
    max_pool: int = 600  # ... at most this many
    max_share: float = 0.5  # diversity: most of a page one leaf category or brand may take
    history_len: int = 8  # recent history items the item-to-item sources expand
    max_history: int = 50  # most recent positive events a user state is built from
    new_days: float = 30.0  # "new arrival": created within this many days of the newest item
    poll_seconds: float = 2.0  # how often the bundle pointer (CURRENT) is checked
    refresh_seconds: float = 30.0  # how often price, stock and presence are re-read
    trending_seconds: float = 1.0  # how long the online trending list is reused
    user_seconds: float = 30.0  # how often consent written elsewhere is re-read (serving.consent)
    torch_threads: int = 1  # threads of the sequential model's forward pass
    compute_threads: int = 0  # 0: answers computed on the event loop; n: in n threads at once
    share_seconds: float = 0.5  # how often co-visitation learned by other workers is read
    candidate_cache: int = 20_000  # history-based candidate lists kept for repeat requests
    candidate_seconds: float = 60.0  # ... co-visitation's at most this long (see retrieval.cache)
    load_text_encoder: bool = True  # load the query encoder a bundle's manifest names (search)
    warm_search: bool = True  # build the search index in the background after each swap
    freeze_heap: bool = True  # gc.freeze() after each swap and as long-lived objects pile up
    # with freeze_heap: collect the youngest generation this often, the two young ones then
    # freeze what survived every ``freeze_ticks`` times, and the whole heap every
    # ``settle_seconds`` (``serving.reload.pace_collector``; collect_seconds 0: off)
    collect_seconds: float = 0.1
    freeze_ticks: int = 3
    settle_seconds: float = 600.0
    weights: dict[str, dict[str, float]] = field(default_factory=default_weights)


@dataclass
class ServingState:
    """One bundle (or the bare catalogue) ready to answer; never mutated except live columns."""

    version: str | None
    manifest: dict[str, Any]
    table: ItemTable
    sources: SourceSet
    bundle: Any | None = None  # shopflow.models.bundle.LoadedBundle
    cutoff: float | None = None  # training cutoff (unix seconds) when the manifest names it
    loaded_at: float = field(default_factory=time.time)
    texts: list[str | None] | None = None  # per item: the text its vector was computed from
    # reasons by (source, evidence item, item scenario?), for every request on this state
    reasons: dict[tuple[Any, ...], Any] = field(default_factory=dict, repr=False)
    _search: dict[bool, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def search_index(self, encoder: Any | None) -> tuple[Any, Any]:
        """The product search index (``text.search.SearchIndex``) and query vocabulary, built on
        first use. With ``encoder`` (queries into the space of the bundle's item vectors) it is
        hybrid; without, lexical only (its dense half scores zero everywhere)."""
        from shopflow.text.query import QueryVocabulary
        from shopflow.text.search import SearchConfig, SearchIndex

        dense = encoder is not None and self.sources.text is not None
        with self._lock:
            if dense not in self._search:
                items = self.items()
                if not any(it.title or it.description or it.brand or it.categories for it in items):
                    self._search[dense] = (_NoText(), QueryVocabulary.from_items([]))
                    return self._search[dense]  # a catalogue without text: nothing to search
                if dense:
                    vectors = self.sources.text
                    index = SearchIndex.build(items, cast(Any, encoder), embeddings=vectors)
                else:
                    config = SearchConfig(dense_weight=0.0)
                    ones = np.ones((len(items), 1))
                    index = SearchIndex.build(items, cast(Any, _NoDense()), config, ones)
                self._search[dense] = (index, QueryVocabulary.from_items(items))
            return self._search[dense]

    def items(self) -> list[Item]:
        """The state's items as catalogue records (text as description), for the search index."""
        t = self.table
        return [
            Item.model_construct(
                item_id=item_id, title=t.titles[i],
                description=(self.texts[i] or "") if self.texts else "",
                brand=t.brand_name(i), categories=list(t.paths[i]), price=_num(t.price[i]),
                stock=None, currency="USD", created_at=None, attributes={}, image_url=None,
                embedding=None,
            )
            for i, item_id in enumerate(t.ids.external_ids)
        ]  # fmt: skip

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/admin/bundle`` shows."""
        return {
            "version": self.version,
            "path": str(self.bundle.path) if self.bundle is not None else None,
            "loaded_at": datetime.fromtimestamp(self.loaded_at).astimezone().isoformat(),
            "models": self.sources.names,
            "sources": self.sources.available(),
            "items": len(self.table),
            "users": len(self.bundle.users) if self.bundle is not None else 0,
            "training_cutoff": self.manifest.get("training_cutoff"),
            "created_at": self.manifest.get("created_at"),
            "metrics": self.manifest.get("metrics", {}),
        }


class _NoText:
    """The search index of a catalogue without any text: it finds nothing."""

    def search(self, *_: Any, **__: Any) -> list[Any]:
        return []


class _NoDense:
    """The encoder of a lexical-only search index: every query is the zero vector."""

    def encode(self, texts: list[str], **_: Any) -> np.ndarray:
        return np.zeros((len(texts), 1), dtype=np.float32)


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def _cutoff(manifest: Mapping[str, Any]) -> float | None:
    raw = manifest.get("training_cutoff")
    if raw is None:
        return None
    if isinstance(raw, int | float):
        return float(raw)
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def state_from_bundle(bundle: Any, config: RecommendConfig) -> ServingState:
    """A serving state from a loaded bundle (``shopflow.models.bundle.LoadedBundle``)."""
    cols = bundle.item_columns
    table = ItemTable.build(cols.ids, **cols.table_kwargs())
    table.tracked[:] = np.asarray(cols.in_catalogue, dtype=bool)
    sources = SourceSet(
        table,
        bundle.models,
        bundle.item_vectors,
        history_len=config.history_len,
        new_days=config.new_days,
        cache=CandidateCache(config.candidate_cache, config.candidate_seconds),
    )
    return ServingState(
        version=bundle.version,
        manifest=dict(bundle.manifest),
        table=table,
        sources=sources,
        bundle=bundle,
        cutoff=_cutoff(bundle.manifest),
        texts=list(cols.texts),
    )


def state_from_items(items: Sequence[Item], config: RecommendConfig) -> ServingState:
    """A model-free state over the catalogue: trending, popularity and category fallbacks only."""
    table = ItemTable.from_items(items)
    sources = SourceSet(table, {}, None, history_len=config.history_len, new_days=config.new_days)
    return ServingState(version=None, manifest={}, table=table, sources=sources)


@dataclass
class UserView:
    """A user's recent behaviour in the state's dense item ids, oldest first."""

    user_id: str | None
    personal: bool  # False: no consent to personalisation (or no user): nothing personal is used
    history: np.ndarray  # items of positive events
    weights: np.ndarray  # event-type weight of each history entry
    purchased: np.ndarray  # items bought (never re-offered where that makes no sense)
    session_only: bool  # the whole history is the current session (a new shopper)
    queries: tuple[str, ...] = ()  # search queries of the current session, oldest first

    @classmethod
    def anonymous(cls, user_id: str | None = None, personal: bool = False) -> UserView:
        empty = np.empty(0, dtype=np.int64)
        return cls(user_id, personal, empty, np.empty(0), empty, True)

    @property
    def mode(self) -> str:
        """``non_personal``, ``cold`` (nothing known), ``session`` or ``personal``."""
        if not self.personal:
            return "non_personal"
        if not len(self.history):
            return "cold"
        return "session" if self.session_only else "personal"

    def brand_affinity(self, table: ItemTable) -> dict[int, float]:
        return _shares(table.brand[self.history], self.weights)

    def category_affinity(self, table: ItemTable) -> dict[int, float]:
        return _shares(table.leaf[self.history], self.weights)


def _shares(codes: np.ndarray, weights: np.ndarray) -> dict[int, float]:
    ok = codes >= 0
    if not ok.any():
        return {}
    w = np.maximum(weights[ok], 0.0)
    total = w.sum() or 1.0
    out: dict[int, float] = {}
    for c, x in zip(codes[ok].tolist(), w.tolist(), strict=True):
        out[c] = out.get(c, 0.0) + x / total
    return out


def user_view(
    state: ServingState,
    user_id: str,
    recent: Sequence[RecentEvent],
    event_weights: Mapping[str, float],
    config: RecommendConfig,
    session_timeout: float,
) -> UserView:
    """The user's view: online events, preceded by the bundle's training history when they do not
    overlap (the online state holds nothing from before the training cutoff, e.g. after a restart).
    """
    if not recent:  # nothing since the training cutoff (or a restart): the bundle's history
        return _trained_view(state, user_id, config.max_history)
    table = state.table
    positive = [r for r in recent if r.item_id is not None and r.type in POSITIVE]
    idx = table.ids.to_index((r.item_id for r in positive), missing=-1)  # type: ignore[misc]
    known = idx >= 0
    items = idx[known]
    kinds = [r.type for r, k in zip(positive, known.tolist(), strict=True) if k]
    weights = np.array([max(event_weights.get(t, 1.0), 0.1) for t in kinds], dtype=np.float64)
    purchased = items[np.array([t == "purchase" for t in kinds], dtype=bool)] if kinds else items
    in_session = current_session(list(recent), session_timeout)
    session = {r.event_id for r in in_session}
    queries = tuple(r.query for r in in_session if r.type == "search" and r.query)
    session_only = all(r.event_id in session for r in positive)
    if state.bundle is not None:
        older = not recent or (state.cutoff is not None and recent[0].ts > state.cutoff)
        trained = state.bundle.history(user_id) if older else np.empty(0, np.int64)
        if len(trained):
            items = np.concatenate([trained.astype(np.int64), items])
            weights = np.concatenate([np.ones(len(trained)), weights])
            session_only = False
    items, weights = items[-config.max_history :], weights[-config.max_history :]
    return UserView(user_id, True, items, weights, np.unique(purchased), session_only, queries)


_NONE_INT = np.empty(0, dtype=np.int64)
_NONE_INT.flags.writeable = False
_NONE_FLOAT = np.empty(0, dtype=np.float64)
_NONE_FLOAT.flags.writeable = False


def _trained_view(state: ServingState, user_id: str, max_history: int) -> UserView:
    """What :func:`user_view` gives a user without online events, without its array work: the
    bundle's training history (read-only), each event weighing 1, no purchases known online."""
    trained = state.bundle.history(user_id) if state.bundle is not None else _NONE_INT
    if not len(trained):
        return UserView(user_id, True, _NONE_INT, _NONE_FLOAT, _NONE_INT, True)
    items = np.asarray(trained, dtype=np.int64)[-max_history:]
    items.flags.writeable = False  # a view of the bundle's arrays
    return UserView(user_id, True, items, np.ones(len(items)), _NONE_INT, False)


@dataclass
class Recommendation:
    """One answer: its id, the model version and strategy behind it, and the items with reasons."""

    recommendation_id: str
    scenario: str
    strategy: str
    model_version: str | None
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def item_ids(self) -> list[str]:
        return [it["item_id"] for it in self.items]

    def as_dict(self) -> dict[str, Any]:
        return {
            "recommendation_id": self.recommendation_id,
            "scenario": self.scenario,
            "strategy": self.strategy,
            "model_version": self.model_version,
            "items": self.items,
        }
