"""The sparse tables of :class:`~shopflow.models.covisit.CoVisitation`: built, updated, merged.

A table ``C`` is an (n, n) ``scipy.sparse`` CSR matrix of raw pair weights (``C[a, b]``: evidence
for ``a → b``), each row pruned to its ``neighbours`` best partners by ``C[a, b] / pop[b] **
pop_alpha``. :func:`pair_table` builds one from whole sequences (``fit``). Online events go first
to a :data:`Delta`, a dict of dict rows that :func:`add_pairs` adds one event's pairs to in
O(window). A compaction later folds the delta into the table (:func:`merge_delta`). The model
keeps its state, the compaction steps and the scoring; this module holds the table arithmetic,
so it can be read and tested apart from them.

Example
-------
>>> import numpy as np
>>> from shopflow.models.covisit import CoVisitationConfig
>>> cfg = CoVisitationConfig(window=2, backward_weight=0.5)
>>> table = pair_table([np.array([0, 1, 2])], [np.ones(3)], None, 3, cfg, lambda: np.ones(3))
>>> table.toarray().astype(float).round(2).tolist()
[[0.0, 1.0, 0.8], [0.5, 0.0, 1.0], [0.4, 0.5, 0.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain, repeat
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from shopflow.models.base import prune_rows

if TYPE_CHECKING:
    from shopflow.models.covisit import CoVisitationConfig

Delta = dict[int, dict[int, float]]  # online pair weights not in a table yet: delta[a][b]


def pair_table(
    sequences: Sequence[np.ndarray],
    weights: Sequence[np.ndarray],
    times: Sequence[np.ndarray] | None,
    n: int,
    cfg: CoVisitationConfig,
    col_factor: Callable[[], np.ndarray],
) -> sp.csr_matrix:
    """The pruned co-visitation matrix of ``sequences`` (rows: earlier or later item).

    Parameters
    ----------
    sequences, weights, times
        Per user: item ids (oldest first), the event weight of each, and their timestamps (or
        None: no time window).
    n
        Number of items; the table is (n, n).
    cfg
        Window, direction and gap weights, time window and ``neighbours``.
    col_factor
        Returns each item's popularity factor as a column (``pop ** -pop_alpha``), the pruning key;
        called once the pairs are summed.
    """
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
    key = mat.data * col_factor()[mat.indices]
    return prune_rows(mat, cfg.neighbours, key).astype(np.float32)


def add_pairs(
    delta: Delta,
    hist: np.ndarray,
    recent: np.ndarray,
    new_item: int,
    weight: float,
    cfg: CoVisitationConfig,
) -> None:
    """Add to ``delta`` the pairs of ``new_item`` with the last ``window`` items of ``hist``.

    The same weights :func:`pair_table` gives those pairs; items where ``recent`` is False (outside
    the time window) and ``new_item`` itself are skipped.
    """
    n = len(hist)
    start = max(0, n - cfg.window)
    items, near = hist[start:].tolist(), recent[start:].tolist()  # plain ints: a fast loop
    forward, backward, decay = cfg.forward_weight, cfg.backward_weight, cfg.gap_decay
    row_new = delta[new_item]
    for pos, (a, ok) in enumerate(zip(items, near, strict=True), start):
        if a == new_item or not ok:
            continue
        w = weight * decay ** (n - pos - 1)
        row_a = delta[a]
        row_a[new_item] = row_a.get(new_item, 0.0) + forward * w
        row_new[a] = row_new.get(a, 0.0) + backward * w


def merge_delta(
    table: sp.csr_matrix,
    delta: Delta,
    neighbours: int,
    col_factor: Callable[[], np.ndarray],
) -> sp.csr_matrix:
    """``table`` plus ``delta``, each row pruned to its ``neighbours`` best partners.

    Only rows over the cap are pruned (a row at or under it keeps every entry whatever the
    ranking key), so a compaction costs a sparse sum plus the few rows that grew past the cap,
    not a sort of the whole table. ``col_factor`` (as in :func:`pair_table`) is called only when
    some row is over the cap. An empty ``delta`` returns ``table`` itself.
    """
    if not delta:
        return table
    size = sum(len(r) for r in delta.values())
    owners = chain.from_iterable(repeat(a, len(r)) for a, r in delta.items())
    rows = np.fromiter(owners, np.int64, size)
    cols = np.fromiter(chain.from_iterable(delta.values()), np.int64, size)
    vals = np.fromiter(chain.from_iterable(r.values() for r in delta.values()), np.float32, size)
    add = sp.csr_matrix((vals, (rows, cols)), shape=table.shape, dtype=np.float32)
    mat = sp.csr_matrix(table + add, dtype=np.float32)  # duplicates summed, indices sorted
    lens = np.diff(mat.indptr)
    over = np.flatnonzero(lens > neighbours)
    if len(over):
        n_over = lens[over]
        owner = np.repeat(np.arange(len(over)), n_over)
        flat = np.repeat(mat.indptr[over] - (np.cumsum(n_over) - n_over), n_over)
        flat = flat + np.arange(len(owner))  # positions of the over-full rows' entries
        idx = mat.indices[flat]
        key = mat.data[flat] * col_factor()[idx]
        order = np.lexsort((idx, -key, owner))  # per row: best first, ties by lower column
        starts = np.searchsorted(owner[order], np.arange(len(over)))
        rank = np.arange(len(order)) - starts[owner[order]]
        mat.data[flat[order[rank >= neighbours]]] = 0.0
        mat.eliminate_zeros()
    return mat


def fold_delta(into: Delta, delta: Delta) -> None:
    """Add every weight of ``delta`` to ``into`` (a ``defaultdict(dict)``: missing rows appear)."""
    for a, row in delta.items():
        for b, v in row.items():
            into[a][b] = into[a].get(b, 0.0) + v
