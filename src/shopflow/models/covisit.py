"""Co-visitation: items that follow or accompany each other in users' sequences (item-to-item).

For every pair of events of one user at most ``window`` positions apart (and, when timestamps exist,
at most ``time_window_seconds`` apart), item ``a`` then item ``b`` at gap ``g`` adds

    w = event_weight(type of b) * gap_decay ** (g - 1)

to ``C[a, b]`` times ``forward_weight`` and to ``C[b, a]`` times ``backward_weight``: following is
stronger than preceding, near is stronger than far, a purchase says more than a view. Raw weights
are kept; the score of ``a → b`` divides by ``pop[b] ** pop_alpha`` (so that best-sellers do not
follow everything) and by ``pop[a] ** pop_beta`` when rows of several history items are summed.
Each item keeps its ``neighbours`` best partners (a ``scipy.sparse`` CSR matrix).

A history is scored by summing the rows of its last ``history_len`` items, the item ``d`` steps from
the end weighted ``recency_decay ** d``; a tiny popularity term breaks ties.

With event types, a second "bought together" table is built from the ``basket_types`` events only;
:meth:`CoVisitation.complementary` reads it, :meth:`~Recommender.similar_items` reads the main
("viewed together") table. :meth:`CoVisitation.update` adds one new event online in O(window).

Example
-------
>>> import numpy as np
>>> from shopflow.features.sequences import InteractionData
>>> from shopflow.store.idmap import IdMap
>>> data = InteractionData("toy", IdMap(["u", "v"]), IdMap(list("abcd")),
...                        [np.array([0, 1, 2]), np.array([0, 1, 3])])
>>> model = CoVisitation(pop_alpha=0.0).fit(data)
>>> model.recommend([np.array([0])], k=2)[0].tolist()
[[1, 2]]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from shopflow.features.sequences import InteractionData
from shopflow.models.base import ModelConfig, Recommender, history_matrix, prune_rows, top_k
from shopflow.models.popular import default_event_weights, event_weight_arrays

Delta = dict[int, dict[int, float]]


@dataclass
class CoVisitationConfig(ModelConfig):
    """Settings of :class:`CoVisitation`; defaults tuned on Beauty validation targets."""

    window: int = 10  # pairs at most this many positions apart
    time_window_seconds: float | None = None  # and at most this far apart in time (when known)
    forward_weight: float = 1.0  # a then b: weight added to a → b
    backward_weight: float = 0.25  # a then b: weight added to b → a
    gap_decay: float = 0.8  # a pair g positions apart weighs gap_decay ** (g - 1)
    event_weights: dict[str, float] | None = field(default_factory=default_event_weights)
    pop_alpha: float = 0.1  # score a → b divided by pop[b] ** pop_alpha
    pop_beta: float = 0.4  # row of history item a divided by pop[a] ** pop_beta
    neighbours: int = 200  # best partners kept per item
    history_len: int = 20  # most recent history items that are scored
    recency_decay: float = 0.6  # history item d steps from the end weighs recency_decay ** d
    pop_tiebreak: float = 1e-6  # + pop_tiebreak * pop / max(pop): orders items without evidence
    basket_types: list[str] = field(default_factory=lambda: ["purchase"])  # "bought together"


class CoVisitation(Recommender):
    """Item-to-item co-visitation with direction, gap, event-type and popularity weighting."""

    name = "covisit"
    config_cls = CoVisitationConfig
    config: CoVisitationConfig

    # -- fitting ----------------------------------------------------------------------------------
    def _fit(self, data: InteractionData) -> None:
        cfg = self.config
        n = data.n_items
        weights = event_weight_arrays(data, cfg.event_weights)
        self.pop = np.zeros(n, dtype=np.float64)
        for seq, w in zip(data.sequences, weights, strict=True):
            np.add.at(self.pop, np.asarray(seq, dtype=np.int64), w)
        times = data.timestamps
        self.table = self._pairs(data.sequences, weights, times, n)
        self.bought: sp.csr_matrix | None = None
        if data.event_types is not None:
            basket = {str(t) for t in cfg.basket_types}
            keep = [np.isin(np.asarray(t).astype(str), list(basket)) for t in data.event_types]
            self.bought = self._pairs(
                [np.asarray(s)[k] for s, k in zip(data.sequences, keep, strict=True)],
                [w[k] for w, k in zip(weights, keep, strict=True)],
                None if times is None else [t[k] for t, k in zip(times, keep, strict=True)],
                n,
            )
        self._delta: Delta = defaultdict(dict)
        self._delta_bought: Delta = defaultdict(dict)

    def _pairs(
        self,
        sequences: Sequence[np.ndarray],
        weights: Sequence[np.ndarray],
        times: Sequence[np.ndarray] | None,
        n: int,
    ) -> sp.csr_matrix:
        """The pruned co-visitation matrix of ``sequences`` (rows: earlier or later item)."""
        cfg = self.config
        lens = np.array([len(s) for s in sequences], dtype=np.int64)
        if lens.sum() == 0:
            return sp.csr_matrix((n, n), dtype=np.float32)
        flat = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
        ew = np.concatenate(list(weights))
        user = np.repeat(np.arange(len(lens)), lens)
        ts = None if times is None else np.concatenate([np.asarray(t, float) for t in times])
        rows, cols, vals = [], [], []
        for g in range(1, cfg.window + 1):
            if g >= len(flat):
                break
            a, b = flat[:-g], flat[g:]
            ok = (user[:-g] == user[g:]) & (a != b)
            if ts is not None and cfg.time_window_seconds is not None:
                ok &= np.abs(ts[g:] - ts[:-g]) <= cfg.time_window_seconds
            w = ew[g:][ok] * cfg.gap_decay ** (g - 1)
            rows += [a[ok], b[ok]]
            cols += [b[ok], a[ok]]
            vals += [cfg.forward_weight * w, cfg.backward_weight * w]
        if not rows:
            return sp.csr_matrix((n, n), dtype=np.float32)
        mat = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)
        )
        mat.sum_duplicates()
        mat.eliminate_zeros()
        key = mat.data * self._col_factor()[mat.indices]
        return prune_rows(mat, cfg.neighbours, key).astype(np.float32)

    # -- online -----------------------------------------------------------------------------------
    def update(
        self,
        history_before: np.ndarray,
        new_item: int,
        event_type: str = "view",
        *,
        types_before: np.ndarray | None = None,
        times_before: np.ndarray | None = None,
        now: float | None = None,
    ) -> None:
        """Add one new event of a user whose earlier items are ``history_before`` (oldest first).

        Adds the pairs of ``new_item`` with the last ``window`` items exactly as :meth:`fit` would
        have, in O(window). With ``types_before`` (event types aligned with the history) a
        basket-type event also updates the bought-together table; with ``times_before`` and ``now``
        the time window applies. An item id beyond the catalogue grows the model. Call
        :meth:`compact` now and then to fold the updates into the sparse tables.
        """
        self._check()
        cfg = self.config
        new_item = int(new_item)
        hist = np.asarray(history_before, dtype=np.int64)
        self._grow(max(new_item, int(hist.max(initial=-1))) + 1)
        weight = 1.0 if cfg.event_weights is None else cfg.event_weights.get(str(event_type), 1.0)
        self.pop[new_item] += weight
        recent = np.ones(len(hist), dtype=bool)
        if times_before is not None and now is not None and cfg.time_window_seconds is not None:
            recent = np.abs(now - np.asarray(times_before, float)) <= cfg.time_window_seconds
        self._add_pairs(self._delta, hist, recent, new_item, weight)
        if types_before is not None and str(event_type) in {str(t) for t in cfg.basket_types}:
            is_basket = np.isin(np.asarray(types_before).astype(str), list(cfg.basket_types))
            self._add_pairs(
                self._delta_bought, hist[is_basket], recent[is_basket], new_item, weight
            )

    def _add_pairs(
        self, delta: Delta, hist: np.ndarray, recent: np.ndarray, new_item: int, weight: float
    ) -> None:
        cfg = self.config
        start = max(0, len(hist) - cfg.window)
        for pos in range(start, len(hist)):
            a = int(hist[pos])
            if a == new_item or not recent[pos]:
                continue
            w = weight * cfg.gap_decay ** (len(hist) - pos - 1)
            delta[a][new_item] = delta[a].get(new_item, 0.0) + cfg.forward_weight * w
            delta[new_item][a] = delta[new_item].get(a, 0.0) + cfg.backward_weight * w

    def compact(self) -> None:
        """Fold the online updates into the sparse tables (and prune them to ``neighbours``)."""
        self.table = self._merge(self.table, self._delta)
        self._delta = defaultdict(dict)
        if self.bought is not None or self._delta_bought:
            base = self.bought if self.bought is not None else sp.csr_matrix(self.table.shape)
            self.bought = self._merge(base, self._delta_bought)
        self._delta_bought = defaultdict(dict)

    def _merge(self, table: sp.csr_matrix, delta: Delta) -> sp.csr_matrix:
        if not delta:
            return table
        coo = table.tocoo()
        rows = [coo.row, np.array([a for a, r in delta.items() for _ in r], dtype=np.int64)]
        cols = [coo.col, np.array([b for r in delta.values() for b in r], dtype=np.int64)]
        vals = [coo.data, np.array([v for r in delta.values() for v in r.values()], np.float32)]
        mat = sp.csr_matrix(
            (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=table.shape
        )
        mat.sum_duplicates()
        key = mat.data * self._col_factor()[mat.indices]
        return prune_rows(mat, self.config.neighbours, key).astype(np.float32)

    def _grow(self, n: int) -> None:
        if n <= self.n_items:
            return
        self.pop = np.concatenate([self.pop, np.zeros(n - self.n_items)])
        self.table = sp.csr_matrix(self.table, copy=True)
        self.table.resize((n, n))
        if self.bought is not None:
            self.bought = sp.csr_matrix(self.bought, copy=True)
            self.bought.resize((n, n))
        self.n_items = n

    def pair_weight(self, a: int, b: int, bought: bool = False) -> float:
        """Raw co-visitation weight of ``a → b`` (before popularity normalisation)."""
        self._check()
        table, delta = (self.bought, self._delta_bought) if bought else (self.table, self._delta)
        base = 0.0 if table is None else float(table[a, b])
        return base + delta.get(a, {}).get(b, 0.0)

    # -- scoring ----------------------------------------------------------------------------------
    def _col_factor(self) -> np.ndarray:
        pop = np.where(self.pop > 0, self.pop, 1.0)
        return pop ** (-self.config.pop_alpha)

    def _row_factor(self) -> np.ndarray:
        pop = np.where(self.pop > 0, self.pop, 1.0)
        return pop ** (-self.config.pop_beta)

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        cfg = self.config
        hist = history_matrix(histories, self.n_items, cfg.history_len, cfg.recency_decay)
        hist = hist @ sp.diags(self._row_factor().astype(np.float32))
        scores = (hist @ self.table).toarray()  # (B, n_items)
        if self._delta:
            hist = hist.tocsr()
            for b in range(hist.shape[0]):
                lo, hi = hist.indptr[b], hist.indptr[b + 1]
                for a, w in zip(hist.indices[lo:hi], hist.data[lo:hi], strict=True):
                    for item, v in self._delta.get(int(a), {}).items():
                        scores[b, item] += w * v
        scores *= self._col_factor()[None, :]
        if cfg.pop_tiebreak:
            scores += cfg.pop_tiebreak * (self.pop / max(self.pop.max(), 1e-12))[None, :]
        return scores

    def _row(self, table: sp.csr_matrix | None, delta: Delta, item: int) -> np.ndarray:
        row = np.zeros(self.n_items, dtype=np.float64)
        if table is not None and item < table.shape[0]:
            lo, hi = table.indptr[item], table.indptr[item + 1]
            row[table.indices[lo:hi]] = table.data[lo:hi]
        for other, v in delta.get(item, {}).items():
            row[other] += v
        out = row * self._col_factor()
        out[row <= 0] = -np.inf  # no evidence: not similar
        return out

    def _similar(self, item: int) -> np.ndarray:
        return self._row(self.table, self._delta, item)

    def complementary(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items bought together with ``item`` (the viewed-together table without event types)."""
        self._check()
        if self.bought is None and not self._delta_bought:
            scores = self._row(self.table, self._delta, item)
        else:
            scores = self._row(self.bought, self._delta_bought, item)
        scores[item] = -np.inf
        ids, sc = top_k(scores[None, :].astype(np.float32), k)
        return ids[0], sc[0]

    # -- persistence ------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        self.compact()
        sp.save_npz(path / "covisit.npz", self.table)
        if self.bought is not None:
            sp.save_npz(path / "bought.npz", self.bought)
        np.save(path / "pop.npy", self.pop)

    def _load_state(self, path: Path) -> None:
        self.table = sp.csr_matrix(sp.load_npz(path / "covisit.npz"))
        bought = path / "bought.npz"
        self.bought = sp.csr_matrix(sp.load_npz(bought)) if bought.exists() else None
        self.pop = np.load(path / "pop.npy")
        self._delta = defaultdict(dict)
        self._delta_bought = defaultdict(dict)
