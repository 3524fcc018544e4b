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


def column_scales(scores: np.ndarray) -> tuple[list[float], list[float], list[bool]]:
    """Per column of ``scores``: what to subtract and divide by to bring its finite entries to
    [0, 1] (``x / max`` when none is negative, else min-max), and whether it is constant (then
    every entry counts 1). A column with no entry gets (0, 1, False): its NaNs stay NaN.

    >>> column_scales(np.array([[4.0, -1.0], [2.0, 1.0], [np.nan, 3.0]]))
    ([0.0, -1.0], [4.0, 4.0], [False, False])
    """
    # NaN-skipping reductions of every column at once, then a few Python floats per column
    hi = np.fmax.reduce(scores, axis=0).tolist()
    lo = np.fmin.reduce(scores, axis=0).tolist()
    base, div, flat = [], [], []
    for h, low in zip(hi, lo, strict=True):
        if h != h:  # no entry in this column
            base.append(0.0)
            div.append(1.0)
            flat.append(False)
            continue
        neg = low < 0
        d = h - low if neg else h
        is_flat = h - low <= 1e-12
        base.append(low if neg else 0.0)
        div.append(1.0 if is_flat or d == 0 else d)
        flat.append(is_flat)
    return base, div, flat


RAW_FEATURES = frozenset({"sentiment"})  # columns that enter the blend unscaled


class BlendRanker:
    """Weighted sum of min-max scaled source scores (see the module docstring)."""

    name = "blend"

    def __init__(self, default_weight: float = 0.1, raw: frozenset[str] = RAW_FEATURES) -> None:
        self.default_weight = default_weight
        self.raw = raw

    def memo_key(self, context: RankContext) -> tuple[object, ...]:
        """What the blend depends on beside the candidates: the same key and the same candidates
        give the same contributions (``ranking.pipeline.blend`` keeps them on a kept set)."""
        return (self.default_weight, self.raw, tuple(context.weights.items()))

    def contributions(self, candidates: Candidates, context: RankContext) -> np.ndarray:
        scores, sources = candidates.scores, candidates.sources
        if not scores.size:
            return np.zeros(scores.shape)
        # one affine map per column (a handful of Python floats), then three array operations
        base, div, flat = column_scales(scores)
        w = [context.weights.get(s, self.default_weight) for s in sources]
        for col, source in enumerate(sources):
            if source in self.raw:  # already on a common scale: weight * value
                base[col], div[col], flat[col] = 0.0, 1.0, False
        base_, div_, w_ = np.array([base, div, w])  # one conversion, three row views
        out = (scores - base_) / div_
        cols = [c for c, f in enumerate(flat) if f]
        if cols:
            out[:, cols] = 1.0  # a constant column: each entry counts fully (NaN restored below)
        out *= w_
        np.copyto(out, 0.0, where=np.isnan(scores))  # a source that did not propose it adds 0
        return out  # (C, S)

    def score(self, candidates: Candidates, context: RankContext) -> np.ndarray:
        if not len(candidates):
            return np.empty(0)
        return self.contributions(candidates, context).sum(axis=1)
