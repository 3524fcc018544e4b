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

This module is the model: its state, the online updates and compaction steps, scoring, saving.
The table arithmetic (building a table, adding to a delta, merging a delta into a table) is in
:mod:`shopflow.models.covisit_tables`.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from shopflow.features.sequences import InteractionData
from shopflow.models.base import ModelConfig, Recommender, history_matrix, top_k
from shopflow.models.covisit_tables import Delta, add_pairs, fold_delta, merge_delta, pair_table
from shopflow.models.popular import default_event_weights, event_weight_arrays


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
        self.table = pair_table(data.sequences, weights, times, n, cfg, self._col_factor)
        self.bought: sp.csr_matrix | None = None
        if data.event_types is not None:
            basket = {str(t) for t in cfg.basket_types}
            keep = [np.isin(np.asarray(t).astype(str), list(basket)) for t in data.event_types]
            self.bought = pair_table(
                [np.asarray(s)[k] for s, k in zip(data.sequences, keep, strict=True)],
                [w[k] for w, k in zip(weights, keep, strict=True)],
                None if times is None else [t[k] for t, k in zip(times, keep, strict=True)],
                n,
                cfg,
                self._col_factor,
            )
        self._delta: Delta = defaultdict(dict)
        self._delta_bought: Delta = defaultdict(dict)
        self._frozen: tuple[Delta, Delta] | None = None  # updates a compaction is folding in

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
        add_pairs(self._delta, hist, recent, new_item, weight, cfg)
        if types_before is not None and str(event_type) in cfg.basket_types:
            basket = cfg.basket_types  # a few types over a window of items: a plain loop is fastest
            is_basket = np.array([str(t) in basket for t in types_before], dtype=bool)
            add_pairs(self._delta_bought, hist[is_basket], recent[is_basket], new_item, weight, cfg)

    def compact(self) -> None:
        """Fold the online updates into the sparse tables (and prune them to ``neighbours``)."""
        self.compact_start()()()

    @property
    def compacting(self) -> bool:
        """True between :meth:`compact_start` and the end of its compaction."""
        return self._frozen is not None

    def compact_start(self) -> Callable[[], Callable[[], None]]:
        """A compaction in three steps, so that the slow one runs without the caller's lock.

        Under the lock that guards the model: ``build = compact_start()`` freezes the online
        updates so far (still scored; new ones go to fresh tables). Without it: ``finish =
        build()`` merges the frozen updates into new tables. Under it again: ``finish()`` puts
        them in place. ``compact()`` runs the three at once.
        """
        if self._frozen is not None:
            raise RuntimeError("a compaction is already running")
        self._frozen = (self._delta, self._delta_bought)
        self._delta, self._delta_bought = defaultdict(dict), defaultdict(dict)
        table, bought, (delta, delta_bought) = self.table, self.bought, self._frozen

        def build() -> Callable[[], None]:
            new_table = self._merge(table, delta)
            new_bought = bought
            if bought is not None or delta_bought:
                base = bought if bought is not None else sp.csr_matrix(table.shape)
                new_bought = self._merge(base, delta_bought)

            def finish() -> None:
                shape = self.table.shape  # grown meanwhile when a new item was learned
                for m in (new_table, new_bought):
                    if m is not None and m.shape != shape:
                        m.resize(shape)
                self.table, self.bought, self._frozen = new_table, new_bought, None

            return finish

        return build

    def compact_abort(self) -> None:
        """Give up a started compaction: its frozen updates go back to the online tables."""
        if self._frozen is None:
            return
        for frozen, current in zip(self._frozen, (self._delta, self._delta_bought), strict=True):
            fold_delta(current, frozen)
        self._frozen = None

    def _deltas(self, bought: bool = False) -> list[Delta]:
        """The online updates not in the tables yet (those a running compaction froze too)."""
        current = self._delta_bought if bought else self._delta
        if self._frozen is None:
            return [current]
        return [self._frozen[1] if bought else self._frozen[0], current]

    def _merge(self, table: sp.csr_matrix, delta: Delta) -> sp.csr_matrix:
        """``table`` plus ``delta``, rows over ``neighbours`` pruned (:func:`merge_delta`)."""
        return merge_delta(table, delta, self.config.neighbours, self._col_factor)

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
        table = self.bought if bought else self.table
        base = 0.0 if table is None else float(table[a, b])
        return base + sum(d.get(a, {}).get(b, 0.0) for d in self._deltas(bought))

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
        for delta in self._deltas():
            if not delta:
                continue
            hist = hist.tocsr()
            for b in range(hist.shape[0]):
                lo, hi = hist.indptr[b], hist.indptr[b + 1]
                for a, w in zip(hist.indices[lo:hi], hist.data[lo:hi], strict=True):
                    for item, v in delta.get(int(a), {}).items():
                        scores[b, item] += w * v
        scores *= self._col_factor()[None, :]
        if cfg.pop_tiebreak:
            scores += cfg.pop_tiebreak * (self.pop / max(self.pop.max(), 1e-12))[None, :]
        return scores

    def score_items(self, history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The items with co-visitation evidence for one history and their scores: the entries of
        ``score([history])[0]`` that pairs (not the tie-break alone) make, online updates included.

        The request path's version of :meth:`score`: it reads only the rows of the history's items
        (a few hundred entries) instead of scoring the catalogue. Items ascending; the history's
        own items are not removed.
        """
        from shopflow.retrieval.kernels import EMPTY_IDS, csr_rows, history_weights

        self._check()
        cfg, pop = self.config, self.pop
        rows, weight = history_weights(history, self.n_items, cfg.history_len, cfg.recency_decay)
        if not len(rows):
            return EMPTY_IDS, np.empty(0)
        weight = weight * np.where(pop[rows] > 0, pop[rows], 1.0) ** (-cfg.pop_beta)
        owner, cols, vals = csr_rows(self.table, rows)
        contrib = vals.astype(np.float64) * weight[owner]
        deltas = [d for d in self._deltas() if d]
        if deltas:
            extra = [
                (b, v * weight[j])
                for delta in deltas
                for j, a in enumerate(rows.tolist())
                for b, v in delta.get(a, {}).items()
            ]
            if extra:
                cols = np.concatenate([cols, np.array([b for b, _ in extra], dtype=np.int64)])
                contrib = np.concatenate([contrib, np.array([v for _, v in extra])])
        if not len(cols):
            return EMPTY_IDS, np.empty(0)
        total = np.bincount(cols, weights=contrib, minlength=self.n_items)  # dense: no sort
        items = np.flatnonzero(total > 0)
        total = total[items]
        p = pop[items]
        scores = total * np.where(p > 0, p, 1.0) ** (-cfg.pop_alpha)
        if cfg.pop_tiebreak:
            scores += cfg.pop_tiebreak * p / max(float(pop.max()), 1e-12)
        return items, scores

    def _row(self, table: sp.csr_matrix | None, deltas: list[Delta], item: int) -> np.ndarray:
        row = np.zeros(self.n_items, dtype=np.float64)
        if table is not None and item < table.shape[0]:
            lo, hi = table.indptr[item], table.indptr[item + 1]
            row[table.indices[lo:hi]] = table.data[lo:hi]
        for delta in deltas:
            for other, v in delta.get(item, {}).items():
                row[other] += v
        out = row * self._col_factor()
        out[row <= 0] = -np.inf  # no evidence: not similar
        return out

    def _similar(self, item: int) -> np.ndarray:
        return self._row(self.table, self._deltas(), item)

    def complementary(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items bought together with ``item`` (the viewed-together table without event types)."""
        self._check()
        if self.bought is None and not any(self._deltas(bought=True)):
            scores = self._row(self.table, self._deltas(), item)
        else:
            scores = self._row(self.bought, self._deltas(bought=True), item)
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
        self._frozen = None
