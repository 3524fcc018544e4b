"""Small array kernels of the request path: one user, one row, no scipy or torch overhead.

The model contract scores batches of histories against the whole catalogue (``Recommender.score``),
which is right for training and evaluation; a request scores *one* history and needs a few dozen
items. These kernels do that part with a handful of numpy calls each, and give the same answers as
the batch code they stand in for (the tests compare them):

- :func:`top_k_row`: ``models.base.top_k`` for one row, with an exclusion list;
- :func:`history_weights`: one row of ``models.base.history_matrix`` (items, summed decay weights);
- :func:`csr_rows`: the entries of some rows of a CSR matrix, as flat arrays.

Example
-------
>>> import numpy as np
>>> top_k_row(np.array([0.5, 2.0, 2.0, 1.0]), 2, exclude=np.array([1]))
(array([2, 3]), array([2., 1.]))
>>> history_weights(np.array([0, 2, 0]), n_items=3, decay=0.5)
(array([0, 2]), array([1.25, 0.5 ]))
"""

from __future__ import annotations

from typing import Any

import numpy as np

EMPTY_IDS = np.empty(0, dtype=np.int64)


def top_k_row(
    scores: np.ndarray, k: int, exclude: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest finite ``scores`` (1-D), best first, ties by lower index.

    ``exclude`` (item indices) are left out: they are set to -inf in ``scores`` itself (pass a copy
    to keep it). Returns ``(ids int64 (≤k,), scores (≤k,))``; fewer than ``k`` when fewer are
    finite.
    """
    n = len(scores)
    if exclude is not None and len(exclude):
        ex = np.asarray(exclude, dtype=np.int64)
        scores[ex[(ex >= 0) & (ex < n)]] = -np.inf
    pick = np.flatnonzero(scores > -np.inf)  # argpartition is slow over many equal -inf
    vals_all = scores[pick] if len(pick) < n else scores
    m = len(vals_all)
    k = min(int(k), m)
    if k <= 0:
        return EMPTY_IDS, scores[:0]
    if k < m:
        part = np.argpartition(vals_all, m - k)[m - k :]  # the k largest, unordered
        vals = vals_all[part]
        kth = vals.min()
        # argpartition picks any of several scores equal to the k-th: keep the lowest indices
        if np.count_nonzero(vals_all == kth) > np.count_nonzero(vals == kth):
            above = np.flatnonzero(vals_all > kth)
            tied = np.flatnonzero(vals_all == kth)[: k - len(above)]
            part = np.concatenate([above, tied])
            vals = vals_all[part]
    else:
        part = np.arange(m)
        vals = vals_all
    order = np.lexsort((part, -vals))
    part, vals = part[order], vals[order]
    ids = part if len(pick) == n else pick[part]
    return ids.astype(np.int64, copy=False), vals


def history_weights(
    history: np.ndarray, n_items: int, max_len: int | None = None, decay: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """One row of :func:`shopflow.models.base.history_matrix`: the distinct items (ascending) and
    the sum of ``decay ** d`` over their positions ``d`` steps from the end (float64).

    Ids outside ``[0, n_items)`` are dropped first; then only the last ``max_len`` count.
    """
    h = np.asarray(history, dtype=np.int64)
    h = h[(h >= 0) & (h < n_items)]
    if max_len is not None:
        h = h[-max_len:] if max_len > 0 else h[:0]
    if not len(h):
        return EMPTY_IDS, np.empty(0)
    w = decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64)
    items, inv = np.unique(h, return_inverse=True)
    return items, np.bincount(inv, weights=w, minlength=len(items))


def csr_rows(matrix: Any, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries of ``rows`` of a CSR matrix: ``(position in rows, column, value)``, flat, in order.

    Rows beyond the matrix have no entries.
    """
    rows = np.asarray(rows, dtype=np.int64)
    pos = np.flatnonzero((rows >= 0) & (rows < matrix.shape[0]))  # rows the matrix has
    starts = matrix.indptr[rows[pos]].astype(np.int64)
    lens = matrix.indptr[rows[pos] + 1].astype(np.int64) - starts
    total = int(lens.sum())
    if not total:
        return EMPTY_IDS, EMPTY_IDS, np.empty(0, dtype=matrix.dtype)
    offsets = np.repeat(starts - (np.cumsum(lens) - lens), lens)
    flat = offsets + np.arange(total)
    owner = np.repeat(pos, lens)
    return owner, matrix.indices[flat].astype(np.int64), matrix.data[flat]
