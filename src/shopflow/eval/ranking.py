"""Ranking every evaluated user against the whole catalogue, and what is kept of the lists.

:func:`rank_users` scores histories in batches with the user's own history excluded (full
ranking); :func:`write_predictions` writes the lists as JSON lines that anyone can score again;
:func:`popularity_profile` summarises how popular the recommended items are.

Example
-------
>>> import numpy as np
>>> popularity_profile(np.array([[0, 1]]), np.array([5, 4, 3, 2, 1, 0, 0, 0, 0, 0]))[:3]
[0.5, 0.5, 0.0]
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shopflow.features.sequences import InteractionData
from shopflow.models.base import Recommender, mask_seen, top_k

PREDICTIONS_K = 100


def rank_users(
    model: Recommender,
    histories: Sequence[np.ndarray],
    width: int,
    batch_size: int = 1024,
    candidates: np.ndarray | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Top-``width`` items per history (own history excluded, -1 padded), full ranking.

    With ``candidates`` (n, 1 + negatives; column 0 the target) also returns the masked scores of
    those candidates, for the sampled-negative metrics.
    """
    n = len(histories)
    recs = np.full((n, width), -1, dtype=np.int64)
    cand_scores = None if candidates is None else np.empty(candidates.shape, dtype=np.float32)
    for start in range(0, n, batch_size):
        batch = histories[start : start + batch_size]
        scores = model.score(batch)  # (B, n_items)
        mask_seen(scores, batch)
        ids, _ = top_k(scores, width)
        recs[start : start + len(batch), : ids.shape[1]] = ids
        if candidates is not None and cand_scores is not None:
            cand = candidates[start : start + len(batch)]
            cand_scores[start : start + len(batch)] = np.take_along_axis(scores, cand, axis=1)
        if on_batch is not None:
            on_batch(len(batch))
    return recs, cand_scores


def popularity_profile(recs: np.ndarray, counts: np.ndarray, bins: int = 10) -> list[float]:
    """Share of recommendation slots per popularity decile of the catalogue (most popular first).

    Items are ranked by training interactions (ties by lower index); decile 0 holds the most
    popular tenth of the catalogue. ``recs`` may be a 1-D array of items (e.g. the targets).
    """
    order = np.lexsort((np.arange(len(counts)), -np.asarray(counts)))
    rank = np.empty(len(counts), dtype=np.int64)
    rank[order] = np.arange(len(counts))
    flat = np.asarray(recs, dtype=np.int64).ravel()
    flat = flat[flat >= 0]
    if len(flat) == 0:
        return [0.0] * bins
    hist = np.bincount(rank[flat] * bins // len(counts), minlength=bins)
    return (hist / hist.sum()).tolist()


def write_predictions(
    path: str | Path,
    model: str,
    data: InteractionData,
    users: np.ndarray,
    recs: np.ndarray,
    targets: Any,
) -> None:
    """Append one JSON line per user: model, user_id, items (top 100, own ids), target."""
    ext_users, ext_items = data.users.external_ids, data.items.external_ids
    with open(path, "a", encoding="utf-8") as fh:
        for u, row, target in zip(users.tolist(), recs, targets, strict=True):
            items = [ext_items[i] for i in row[:PREDICTIONS_K].tolist() if i >= 0]
            tgt: Any = (
                ext_items[int(target)]
                if np.ndim(target) == 0
                else [ext_items[int(t)] for t in np.asarray(target).tolist()]
            )
            fh.write(
                json.dumps({"model": model, "user_id": ext_users[u], "items": items, "target": tgt})
                + "\n"
            )
