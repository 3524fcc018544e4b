"""Personal re-ranking of search results by what the user's state says about each item.

A :class:`UserTaste` holds the parts of a user's state that bear on a query's candidates: the text
profile of the recent items (a vector in the index's embedding space), the shares of brands and
categories in the recent history, and a sequential model's scores (e.g. SASRec's next-item logits
from the user's sequence). :func:`taste_scores` turns them into one personal score per candidate:

- ``text``: cosine of the profile and the item's embedding, in [-1, 1];
- ``brand``: the share of the item's brand in the history over the largest brand share, in [0, 1];
- ``category``: the same for the item's best-liked category (any level of its path);
- ``model``: the model's scores min-max scaled over the candidates, in [0, 1] (0 for items the
  model does not know);

weighted by :class:`TasteWeights` and divided by the weight of the parts present, so a taste with
only a profile gives exactly the cosine. :class:`~shopflow.text.search.SearchIndex` blends it with
the fused query score: ``(1 - w) * fused / fused_max + w * personal``. The weights were chosen on
the validation targets of Amazon Scientific (``bench/search.py``), never on its test targets.

Example
-------
>>> taste = UserTaste(brands={"acme": 0.75, "zeta": 0.25})
>>> taste_scores(taste, ["a", "b", "c"], None, ["acme", "zeta", ""], [frozenset()] * 3)[0].tolist()
[1.0, 0.3333333333333333, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class TasteWeights:
    """Weight of each part of a taste in the personal score."""

    text: float = 1.0
    brand: float = 0.5
    category: float = 0.5
    model: float = 1.0


@dataclass(frozen=True)
class UserTaste:
    """A user's state as search re-ranking reads it; every part is optional.

    Attributes
    ----------
    vector:
        (E,) text profile of the recent items, in the search index's embedding space.
    brands, categories:
        Lower-cased brand / category name to its share of the recent history.
    model_scores:
        Item ids to (C,) scores of a sequential model given the user's sequence (NaN: unknown).
    """

    vector: np.ndarray | None = None
    brands: Mapping[str, float] = field(default_factory=dict)
    categories: Mapping[str, float] = field(default_factory=dict)
    model_scores: Callable[[Sequence[str]], np.ndarray] | None = None

    @property
    def empty(self) -> bool:
        return (
            self.vector is None
            and not self.brands
            and not self.categories
            and self.model_scores is None
        )


def shares(
    names: Sequence[str | None], weights: Sequence[float] | np.ndarray | None = None
) -> dict[str, float]:
    """Lower-cased name to its (weighted) share of ``names``; None and empty names are skipped.

    >>> shares(["Acme", "acme", "Zeta", None])
    {'acme': 0.6666666666666666, 'zeta': 0.3333333333333333}
    """
    total: dict[str, float] = {}
    ws = [1.0] * len(names) if weights is None else [max(float(w), 0.0) for w in weights]
    for name, w in zip(names, ws, strict=True):
        if name:
            key = name.lower()
            total[key] = total.get(key, 0.0) + w
    s = sum(total.values())
    return {k: v / s for k, v in total.items()} if s > 0 else {}


def _share(names: Sequence[str], shares: Mapping[str, float]) -> np.ndarray:
    top = max(shares.values(), default=0.0)
    if top <= 0:
        return np.zeros(len(names))
    return np.array([shares.get(n, 0.0) / top for n in names], dtype=np.float64)


def taste_scores(
    taste: UserTaste,
    item_ids: Sequence[str],
    vectors: np.ndarray | None,
    brands: Sequence[str],
    categories: Sequence[frozenset[str]],
    weights: TasteWeights | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Personal score of each candidate and the parts it was made of.

    Parameters
    ----------
    taste:
        The user's state.
    item_ids:
        (C,) candidate ids (for ``taste.model_scores``).
    vectors:
        (C, E) unit embeddings of the candidates, or None (no text part).
    brands, categories:
        Per candidate: lower-cased brand ("" when none), lower-cased category names of its path.
    weights:
        Weight of each part (default :class:`TasteWeights`).

    Returns
    -------
    (scores, parts)
        ``scores`` (C,) float64; ``parts`` name to (C,) values of each part present.
    """
    w = weights or TasteWeights()
    parts: dict[str, np.ndarray] = {}
    if taste.vector is not None and vectors is not None and w.text > 0:
        u = np.asarray(taste.vector, dtype=np.float32)
        parts["text"] = (vectors @ (u / max(float(np.linalg.norm(u)), 1e-12))).astype(np.float64)
    if taste.brands and w.brand > 0:
        parts["brand"] = _share(brands, taste.brands)
    if taste.categories and w.category > 0:
        liked = taste.categories
        best = [max((liked.get(c, 0.0) for c in cats), default=0.0) for cats in categories]
        top = max(liked.values(), default=0.0)
        parts["category"] = np.array(best, dtype=np.float64) / (top if top > 0 else 1.0)
    if taste.model_scores is not None and w.model > 0 and len(item_ids):
        raw = np.asarray(taste.model_scores(item_ids), dtype=np.float64)
        ok = np.isfinite(raw)
        scaled = np.zeros(len(raw))
        if ok.any():
            lo, hi = raw[ok].min(), raw[ok].max()
            scaled[ok] = (raw[ok] - lo) / (hi - lo) if hi > lo else 1.0
        parts["model"] = scaled
    if not parts:
        return np.zeros(len(item_ids)), parts
    total = sum(getattr(w, name) for name in parts)
    score = sum(getattr(w, name) * values for name, values in parts.items()) / total
    return np.asarray(score, dtype=np.float64), parts
