"""Review sentiment as a ranking feature and a reason: scored on ingest, aggregated per item.

Each accepted ``review`` event is scored once, when it arrives (:meth:`ReviewSignals.learn`): its
text by ``text.sentiment.ReviewSentiment`` (VADER for English, the trained character n-gram model or
SnowNLP for Chinese: what ``bench/text.py`` measured best), blended half and half with its stars
when ``value`` holds a 1–5 rating. The online state keeps per-item totals (count, score sum,
positives, ratings), shared by every worker when it is Redis.

At request time :class:`ReviewFeature` reads the totals of the candidates and gives the blend a
``sentiment`` column: the item's mean score shrunk towards a neutral prior,

    ``shrunk = (sum + k * prior) / (count + k)``  (Bayesian average, ``k = prior_strength``),

as a *lift* ``shrunk - prior`` in [-1, 1] (prior 0: neutral). An item without reviews sits at 0,
between the praised and the panned, and evidence counts: three glowing reviews (mean 0.95) lift an
item by 0.22, three hundred good ones (mean 0.5) by 0.48. The prior is neutral rather than the mean
of all reviews on purpose: against the mean of a shop where most reviews are good, 300 good reviews
would be "average" and lose to 3 glowing ones. The ranker adds the lift unscaled, times the
scenario's ``sentiment`` weight (``RecommendConfig.weights``). An item whose evidence is strong (at
least ``min_reviews`` reviews and a lift of at least ``praise``) gets the reason "Buyers praise it —
4.5/5 from 230 reviews" (or "— 87% positive in 230 reviews" without stars).

Example
-------
>>> from shopflow.store.online import MemoryState
>>> signals = ReviewSignals(MemoryState(), scorer=lambda texts: [0.9] * len(texts))
>>> from shopflow.ingest.schema import Event
>>> signals.learn([Event(event_id="r1", type="review", user_id="u", item_id="a",
...                      timestamp=1_700_000_000, text="Love it", value=5)])
1
>>> s = signals.stats(["a"])[0]; s.count, round(s.shrunk, 3), s.mean_stars
(1, 0.086, 5.0)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shopflow.ingest.schema import Event
from shopflow.ranking.explain import Reason
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.merge import SourceHits
from shopflow.store.online import OnlineState, ReviewTotals
from shopflow.types import EventType

log = logging.getLogger(__name__)

SOURCE = "sentiment"
Scorer = Callable[[list[str]], Sequence[float] | np.ndarray]  # texts -> scores in [-1, 1]


@dataclass(frozen=True)
class ReviewConfig:
    """How review sentiment is aggregated and when it becomes a reason."""

    prior_mean: float = 0.0  # the score an item without reviews is taken to have (neutral)
    prior_strength: float = 10.0  # k: reviews' worth of the prior in each item's shrunk mean
    star_weight: float = 0.5  # share of the stars in a rated review's score (the rest: its text)
    min_reviews: int = 5  # fewer reviews never make a reason
    praise: float = 0.4  # lift at or above which "buyers praise it"


@dataclass(frozen=True)
class ItemReviews:
    """One item's reviews as the ranker and the explainer see them."""

    count: int
    mean: float  # plain mean score in [-1, 1] (0 without reviews)
    shrunk: float  # mean shrunk towards the prior
    lift: float  # shrunk - prior, in [-1, 1]
    positive: int
    rated: int
    mean_stars: float | None


def star_score(stars: float) -> float:
    """1..5 stars to [-1, 1] (3 stars is 0)."""
    return float(np.clip((stars - 3.0) / 2.0, -1.0, 1.0))


def summarise(t: ReviewTotals, prior: float, strength: float) -> ItemReviews:
    """An item's :class:`ItemReviews` from its totals and the prior mean.

    >>> glowing = summarise(ReviewTotals(3, 2.85, 3, 0, 0.0), 0.0, 10.0)
    >>> good = summarise(ReviewTotals(300, 150.0, 280, 0, 0.0), 0.0, 10.0)
    >>> round(glowing.lift, 3), round(good.lift, 3)
    (0.219, 0.484)
    """
    shrunk = (
        (t.score_sum + strength * prior) / (t.count + strength) if t.count + strength else prior
    )
    return ItemReviews(
        t.count,
        t.score_sum / t.count if t.count else 0.0,
        shrunk,
        float(np.clip(shrunk - prior, -1.0, 1.0)),
        t.positive,
        t.rated,
        t.stars_sum / t.rated if t.rated else None,
    )


class ReviewSignals:
    """Scores reviews as they arrive and serves per-item review statistics (see the module doc).

    Parameters
    ----------
    online:
        Where the per-item totals live.
    model_dir:
        Folder that may hold the trained Chinese sentiment model (``text.sentiment``).
    scorer:
        Texts to scores in [-1, 1]; default ``ReviewSentiment.default(model_dir)``, built at the
        first review (so a shop without reviews never loads it).
    """

    def __init__(
        self,
        online: OnlineState,
        config: ReviewConfig | None = None,
        model_dir: Path | None = None,
        scorer: Scorer | None = None,
    ) -> None:
        self.online = online
        self.config = config or ReviewConfig()
        self.model_dir = model_dir
        self._scorer = scorer
        self._lock = threading.Lock()

    def _score(self, texts: list[str]) -> np.ndarray:
        with self._lock:
            if self._scorer is None:
                from shopflow.text.sentiment import ReviewSentiment

                self._scorer = ReviewSentiment.default(self.model_dir).score_many
            scorer = self._scorer
        return np.clip(np.asarray(scorer(texts), dtype=np.float64), -1.0, 1.0)

    def learn(self, events: Sequence[Event]) -> int:
        """Score the ``review`` events among ``events`` and add them to the totals; how many.

        A review with neither text nor a 1–5 rating says nothing and is skipped.
        """
        reviews = [e for e in events if e.type is EventType.REVIEW and e.item_id is not None]
        stars = [
            e.value if e.value is not None and 1.0 <= e.value <= 5.0 else None for e in reviews
        ]
        texts = [(e.text or "").strip() for e in reviews]
        with_text = [i for i, t in enumerate(texts) if t]
        scores = np.full(len(reviews), np.nan)
        if with_text:
            scores[with_text] = self._score([texts[i] for i in with_text])
        w = self.config.star_weight
        rows = []
        for e, text_score, s in zip(reviews, scores, stars, strict=True):
            if np.isnan(text_score) and s is None:
                continue
            if s is None:
                score = float(text_score)
            elif np.isnan(text_score):
                score = star_score(s)
            else:
                score = (1.0 - w) * float(text_score) + w * star_score(s)
            rows.append((str(e.item_id), score, s))
        self.online.add_reviews(rows)
        return len(rows)

    def stats(self, item_ids: Sequence[str]) -> list[ItemReviews]:
        """Review statistics of each item."""
        prior, k = self.config.prior_mean, self.config.prior_strength
        return [summarise(t, prior, k) for t in self.online.review_totals(item_ids)]

    def feature(self, table: ItemTable) -> ReviewFeature:
        """The ``sentiment`` column and reasons of one request over ``table``'s items."""
        return ReviewFeature(self, table)


class ReviewFeature:
    """Per request: the candidates' review statistics, as a blend column and as reasons."""

    def __init__(self, signals: ReviewSignals, table: ItemTable) -> None:
        self.signals, self.table = signals, table
        self._stats: dict[int, ItemReviews] = {}

    def __call__(self, items: np.ndarray) -> SourceHits | None:
        """(C,) candidate items → a ``sentiment`` column for those with reviews (None: none)."""
        if not len(items) or self.signals.online.review_overall().count == 0:
            return None
        stats = self.signals.stats(self.table.ids.to_external(items))
        keep = [j for j, s in enumerate(stats) if s.count > 0]
        self._stats = {int(items[j]): stats[j] for j in keep}
        if not keep:
            return None
        lifts = np.array([stats[j].lift for j in keep])
        return SourceHits(SOURCE, items[keep], lifts)

    def reason(self, item: int) -> Reason | None:
        """The "buyers praise it" reason when the evidence is strong enough, else None."""
        s, cfg = self._stats.get(item), self.signals.config
        if s is None or s.count < cfg.min_reviews or s.lift < cfg.praise:
            return None
        if s.mean_stars is not None and s.rated >= cfg.min_reviews:
            noun = "review" if s.rated == 1 else "reviews"
            text = f"Buyers praise it — {s.mean_stars:.1f}/5 from {s.rated} {noun}"
        else:
            text = f"Buyers praise it — {round(100 * s.positive / s.count)}% positive in "
            text += f"{s.count} reviews"
        evidence = {
            "source": SOURCE,
            "reviews": s.count,
            "positive": s.positive,
            "rated": s.rated,
            "mean_stars": None if s.mean_stars is None else round(s.mean_stars, 2),
            "sentiment": round(s.shrunk, 4),
            "lift": round(s.lift, 4),
        }
        return Reason("buyers_praise", text, evidence)
