"""The request-path kernels give exactly what the batch code they stand in for gives."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shopflow.models.base import history_matrix, mask_seen, top_k
from shopflow.retrieval.kernels import csr_rows, history_weights, top_k_row


@pytest.mark.parametrize("seed", range(30))
def test_top_k_row_equals_top_k_with_ties_masks_and_short_rows(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    scores = rng.integers(0, 6, n).astype(np.float32)  # many ties
    scores[rng.random(n) < 0.3] = -np.inf  # masked items
    exclude = rng.integers(0, n, int(rng.integers(0, 5)))
    for k in (1, 3, n // 2, n, n + 4):
        ref = scores[None, :].copy()
        mask_seen(ref, [exclude])
        ids, vals = top_k(ref, k)
        keep = ids[0] >= 0
        got_ids, got_vals = top_k_row(scores.copy(), k, exclude)
        assert got_ids.tolist() == ids[0][keep].tolist(), (k, scores, exclude)
        assert got_vals.tolist() == vals[0][keep].tolist()


def test_top_k_row_leaves_out_every_excluded_item_and_modifies_only_what_it_says() -> None:
    scores = np.array([5.0, 4.0, 3.0, 2.0])
    ids, vals = top_k_row(scores, 2, exclude=np.array([0, 7, -1]))  # out-of-range ids ignored
    assert ids.tolist() == [1, 2] and vals.tolist() == [4.0, 3.0]
    assert scores[0] == -np.inf  # documented: exclusion writes into the given array


@pytest.mark.parametrize("max_len", [None, 0, 1, 3, 50])
def test_history_weights_is_one_row_of_history_matrix(max_len: int | None) -> None:
    rng = np.random.default_rng(1)
    history = rng.integers(-2, 12, 25)  # ids outside [0, 10) are dropped first
    items, weights = history_weights(history, 10, max_len, decay=0.7)
    ref = history_matrix([history], 10, max_len, decay=0.7)
    assert items.tolist() == ref.indices.tolist()
    assert np.allclose(weights, ref.data, rtol=1e-6)


def test_csr_rows_lists_the_entries_of_the_asked_rows_in_order() -> None:
    rng = np.random.default_rng(2)
    mat = sp.csr_matrix((rng.random((8, 9)) < 0.4) * rng.random((8, 9)))
    rows = np.array([3, 0, 3, 11, 7])  # a repeated row, and one beyond the matrix
    owner, cols, vals = csr_rows(mat, rows)
    expected = [
        (pos, c, mat[r, c]) for pos, r in enumerate(rows.tolist()) if r < 8
        for c in mat[r].indices.tolist()
    ]  # fmt: skip
    assert list(zip(owner.tolist(), cols.tolist(), vals.tolist(), strict=True)) == expected
