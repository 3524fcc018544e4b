"""The candidate sources that need no model: trending, session, popular and new arrivals.

:class:`CatalogueSources` is the half of :class:`~shopflow.retrieval.sources.SourceSet` built from
the item table and the bundle's popularity alone, so a bundle without any model (or no bundle)
still answers: the online trending counters blended with the bundle's prior, the trending items of
the categories a shopper just browsed (from the first click), popularity over any filtered subset
of the catalogue, and the newest items scored by content, brand and category affinity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from shopflow.models.base import Recommender
from shopflow.retrieval.cache import CandidateCache
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.kernels import top_k_row
from shopflow.retrieval.merge import SourceHits
from shopflow.retrieval.vectors import EMPTY, recency_weights


class CatalogueSources:
    """Model-free sources over ``items`` (the attributes are set by ``SourceSet.__init__``)."""

    items: ItemTable
    n: int
    history_len: int
    recency_decay: float
    text: np.ndarray | None
    prior: np.ndarray  # (n,) popularity prior in [0, 1]
    new_pool: np.ndarray  # the newest items
    _online: tuple[Sequence[tuple[str, float]] | None, np.ndarray]
    _trend_top: tuple[Sequence[tuple[str, float]], int, SourceHits] | None
    session_cache: CandidateCache  # session lists of a history, for the current trending list
    _session_for: Sequence[tuple[str, float]] | None  # that trending list ...
    _session_gen: int  # ... and how many lists came before it

    # -- built once -------------------------------------------------------------------------------
    def _prior(self, models: Mapping[str, Recommender]) -> np.ndarray:
        """Popularity prior in [0, 1]: the bundle's trending (else popularity) scores, or zeros."""
        for name in ("trending", "pop"):
            m = models.get(name)
            if m is not None and 0 < getattr(m, "n_items", 0) <= self.n:
                s = np.asarray(m.score([EMPTY])[0], dtype=np.float64)
                s = np.where(np.isfinite(s), np.maximum(s, 0.0), 0.0)
                s = np.concatenate([s, np.zeros(self.n - len(s))])  # items newer than the model
                return s / s.max() if s.max() > 0 else s
        return np.zeros(self.n)

    def _new_pool(self, days: float) -> np.ndarray:
        """The newest items: created within ``days`` of the newest one (at least the newest 2%)."""
        created = self.items.created_at
        known = np.flatnonzero(np.isfinite(created))
        if not len(known):
            return EMPTY
        order = known[np.argsort(-created[known], kind="stable")]
        recent = order[created[order] >= created[order[0]] - days * 86_400.0]
        floor = max(1, int(0.02 * self.n))
        return recent if len(recent) >= floor else order[:floor]

    # -- non-personal -----------------------------------------------------------------------------
    def trending(
        self,
        online: Sequence[tuple[str, float]],
        k: int,
        mask: np.ndarray | None = None,
        prior_weight: float = 0.25,
    ) -> SourceHits:
        """Online trending (event-weighted counts of the latest hours) plus a share of the prior.

        Without a mask the answer is the same for every request that sees the same ``online``
        list (the service reuses one for a second): it is kept, with :meth:`trending_scores`.
        """
        if mask is not None or prior_weight != 0.25:
            return self._top("trending", self.trending_scores(online, prior_weight), k, mask)
        kept = self._trend_top
        if kept is not None and kept[0] is online and kept[1] == k:
            return kept[2]
        hits = self._top("trending", self.trending_scores(online), k, None)
        for arr in (hits.items, hits.scores):
            arr.flags.writeable = False  # shared by every request of the next second
        self._trend_top = (online, k, hits)
        return hits

    def trending_scores(
        self, online: Sequence[tuple[str, float]], prior_weight: float = 0.25
    ) -> np.ndarray:
        """(n_items,) trending score: ``prior_weight`` × prior + online counts scaled to [0, 1].

        Kept for the last ``online`` list seen (the service reuses one list for a second), so the
        requests in between do not map its item ids again. Read-only: never modify the answer.
        """
        cached_for, cached = self._online
        if cached_for is online and prior_weight == 0.25:
            return cached
        score = prior_weight * self.prior
        if online:
            idx = self.items.ids.to_index((i for i, _ in online), missing=-1)
            val = np.array([s for _, s in online], dtype=np.float64)
            ok = idx >= 0
            if ok.any() and val[ok].max() > 0:
                score = score.copy()
                np.add.at(score, idx[ok], val[ok] / val[ok].max())
        if prior_weight == 0.25:
            self._online = (online, score)
        return score

    def session(
        self, history: np.ndarray, online: Sequence[tuple[str, float]], k: int
    ) -> SourceHits:
        """Trending items of the leaf categories just browsed, the most recent category first.

        Needs no model, so a shopper gets session-based recommendations from the first click even
        when the bundle lacks every model. Evidence: the latest history item of the category.
        """
        if k <= 0 or not self.items.has_leaves:  # a catalogue without categories
            return SourceHits("session", EMPTY, EMPTY)
        if online is not self._session_for:  # another trending list: what was kept is stale
            self._session_for, self._session_gen = online, self._session_gen + 1
        gen = self._session_gen
        key = self.session_cache.key("session", k, history)
        kept = self.session_cache.get(key, lambda stamp: stamp == self._session_gen)
        if kept is not None:
            return kept
        hits = self._session(history, online, k)
        self.session_cache.put(key, hits, gen)  # stale at once if the list changed meanwhile
        return hits

    def _session(
        self, history: np.ndarray, online: Sequence[tuple[str, float]], k: int
    ) -> SourceHits:
        recent = history[-self.history_len :]
        leaves = self.items.leaf[recent]
        ok = leaves >= 0
        if not ok.any():
            return SourceHits("session", EMPTY, EMPTY)
        weight: dict[int, float] = {}
        last: dict[int, int] = {}
        for item, leaf, w in zip(
            recent[ok],
            leaves[ok],
            recency_weights(len(recent), self.recency_decay)[ok],
            strict=True,
        ):
            weight[int(leaf)] = weight.get(int(leaf), 0.0) + float(w)
            last[int(leaf)] = int(item)
        mask = np.isin(self.items.leaf, list(weight))
        mask[history] = False
        hits = self.trending(online, 4 * k, mask)
        leaf_of = self.items.leaf[hits.items]
        score = np.array([weight[int(c)] for c in leaf_of]) * (1.0 + hits.scores)
        order = np.lexsort((hits.items, -score))[:k]
        ev = np.array([last[int(c)] for c in leaf_of[order]], dtype=np.int64)
        return SourceHits("session", hits.items[order], score[order], ev)

    def popular(self, k: int, mask: np.ndarray | None = None) -> SourceHits:
        """The prior over the items ``mask`` allows: the fallback that never runs dry."""
        return self._top("popular", self.prior + 1e-9, k, mask)

    def new_arrivals(
        self,
        k: int,
        profile: np.ndarray | None = None,
        brand_affinity: Mapping[int, float] | None = None,
        category_affinity: Mapping[int, float] | None = None,
        mask: np.ndarray | None = None,
    ) -> SourceHits:
        """The newest items by recency and popularity; for a user also content, brand, category."""
        pool = self.new_pool
        if mask is not None:
            pool = pool[mask[pool]]
        if not len(pool) or k <= 0:
            return SourceHits("new_arrivals", EMPTY, EMPTY)
        created = self.items.created_at[pool]
        span = max(float(created.max() - created.min()), 1.0)
        score = 0.3 * (created - created.min()) / span + 0.2 * self.prior[pool]
        if profile is not None and self.text is not None:
            score += np.maximum(self.text[pool] @ profile, 0.0)
        if brand_affinity:
            score += 0.6 * _lookup(self.items.brand[pool], brand_affinity)
        if category_affinity:
            score += 0.4 * _lookup(self.items.leaf[pool], category_affinity)
        order = np.lexsort((pool, -score))[:k]
        return SourceHits("new_arrivals", pool[order], score[order])

    def _top(self, name: str, score: np.ndarray, k: int, mask: np.ndarray | None) -> SourceHits:
        score = np.where(mask, score, -np.inf) if mask is not None else score
        ids, sc = top_k_row(score.astype(np.float32), k)  # a copy: ``score`` stays as it was
        return SourceHits(name, ids, sc)


def _lookup(codes: np.ndarray, table: Mapping[int, float]) -> np.ndarray:
    return np.fromiter((table.get(int(c), 0.0) for c in codes), np.float64, len(codes))
