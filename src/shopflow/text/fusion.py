"""Rank fusion: reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) with tied ranks.

``score(d) = sum_r w_r / (k + rank_r(d))``; equal retriever scores share a rank (competition
ranking, :func:`competition_ranks`), so that two items with the same evidence get the same fused
score.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[K] | Mapping[K, int]],
    k: float = 60.0,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[K, float, dict[str, int]]]:
    """Fuse rankings: ``score(d) = sum_r weight_r / (k + rank_r(d))``, ranks starting at 1.

    Parameters
    ----------
    rankings:
        Retriever name to an ordered list of keys (rank = position + 1) or to a mapping of key
        to rank (equal ranks for ties).
    k:
        The RRF constant; larger values flatten the difference between top and lower ranks.
    weights:
        Per retriever weight, 1 when absent.

    Returns
    -------
    list of (key, fused score, {retriever: rank})
        Best first; equal scores keep the order in which keys were first seen.

    >>> reciprocal_rank_fusion({"a": ["x", "y"], "b": ["y"]}, k=1)
    [('y', 0.8333333333333333, {'a': 2, 'b': 1}), ('x', 0.5, {'a': 1})]
    """
    scores: dict[K, float] = {}
    parts: dict[K, dict[str, int]] = {}
    for name, ranking in rankings.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        pairs = (
            ranking.items()
            if isinstance(ranking, Mapping)
            else zip(ranking, range(1, len(ranking) + 1), strict=True)
        )
        for key, rank in pairs:
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
            parts.setdefault(key, {})[name] = rank
    order = sorted(scores, key=lambda key: -scores[key])  # stable: first seen wins a tie
    return [(key, scores[key], parts[key]) for key in order]


def competition_ranks(scores: np.ndarray, n: int, tol: float = 1e-6) -> dict[int, int]:
    """Row -> competition rank (1, 2, 2, 4) of the ``n`` best finite scores.

    >>> competition_ranks(np.array([0.5, 0.9, 0.5, -np.inf, 0.1]), 3)
    {1: 1, 0: 2, 2: 2}
    """
    finite = np.isfinite(scores)
    count = int(finite.sum())
    if count == 0:
        return {}
    n = min(n, count)
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.isfinite(scores[top])]
    top = top[np.lexsort((top, -scores[top]))]
    ranks: dict[int, int] = {}
    prev = np.inf
    rank = 0
    for pos, row in enumerate(top.tolist()):
        if scores[row] < prev - tol:
            rank, prev = pos + 1, float(scores[row])
        ranks[row] = rank
    return ranks
