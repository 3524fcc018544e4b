"""Ranking: order merged candidates (a weighted blend now, a learned ranker later), apply the rules
(filters, diversity) and explain every item.

A ranker implements :class:`Ranker`: ``contributions(candidates, context)`` gives each candidate's
score from each source, ``score`` their sum. The explainer reads the contributions to say which
source put an item where it is, so a learned ranker keeps explanations by returning its own
per-source attribution (e.g. SHAP values grouped by source) from the same method.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from shopflow.retrieval.merge import Candidates


@dataclass(frozen=True)
class RankContext:
    """What a ranker may use besides the candidates: the scenario and its source weights."""

    scenario: str
    weights: Mapping[str, float] = field(default_factory=dict)


class Ranker(Protocol):
    """Scores candidates; larger is better."""

    name: str

    def contributions(self, candidates: Candidates, context: RankContext) -> np.ndarray:
        """(C, S) share of each source in each candidate's score (0 where the source is absent)."""
        ...

    def score(self, candidates: Candidates, context: RankContext) -> np.ndarray:
        """(C,) final scores."""
        ...


def order(scores: np.ndarray) -> np.ndarray:
    """Positions of ``scores`` best first; ties keep the candidates' order (first-seen)."""
    return np.argsort(-scores, kind="stable")


from shopflow.ranking.blend import BlendRanker  # noqa: E402

__all__ = ["BlendRanker", "RankContext", "Ranker", "order"]
