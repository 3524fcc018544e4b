"""The weighted blend ranker: each source's scores scaled to [0, 1], weighted, summed.

Scores of different sources live on different scales (cosine similarities, co-visitation weights,
BM25, logits), so each source's scores are scaled to [0, 1] over the candidates that source proposed
— divided by the best when none is negative (a weak match keeps a share), min-max scaled otherwise
(logits) — multiplied by the scenario's weight for that source and summed. An item several sources
agree on therefore rises. Sources with no weight in the context get ``default_weight``. Item
features already on a common scale (``raw``: review sentiment's lift in [-1, 1]) are not rescaled
over the candidates: they add ``weight * value``, and an item without the feature adds 0.

Example
-------
>>> import numpy as np
>>> from shopflow.retrieval.merge import SourceHits, merge
>>> c = merge([SourceHits("a", np.array([1, 2, 3]), np.array([3.0, 2.0, 1.0])),
...            SourceHits("b", np.array([3]), np.array([0.5]))])
>>> BlendRanker().score(c, RankContext("home", {"a": 1.0, "b": 0.8})).round(3).tolist()
[1.0, 0.667, 1.133]
"""

from __future__ import annotations

import numpy as np

from shopflow.ranking import RankContext
from shopflow.retrieval.merge import Candidates


def scale_columns(scores: np.ndarray) -> np.ndarray:
    """Scale each column's finite entries to [0, 1]: ``x / max`` when none is negative, else
    min-max; a constant column gives 1, NaN stays NaN.

    >>> scale_columns(np.array([[4.0, -1.0], [2.0, 1.0], [np.nan, 3.0]])).tolist()
    [[1.0, 0.0], [0.5, 0.5], [nan, 1.0]]
    """
    if not scores.size:
        return np.full(scores.shape, np.nan)
    ok = np.isfinite(scores)  # all columns at once: a few array calls, not a few per column
    lo = np.where(ok, scores, np.inf).min(axis=0)  # (S,); inf for a column with no entry
    hi = np.where(ok, scores, -np.inf).max(axis=0)
    span = hi - lo
    flat = span <= 1e-12
    base = np.where(lo >= 0, 0.0, lo)  # x / max when none is negative, else min-max
    div = np.where(lo >= 0, hi, span)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = (scores - base) / np.where(flat | (div == 0), 1.0, div)
    out = np.where(flat, 1.0, out)
    return np.where(ok, out, np.nan)


RAW_FEATURES = frozenset({"sentiment"})  # columns that enter the blend unscaled


class BlendRanker:
    """Weighted sum of min-max scaled source scores (see the module docstring)."""

    name = "blend"

    def __init__(self, default_weight: float = 0.1, raw: frozenset[str] = RAW_FEATURES) -> None:
        self.default_weight = default_weight
        self.raw = raw

    def contributions(self, candidates: Candidates, context: RankContext) -> np.ndarray:
        w = np.array(
            [context.weights.get(s, self.default_weight) for s in candidates.sources], np.float64
        )
        scaled = scale_columns(candidates.scores)
        for col, source in enumerate(candidates.sources):
            if source in self.raw:
                scaled[:, col] = candidates.scores[:, col]
        return np.where(np.isnan(scaled), 0.0, scaled) * w[None, :]  # (C, S)

    def score(self, candidates: Candidates, context: RankContext) -> np.ndarray:
        if not len(candidates):
            return np.empty(0)
        return self.contributions(candidates, context).sum(axis=1)
