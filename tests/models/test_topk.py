"""top_k: best first, ties by lower index whatever k is, masked items never returned."""

from __future__ import annotations

import numpy as np

from shopflow.models.base import mask_seen, top_k


def _reference(scores: np.ndarray, k: int) -> np.ndarray:
    n = scores.shape[1]
    order = np.lexsort((np.tile(np.arange(n), (len(scores), 1)), -scores), axis=1)[:, : min(k, n)]
    vals = np.take_along_axis(scores, order, axis=1)
    return np.where(np.isfinite(vals), order, -1)


def test_matches_a_full_stable_sort_with_ties_and_masks() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, (200, 300)).astype(np.float32)  # many ties
    scores[:, :90] = -np.inf
    scores[0, :] = -np.inf
    scores[1, :297] = -np.inf
    for k in (1, 5, 10, 20, 299, 300, 500):
        ids, _vals = top_k(scores, k)
        assert (ids == _reference(scores, k)).all(), k
        assert ids.shape == (200, min(k, 300))
    assert (top_k(scores, 10)[0][0] == -1).all()
    assert top_k(scores, 0)[0].shape == (200, 0)


def test_hand_case_and_mask_seen() -> None:
    s = np.array([[1.0, 3.0, 3.0, 2.0, 0.5]], dtype=np.float32)
    ids, vals = top_k(s, 2)
    assert ids.tolist() == [[1, 2]] and vals.tolist() == [[3.0, 3.0]]
    mask_seen(s, [np.array([1, 4])])
    assert top_k(s, 5)[0].tolist() == [[2, 3, 0, -1, -1]]
