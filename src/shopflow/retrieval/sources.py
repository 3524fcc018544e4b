"""Candidate sources: each turns a user's history, an anchor item or a query into scored items.

:class:`SourceSet` is built once per model bundle from the fitted models it holds (any subset of
``sasrec``, ``covisit``, ``als``, ``trending`` / ``pop``) and the item text vectors, and answers, in
dense item indices, with :class:`~shopflow.retrieval.merge.SourceHits`:

- ``sequential``: the SASRec user state after the history, then nearest item vectors (ANN);
- ``covisit``: co-visitation neighbours of the recent history items (summed, recency-weighted),
  and of one item (viewed together), and ``bought_together`` for complements; updated online;
- ``als``: the matrix-factorisation fold-in of the history;
- ``content``: nearest text vectors to the history profile or to one item;
- ``trending``, ``session``, ``popular``, ``new_arrivals``: the model-free sources, inherited from
  :class:`~shopflow.retrieval.catalogue.CatalogueSources`.

Each history-based source names, for every item, the history item that led to it (``evidence``).
Missing models simply yield no hits; nothing here raises for a model the bundle lacks. The item
table may hold more items than the models (items upserted since training, ``serving.fresh``): a
model ignores the items it does not know and never proposes them; text vectors cover every item.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from shopflow.models.base import Recommender, top_k
from shopflow.retrieval.cache import CandidateCache, RowVersions
from shopflow.retrieval.catalogue import CatalogueSources
from shopflow.retrieval.index import ExactIndex, ItemIndex
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.kernels import csr_rows, history_weights, top_k_row
from shopflow.retrieval.merge import SourceHits, aggregate
from shopflow.retrieval.seq_encoder import NumpyEncoder, numpy_encoder
from shopflow.retrieval.vectors import (
    EMPTY,
    known,
    make_index,
    nearest_history,
    normalised,
    recency_weights,
)

log = logging.getLogger(__name__)

COMPACT_EVERY = 20_000  # online co-visitation updates between two compactions of the tables


class SourceSet(CatalogueSources):
    """The candidate sources of one bundle (see the module docstring).

    Parameters
    ----------
    items
        The item table of the bundle (dense indices of every source refer to it).
    models
        Fitted models by registry name; unknown names are ignored.
    item_vectors
        Unit text embeddings (n_items, E) for content similarity and search, or None.
    history_len
        Most recent history items the item-to-item sources expand.
    base
        The source set of the same models over an older table (items upserted since): what was
        computed from the models (item vectors, the numpy encoder, YᵀY), the co-visitation
        lock and the candidate cache are taken over instead of computed again.
    cache
        Keeps the history-based sources' answers for the same history (default: none kept).
    """

    # set in __init__, some only when the bundle has the model (or taken over from ``base``)
    lock: Any
    _updates: int
    cache: CandidateCache
    versions: RowVersions
    seq_unit: np.ndarray
    als_gram: np.ndarray
    als_base: np.ndarray
    als_factors: np.ndarray
    als_unit: np.ndarray

    def __init__(
        self,
        items: ItemTable,
        models: Mapping[str, Recommender],
        item_vectors: np.ndarray | None = None,
        history_len: int = 8,
        recency_decay: float = 0.7,
        new_days: float = 30.0,
        base: SourceSet | None = None,
        cache: CandidateCache | None = None,
    ) -> None:
        self.items = items
        self.n = len(items)
        self.history_len = history_len
        self.recency_decay = recency_decay
        found: dict[str, Any] = dict(models)
        self.covisit: Any = found.get("covisit")
        self.als: Any = found.get("als")
        self.sasrec: Any = found.get("sasrec")
        self.names = sorted(models)
        same = base is not None and all(
            getattr(base, name) is found.get(name) for name in ("covisit", "als", "sasrec")
        )
        # guards the co-visitation model (updated online); one lock per model, whichever set
        same_covisit = base is not None and base.covisit is found.get("covisit")
        self.lock = base.lock if same_covisit and base is not None else threading.RLock()
        self._updates = base._updates if same_covisit and base is not None else 0
        # which co-visitation rows online events changed since a cached answer read them
        self.versions = (
            base.versions
            if same_covisit and base is not None
            else RowVersions(getattr(found.get("covisit"), "n_items", 0))
        )
        # a history's candidates, kept for its next request (``retrieval.cache``)
        if same and base is not None:
            self.cache = base.cache
        else:
            self.cache = cache if cache is not None else CandidateCache(size=0)
        self.seq_vectors: np.ndarray | None = None
        self.seq_index: ItemIndex | None = None
        self.seq_encoder: NumpyEncoder | None = None  # one history's state without torch
        if self.sasrec is not None and 0 < getattr(self.sasrec, "n_items", 0) <= self.n:
            if same and base is not None and base.seq_vectors is not None:
                self.seq_vectors, self.seq_index = base.seq_vectors, base.seq_index
                self.seq_unit, self.seq_encoder = base.seq_unit, base.seq_encoder
            else:
                vectors = self.sasrec.item_vectors()
                self.seq_vectors = np.ascontiguousarray(vectors, dtype=np.float32)
                self.seq_index = make_index(self.seq_vectors)
                self.seq_unit = normalised(self.seq_vectors)
                if getattr(self.sasrec, "net", None) is not None:
                    self.seq_encoder = numpy_encoder(self.sasrec.net)
        else:
            self.sasrec = None
        if self.als is not None and 0 < getattr(self.als, "n_items", 0) <= self.n:
            if base is not None and base.als is self.als:
                self.als_gram, self.als_base = base.als_gram, base.als_base
                self.als_factors, self.als_unit = base.als_factors, base.als_unit
            else:
                y = np.asarray(self.als.item_factors, dtype=np.float64)
                self.als_gram = y.T @ y  # YᵀY, once per bundle
                self.als_base = self.als_gram + self.als.config.regularization * np.eye(y.shape[1])
                self.als_factors = np.ascontiguousarray(y, dtype=np.float32)
                self.als_unit = normalised(self.als_factors)
        else:
            self.als = None
        if self.covisit is not None and getattr(self.covisit, "n_items", 0) > self.n:
            self.covisit = None
        self.text: np.ndarray | None = None
        self.text_index: ItemIndex | None = None
        if item_vectors is not None and len(item_vectors) == self.n:
            self.text = normalised(np.asarray(item_vectors, dtype=np.float32))
            self.text_index = make_index(self.text)
        self.prior = self._prior(models)
        self.new_pool = self._new_pool(new_days)
        self._online: tuple[Sequence[tuple[str, float]] | None, np.ndarray] = (None, self.prior)
        self._trend_top: tuple[Sequence[tuple[str, float]], int, SourceHits] | None = None
        # the lists that read this set's own item data (text vectors, categories): kept per set,
        # so an edited catalogue (a new set) starts them afresh; session lists also read the
        # trending list, so they are kept only while it is the same one (``_session_gen``)
        self.content_cache = CandidateCache(self.cache.size)
        self.session_cache = CandidateCache(self.cache.size)
        self._session_for: Sequence[tuple[str, float]] | None = None
        self._session_gen = 0

    def available(self) -> list[str]:
        """The sources this bundle can feed (the others answer with no hits)."""
        have = {
            "sequential": self.sasrec is not None,
            "covisit": self.covisit is not None,
            "bought_together": self.covisit is not None,
            "als": self.als is not None,
            "content": self.text is not None,
            "trending": True,
            "new_arrivals": len(self.new_pool) > 0,
            "popular": True,
        }
        return [name for name, ok in have.items() if ok]

    # -- built once -------------------------------------------------------------------------------
    # -- history-based ----------------------------------------------------------------------------
    def sequential(self, history: np.ndarray, k: int) -> SourceHits:
        """SASRec: one forward pass for the user state, then the nearest item vectors (unseen)."""
        history = known(history, self.seq_vectors)
        if self.sasrec is None or self.seq_index is None or not len(history) or k <= 0:
            return SourceHits("sequential", EMPTY, EMPTY)
        key = self.cache.key("sequential", k, history)
        kept = self.cache.get(key)
        if kept is not None:
            return kept
        if self.seq_encoder is not None:
            state = self.seq_encoder.encode(history)  # (D,)
        else:
            import torch

            with torch.inference_mode():
                state = self.sasrec.encode([history])[0]  # (D,)
        if isinstance(self.seq_index, ExactIndex) and self.seq_vectors is not None:
            items, scores = top_k_row(self.seq_vectors @ state, k, history)  # (N,) → (≤k,)
        else:
            ids, sc = self.seq_index.search(state[None, :], k, exclude=[history])
            items, scores = ids[0], sc[0]
        recent = history[-self.history_len :]
        hits = SourceHits(
            "sequential", items, scores, self.history_evidence(self.seq_unit, items, recent)
        )
        self.cache.put(key, hits)
        return hits

    def covisit_history(self, history: np.ndarray, k: int) -> SourceHits:
        """Co-visitation scores of the history (the model's own recency and popularity weighting,
        online updates included); evidence: the recent item with the strongest pair."""
        if self.covisit is None or k <= 0:
            return SourceHits("covisit", EMPTY, EMPTY)
        with self.lock:
            if len(history) and history.max() >= self.covisit.n_items:  # items newer than it
                history = history[history < self.covisit.n_items]
            if not len(history):
                return SourceHits("covisit", EMPTY, EMPTY)
            key = self.cache.key("covisit", k, history)
            # others' events change pairs too: kept only while the history's rows are unchanged
            kept = self.cache.get(key, lambda stamp: self.versions.unchanged(history, stamp))
            if kept is not None:
                return kept
            stamp = self.versions.stamp()  # under the lock: no update between this and the read
            recent = history[-self.history_len :]
            cand, sc = self.covisit.score_items(history)  # the items with pairs, ascending
            # items with no co-visitation evidence carry only the popularity tie-break: drop them
            seen = np.zeros(self.covisit.n_items, dtype=bool)
            seen[history] = True
            real = (sc > 1.0001 * self.covisit.config.pop_tiebreak) & ~seen[cand]
            best, sc = top_k_row(sc[real], k)
            items = cand[real][best]
            owner, cols, vals = csr_rows(self.covisit.table, recent)  # the pairs of the recent
        hits = SourceHits("covisit", items, sc, strongest_pair(recent, items, owner, cols, vals))
        self.cache.put(key, hits, stamp)
        return hits

    def als_history(self, history: np.ndarray, k: int) -> SourceHits:
        """ALS: the history folded into a user vector; seen items excluded."""
        history = known(history, self.als_factors if self.als is not None else None)
        if self.als is None or not len(history) or k <= 0:
            return SourceHits("als", EMPTY, EMPTY)
        key = self.cache.key("als", k, history)
        kept = self.cache.get(key)
        if kept is not None:
            return kept
        items, sc = top_k_row(self.als_scores(history), k, history)
        recent = history[-self.history_len :]
        hits = SourceHits("als", items, sc, self.history_evidence(self.als_unit, items, recent))
        self.cache.put(key, hits)
        return hits

    def als_scores(self, history: np.ndarray) -> np.ndarray:
        """ALS scores of every item for ``history``: the model's least-squares fold-in, solved here.

        Same equations as implicit's ``recalculate_user`` (Hu et al. 2008, eq. 4, with the model's
        history weighting): ``(YᵀY + λI + Σ (c_i − 1) y_i y_iᵀ) x = Σ c_i y_i``, ``c_i = α w_i``;
        but YᵀY is computed once per bundle and the solve is a small dense one, so one user costs
        well under a millisecond instead of a pass over every item factor inside an OpenMP loop.
        """
        cfg = self.als.config
        history = known(history, self.als_factors)
        n = len(self.als_factors)
        items, weight = history_weights(history, n, cfg.history_len, cfg.recency_decay)
        y = self.als_factors[items].astype(np.float64)  # (h, f)
        conf = cfg.alpha * weight.astype(np.float32).astype(np.float64)  # (h,)
        a = self.als_base + (y * (np.abs(conf) - 1.0)[:, None]).T @ y
        b = (y * np.where(conf > 0, conf, 0.0)[:, None]).sum(axis=0)
        return self.als_factors @ np.linalg.solve(a, b).astype(np.float32)  # (n,)

    def profile(self, history: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray | None:
        """Unit text profile of the recent history (recency- and ``weights``-weighted), or None."""
        if self.text is None or not len(history):
            return None
        recent = history[-self.history_len :]
        w = recency_weights(len(recent), self.recency_decay)
        if weights is not None:
            w = w * np.asarray(weights[-self.history_len :], dtype=np.float64)
        vec = (w[:, None] * self.text[recent]).sum(axis=0)
        norm = float(np.linalg.norm(vec))
        return (vec / norm).astype(np.float32) if norm > 0 else None

    def content_history(
        self, history: np.ndarray, k: int, weights: np.ndarray | None = None
    ) -> SourceHits:
        """Items whose text is nearest to the history profile; seen excluded."""
        if self.text is None or self.text_index is None or not len(history) or k <= 0:
            return SourceHits("content", EMPTY, EMPTY)
        key = self.content_cache.key("content", k, history, weights)
        kept = self.content_cache.get(key)
        if kept is not None:
            return kept
        prof = self.profile(history, weights)
        if prof is None:
            return SourceHits("content", EMPTY, EMPTY)
        ids, scores = self.text_index.search(prof[None, :], k, exclude=[history])
        items = ids[0]
        recent = history[-self.history_len :]
        hits = SourceHits(
            "content", items, scores[0], self.history_evidence(self.text, items, recent)
        )
        self.content_cache.put(key, hits)
        return hits

    def history_evidence(
        self, unit: np.ndarray | None, items: np.ndarray, recent: np.ndarray
    ) -> np.ndarray:
        """For each of ``items``, the ``recent`` item nearest in ``unit`` vectors (or -1)."""
        if unit is None:
            return np.full(len(items), -1, dtype=np.int64)
        ok = (items >= 0) & (items < len(unit))
        out = np.full(len(items), -1, dtype=np.int64)
        out[ok] = nearest_history(unit, items[ok], known(recent, unit))
        return out

    # -- item-to-item -----------------------------------------------------------------------------
    def similar(self, item: int, k: int) -> list[SourceHits]:
        """Items like ``item``: viewed together, nearest text, nearest model vectors."""
        out = []
        if self.covisit is not None and item < self.covisit.n_items:
            with self.lock:
                ids, sc = self.covisit.similar_items(item, k)
            out.append(SourceHits("covisit", ids, sc, np.full(len(ids), item)))
        for name, unit in (("content", self.text), ("sequential", getattr(self, "seq_unit", None))):
            if unit is not None and item < len(unit):
                sims = unit @ unit[item]  # (n,)
                sims[item] = -np.inf
                ids, sc = top_k(sims[None, :].astype(np.float32), k)
                out.append(SourceHits(name, ids[0], sc[0], np.full(k, item)[: ids.shape[1]]))
        if self.als is not None and item < len(self.als_factors):
            ids, sc = self.als.similar_items(item, k)
            out.append(SourceHits("als", ids, sc, np.full(len(ids), item)))
        return out

    def bought_together(self, anchors: Sequence[int], k: int) -> SourceHits:
        """Items bought together with the ``anchors`` (summed over them); evidence: the anchor."""
        if self.covisit is None or k <= 0 or not len(anchors):
            return SourceHits("bought_together", EMPTY, EMPTY)
        parts, scores = [], []
        with self.lock:
            for a in anchors:
                if int(a) >= self.covisit.n_items:
                    parts.append(EMPTY)
                    scores.append(np.empty(0))
                    continue
                ids, sc = self.covisit.complementary(int(a), k)
                ok = ids >= 0
                parts.append(ids[ok])
                scores.append(sc[ok])
        items, total, ev = aggregate(parts, scores, [int(a) for a in anchors])
        keep = ~np.isin(items, np.asarray(anchors, dtype=np.int64))
        return SourceHits("bought_together", items[keep][:k], total[keep][:k], ev[keep][:k])

    def viewed_together_elsewhere(self, anchors: Sequence[int], k: int) -> SourceHits:
        """Co-visited items of *other* leaf categories than the anchors (complements, not twins)."""
        hist = np.asarray(anchors, dtype=np.int64)
        hits = self.covisit_history(hist, 4 * k)
        other = ~np.isin(self.items.leaf[hits.items], self.items.leaf[hist])
        ev = hits.evidence[other][:k] if hits.evidence is not None else None
        return SourceHits("viewed_together", hits.items[other][:k], hits.scores[other][:k], ev)

    # -- online learning --------------------------------------------------------------------------
    def learn(
        self, history_before: np.ndarray, types_before: np.ndarray, item: int, event_type: str
    ) -> None:
        """Add one event to the co-visitation tables (its pairs with the user's earlier items)."""
        if self.covisit is None or not 0 <= item < self.n:
            return
        with self.lock:
            self.covisit.update(history_before, item, event_type, types_before=types_before)
            self.versions.touch(np.append(np.asarray(history_before, dtype=np.int64), item))
            self._updates += 1
            if self._updates >= COMPACT_EVERY and not self.covisit.compacting:
                self._updates = 0  # fold the online pairs into the sparse tables, in a thread
                build = self.covisit.compact_start()
                threading.Thread(
                    target=self._compact, args=(build,), name="shopflow-compact", daemon=True
                ).start()

    def _compact(self, build: Any) -> None:
        """The slow part of a compaction without the lock (requests and events go on), then the
        swap with it (``CoVisitation.compact_start``)."""
        try:
            finish = build()
            with self.lock:
                finish()
        except Exception:
            log.exception("co-visitation compaction failed; the updates stay online")
            with self.lock:
                self.covisit.compact_abort()


def strongest_pair(
    recent: np.ndarray, items: np.ndarray, owner: np.ndarray, cols: np.ndarray, vals: np.ndarray
) -> np.ndarray:
    """For each of ``items``, the ``recent`` item with the largest pair weight (the earliest on a
    tie), or ``recent[-1]`` without any pair. ``owner, cols, vals`` are the pairs of the recent
    items (:func:`~shopflow.retrieval.kernels.csr_rows` of their rows)."""
    out = np.full(len(items), recent[-1] if len(recent) else -1, dtype=np.int64)
    if not len(items) or not len(cols):
        return out
    row = np.full(max(int(cols.max()), int(items.max())) + 1, -1, dtype=np.int64)
    row[items] = np.arange(len(items))  # position of each item in ``items``
    hit = (row[cols] >= 0) & (vals > 0)
    if not hit.any():
        return out
    owner, cols, vals = owner[hit], cols[hit], vals[hit]
    order = np.lexsort((owner, -vals, cols))  # per item: the largest weight, then earliest row
    first = order[np.r_[True, cols[order][1:] != cols[order][:-1]]]
    out[row[cols[first]]] = recent[owner[first]]
    return out
