"""ItemKNN: similarities equal a dense reference cosine; pruning; scoring sums neighbour rows."""

from __future__ import annotations

import numpy as np

from shopflow.features.sequences import InteractionData
from shopflow.models.itemknn import ItemKNN
from shopflow.store.idmap import IdMap


def _data(seqs, n_items) -> InteractionData:
    return InteractionData(
        "toy",
        IdMap([f"u{i}" for i in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(n_items)]),
        [np.array(s, dtype=np.int64) for s in seqs],
    )


def _reference(seqs, n_items, shrink) -> np.ndarray:
    x = np.zeros((len(seqs), n_items))
    for u, s in enumerate(seqs):
        x[u, s] = 1.0  # binary: repeats count once
    norms = np.linalg.norm(x, axis=0)
    sim = (x.T @ x) / (np.outer(norms, norms) + shrink)
    np.fill_diagonal(sim, 0.0)
    return np.nan_to_num(sim)


def test_similarity_matches_dense_cosine() -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 12, size=int(rng.integers(1, 7))).tolist() for _ in range(30)]
    for shrink in (0.0, 5.0):
        model = ItemKNN(shrink=shrink, neighbours=100).fit(_data(seqs, 12))
        np.testing.assert_allclose(model.sim.toarray(), _reference(seqs, 12, shrink), rtol=1e-5)


def test_hand_computed_cosine_and_scoring() -> None:
    # users: {0,1}, {0,1,2}, {2,3}: cos(0,1) = 2/(√2·√2) = 1, cos(0,2) = 1/(√2·√2) = 0.5,
    # cos(2,3) = 1/(√2·1) ≈ 0.707, cos(1,2) = 0.5, cos(0,3) = 0.
    model = ItemKNN(shrink=0.0, recency_decay=0.5).fit(_data([[0, 1], [0, 1, 2], [2, 3]], 4))
    np.testing.assert_allclose(model.sim[0].toarray()[0], [0, 1, 0.5, 0], rtol=1e-6)
    # History [3, 2]: row 2 + 0.5 · row 3.
    expected = np.array([0.5, 0.5, 0, 2**-0.5]) + 0.5 * np.array([0, 0, 2**-0.5, 0])
    np.testing.assert_allclose(model.score([np.array([3, 2])])[0], expected, rtol=1e-6)


def test_neighbours_pruned_per_item() -> None:
    rng = np.random.default_rng(2)
    seqs = [rng.integers(0, 20, size=6).tolist() for _ in range(50)]
    model = ItemKNN(neighbours=3, shrink=0.0).fit(_data(seqs, 20))
    dense = _reference(seqs, 20, 0.0)
    for item in range(20):
        row = model.sim[item].toarray()[0]
        assert (row > 0).sum() <= 3
        kept = np.flatnonzero(row)
        assert row[kept].min() >= np.sort(dense[item])[-3] - 1e-6
