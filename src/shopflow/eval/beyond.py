"""Beyond-accuracy metrics over top-K lists (DESIGN.md §6).

Catalogue coverage, exposure Gini, intra-list diversity, novelty, popularity, exposure by brand.

Every function takes ``recs``, an int array (n_users, K) of item ids best first with ``-1`` padding
(cut it to the K you report: ``recs[:, :k]``); padding is ignored everywhere.

Example
-------
>>> import numpy as np
>>> recs = np.array([[0, 1], [0, 2]])
>>> catalogue_coverage(recs, n_items=4), exposure_gini(recs, n_items=4)
(0.75, 0.375)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from shopflow.features.sequences import InteractionData

UNKNOWN_BRAND = "(unknown)"


def _valid(recs: np.ndarray) -> np.ndarray:
    flat = np.asarray(recs, dtype=np.int64).ravel()
    return flat[flat >= 0]


def item_counts(data: InteractionData) -> np.ndarray:
    """Interactions per item in ``data`` (training popularity), int64 of shape (n_items,)."""
    flat = np.concatenate(data.sequences) if data.sequences else np.empty(0, np.int64)
    return np.bincount(flat.astype(np.int64), minlength=data.n_items)


def exposure_counts(recs: np.ndarray, n_items: int) -> np.ndarray:
    """How often each catalogue item appears in the lists, shape (n_items,)."""
    return np.bincount(_valid(recs), minlength=n_items)


def catalogue_coverage(recs: np.ndarray, n_items: int) -> float:
    """Share of the catalogue recommended to at least one user."""
    return float((exposure_counts(recs, n_items) > 0).sum() / n_items)


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative ``values``: 0 when equal, (n-1)/n when one holds everything.

    ``sum_i (2i - n - 1) x_(i) / (n sum x)`` with ``x`` sorted ascending and ``i`` from 1; 0 for an
    all-zero vector.
    """
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        return 0.0
    i = np.arange(1, n + 1)
    return float(((2 * i - n - 1) * x).sum() / (n * total))


def exposure_gini(recs: np.ndarray, n_items: int) -> float:
    """Gini of exposure over every catalogue item (never-recommended items count as zeros)."""
    return gini(exposure_counts(recs, n_items))


def category_codes(categories: Sequence[Sequence[str]] | None, which: int = -1) -> np.ndarray:
    """One integer category per item from ``ItemSide.categories``: entry ``which`` of each list
    (default the last, the leaf of a path); -1 where an item has none. Codes in first-seen order."""
    if categories is None:
        raise ValueError("the data has no item categories")
    codes: dict[str, int] = {}
    out = np.full(len(categories), -1, dtype=np.int64)
    for i, cats in enumerate(categories):
        if cats:
            out[i] = codes.setdefault(cats[which], len(codes))
    return out


def intra_list_diversity(recs: np.ndarray, item_categories: np.ndarray) -> np.ndarray:
    """Per user: share of pairs of recommended items whose categories differ.

    Equals 1 − (same-category pairs / all pairs). Items with unknown category (-1) and padding are
    left out; users with fewer than two known items get NaN.
    """
    recs = np.asarray(recs, dtype=np.int64)
    cats = np.where(recs >= 0, np.asarray(item_categories)[np.maximum(recs, 0)], -1)
    known = cats >= 0
    m = known.sum(axis=1)
    pairs = m * (m - 1) / 2
    same = (cats[:, :, None] == cats[:, None, :]) & known[:, :, None] & known[:, None, :]
    same_pairs = (same.sum(axis=(1, 2)) - m) / 2  # drop the diagonal, count each pair once
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, 1.0 - same_pairs / np.maximum(pairs, 1), np.nan)


def self_information(train_counts: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """``-log2 p(item)`` with ``p = (count + smoothing) / (total + smoothing * n_items)``.

    The additive smoothing keeps items never seen in training finite; ``smoothing=0`` gives the raw
    share (infinite for unseen items).
    """
    counts = np.asarray(train_counts, dtype=np.float64)
    p = (counts + smoothing) / (counts.sum() + smoothing * len(counts))
    with np.errstate(divide="ignore"):
        return -np.log2(p)


def novelty(recs: np.ndarray, train_counts: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Per user: mean self-information of the recommended items (higher = less popular); NaN when
    the list is empty."""
    return _mean_over_list(recs, self_information(train_counts, smoothing))


def average_popularity(recs: np.ndarray, train_counts: np.ndarray) -> np.ndarray:
    """Per user: mean training interaction count of the recommended items (ARP)."""
    return _mean_over_list(recs, np.asarray(train_counts, dtype=np.float64))


def _mean_over_list(recs: np.ndarray, per_item: np.ndarray) -> np.ndarray:
    recs = np.asarray(recs, dtype=np.int64)
    valid = recs >= 0
    vals = np.where(valid, per_item[np.maximum(recs, 0)], 0.0)
    n = valid.sum(axis=1)
    with np.errstate(invalid="ignore"):
        return np.where(n > 0, vals.sum(axis=1) / np.maximum(n, 1), np.nan)


def exposure_by_brand(recs: np.ndarray, item_brands: Sequence[str | None]) -> dict[str, float]:
    """Share of all recommendation slots (padding left out) per brand, largest first.

    Items without a brand are pooled under ``"(unknown)"``.
    """
    flat = _valid(recs)
    if len(flat) == 0:
        return {}
    ids, counts = np.unique(flat, return_counts=True)
    shares: dict[str, float] = {}
    for item, c in zip(ids.tolist(), counts.tolist(), strict=True):
        brand = item_brands[item] or UNKNOWN_BRAND
        shares[brand] = shares.get(brand, 0.0) + c / len(flat)
    return dict(sorted(shares.items(), key=lambda kv: (-kv[1], kv[0])))
