"""Item-based k-nearest neighbours: cosine similarity of items over the users who touched them.

Sarwar et al., "Item-based collaborative filtering recommendation algorithms" (WWW 2001). With the
binary user–item matrix ``X`` (users × items), ``sim(i, j) = X[:, i]·X[:, j] / (|X[:, i]| |X[:, j]|
+ shrink)``; each item keeps its ``neighbours`` most similar items (sparse). A history is scored by
summing the neighbour rows of its items (optionally weighted towards recent items).

Example
-------
>>> import numpy as np
>>> from shopflow.features.sequences import InteractionData
>>> from shopflow.store.idmap import IdMap
>>> data = InteractionData("toy", IdMap(["u", "v", "w"]), IdMap(list("abcd")),
...                        [np.array([0, 1]), np.array([0, 1, 2]), np.array([3])])
>>> ItemKNN().fit(data).similar_items(0, k=2)[0].tolist()
[1, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from shopflow.features.sequences import InteractionData
from shopflow.models.base import ModelConfig, Recommender, history_matrix, prune_rows


@dataclass
class ItemKNNConfig(ModelConfig):
    """Settings of :class:`ItemKNN`; defaults tuned on Beauty validation targets."""

    neighbours: int = 300  # most similar items kept per item
    shrink: float = 50.0  # added to the cosine denominator: damps pairs seen by few users
    history_len: int = 50  # most recent history items that are scored
    recency_decay: float = 0.55  # history item d steps from the end weighs recency_decay ** d


class ItemKNN(Recommender):
    """Cosine item–item similarity on the binary user–item matrix."""

    name = "itemknn"
    config_cls = ItemKNNConfig
    config: ItemKNNConfig

    def _fit(self, data: InteractionData) -> None:
        x = history_matrix(data.sequences, data.n_items, binary=True)  # (users, items)
        x = sp.csc_matrix(x)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=0)).ravel())  # (items,)
        sim = sp.csr_matrix(x.T @ x, dtype=np.float64)  # (items, items) co-occurrence counts
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
        sim.data = sim.data / (norms[rows] * norms[sim.indices] + self.config.shrink)
        self.sim = prune_rows(sim, self.config.neighbours).astype(np.float32)

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        cfg = self.config
        hist = history_matrix(histories, self.n_items, cfg.history_len, cfg.recency_decay)
        return (hist @ self.sim).toarray()  # (B, n_items)

    def _similar(self, item: int) -> np.ndarray:
        row = np.full(self.n_items, -np.inf, dtype=np.float32)
        lo, hi = self.sim.indptr[item], self.sim.indptr[item + 1]
        row[self.sim.indices[lo:hi]] = self.sim.data[lo:hi]
        return row

    def _save_state(self, path: Path) -> None:
        sp.save_npz(path / "sim.npz", self.sim)

    def _load_state(self, path: Path) -> None:
        self.sim = sp.csr_matrix(sp.load_npz(path / "sim.npz"))
