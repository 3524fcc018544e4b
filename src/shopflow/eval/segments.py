"""Per-segment reporting: label users and average any per-user metric within each label.

Users are labelled by history length, by their target's training popularity, or cold / warm.

Bins are ascending integer edges ``(e0, e1, ..., en)``: the segments are ``[e0, e1)``, ...,
``[en, inf)``, labelled ``"e0-(e1-1)"`` (or ``"e0"`` when the bin holds one value) and ``"en+"``;
values below ``e0`` are labelled ``"<e0"``.

Example
-------
>>> import numpy as np
>>> labels = segment_users_by_history_length(np.array([2, 5, 30]), bins=(0, 5, 20))
>>> labels.tolist()
['0-4', '5-19', '20+']
>>> by_segment(np.array([1.0, 0.0, 0.5]), labels)["5-19"]
{'n': 1, 'mean': 0.0}
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from itertools import pairwise

import numpy as np

DEFAULT_LENGTH_BINS = (0, 5, 10, 20, 50)
DEFAULT_POPULARITY_BINS = (0, 1, 10, 100)


def bin_labels(bins: Sequence[int]) -> list[str]:
    """Labels of the segments defined by ascending integer ``bins``."""
    edges = [int(b) for b in bins]
    if not edges or any(hi <= lo for lo, hi in pairwise(edges)):
        raise ValueError(f"bins must be strictly ascending integers, got {list(bins)}")
    labels = [str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}" for lo, hi in pairwise(edges)]
    return [*labels, f"{edges[-1]}+"]


def segment_by_bins(values: np.ndarray, bins: Sequence[int]) -> np.ndarray:
    """Label each value with its bin (object array of str)."""
    names = np.array([f"<{int(bins[0])}", *bin_labels(bins)], dtype=object)
    idx = np.searchsorted(np.asarray(bins), np.asarray(values), side="right")
    return names[idx]


def segment_users_by_history_length(
    lengths: np.ndarray, bins: Sequence[int] = DEFAULT_LENGTH_BINS
) -> np.ndarray:
    """Label each user by the length of the history they were evaluated with."""
    return segment_by_bins(np.asarray(lengths), bins)


def segment_targets_by_item_popularity(
    train_counts: np.ndarray, targets: np.ndarray, bins: Sequence[int] = DEFAULT_POPULARITY_BINS
) -> np.ndarray:
    """Label each user by the training interaction count of their (single) target item.

    With the default bins, ``"0"`` marks cold target items (never seen in training).
    """
    targets = np.asarray(targets, dtype=np.int64)
    if targets.ndim != 1:
        raise ValueError("one target per user is needed (leave-one-out targets)")
    return segment_by_bins(np.asarray(train_counts)[targets], bins)


def segment_cold_users(cold: np.ndarray) -> np.ndarray:
    """``"cold"`` / ``"warm"`` per user from a boolean array (e.g. ``TimeSplit.cold``)."""
    return np.where(np.asarray(cold, dtype=bool), "cold", "warm").astype(object)


def _label_key(label: str) -> tuple[float, str]:
    match = re.match(r"^<?(\d+)", label)
    if match is None:
        return (float("inf"), label)
    return (float(match.group(1)) - (0.5 if label.startswith("<") else 0.0), label)


def by_segment(values: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean of per-user ``values`` within each label: ``{label: {"n": users, "mean": value}}``.

    NaN values (users without a target) are left out of both ``n`` and ``mean``. Labels come out in
    bin order (numeric start), other labels alphabetically after them.
    """
    values = np.asarray(values, dtype=np.float64)
    labels = np.asarray(labels, dtype=object)
    if values.shape != labels.shape:
        raise ValueError(f"{values.shape[0]} values but {labels.shape[0]} labels")
    out: dict[str, dict[str, float]] = {}
    for label in sorted({str(x) for x in labels.tolist()}, key=_label_key):
        sel = values[(labels == label) & ~np.isnan(values)]
        out[label] = {"n": len(sel), "mean": float(sel.mean()) if len(sel) else float("nan")}
    return out
