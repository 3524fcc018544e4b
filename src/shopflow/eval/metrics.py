"""Ranking metrics over top-K lists, rank of a target under explicit tie rules, and the aggregator.

Conventions (each is tested):

- ``recs``: int array (n_users, L), item ids best first, ``-1`` = padding (as
  :func:`shopflow.models.base.top_k` pads rows with fewer finite scores). A row must not repeat an
  item.
- ``targets``: a 1-D int array, one target per user (leave-one-out; ``-1`` = no target), or a
  sequence of int arrays / a 2-D array padded with ``-1`` (a set per user, time split; duplicates
  count once).
- K larger than the list: positions past the list are misses; precision still divides by K.
- A user without any target gets NaN for every metric; :func:`mean_metric` leaves NaN out.
- Binary relevance. NDCG uses the log2 discount ``1 / log2(rank + 1)`` (rank from 1) and the ideal
  DCG over ``min(|targets|, K)`` hits. Recall divides by ``|targets|``; MAP divides the sum of
  precision at each hit by ``min(|targets|, K)``; MRR is 1 / rank of the first hit within K, else 0.
- Ties: from a ``recs`` matrix the list order is the ranking. ``top_k`` documents equal scores as
  broken by the lower item index; the published S3-Rec code takes ``argpartition`` + ``argsort``
  order, which leaves ties to numpy's implementation — we do not follow that arbitrary order. From
  a score vector, :func:`rank_of_target` and :func:`hit_ndcg_from_scores` apply a named tie rule:
  ``pessimistic`` (every equal item ranks first), ``optimistic``, or ``expected`` (the exact
  expectation over a uniformly random order of the tied items).

Example
-------
>>> import numpy as np
>>> recs = np.array([[3, 1, 2], [5, 6, -1]])
>>> ndcg_at_k(recs, np.array([1, 9]), k=3).round(4).tolist()   # 1/log2(3) = 0.6309; no hit
[0.6309, 0.0]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shopflow.eval import beyond
from shopflow.eval.segments import by_segment

Targets = np.ndarray | Sequence[np.ndarray]
TIE_RULES = ("pessimistic", "optimistic", "expected")


def _discounts(n: int) -> np.ndarray:
    """``1 / log2(rank + 1)`` for ranks 1..n."""
    return 1.0 / np.log2(np.arange(2, n + 2, dtype=np.float64))


def _as_recs(recs: np.ndarray) -> np.ndarray:
    recs = np.asarray(recs, dtype=np.int64)
    if recs.ndim != 2:
        raise ValueError(f"recs must be 2-D (n_users, K), got shape {recs.shape}")
    srt = np.sort(recs, axis=1)
    if np.any((srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] >= 0)):
        raise ValueError("a row of recs repeats an item; each list must hold distinct items")
    return recs


def relevance(recs: np.ndarray, targets: Targets) -> tuple[np.ndarray, np.ndarray]:
    """Boolean hit matrix (n_users, L) and the number of distinct targets per user."""
    recs = _as_recs(recs)
    n = len(recs)
    if isinstance(targets, np.ndarray) and targets.ndim == 1 and targets.dtype != object:
        t = targets.astype(np.int64)
        if len(t) != n:
            raise ValueError(f"{len(t)} targets for {n} rows of recs")
        return (recs == t[:, None]) & (recs >= 0), (t >= 0).astype(np.int64)
    sets = [np.unique(np.asarray(x, dtype=np.int64)) for x in targets]
    if len(sets) != n:
        raise ValueError(f"{len(sets)} target sets for {n} rows of recs")
    sets = [s[s >= 0] for s in sets]
    n_targets = np.fromiter((len(s) for s in sets), dtype=np.int64, count=n)
    flat = np.concatenate(sets) if n else np.empty(0, np.int64)
    width = int(max(recs.max(initial=-1), flat.max(initial=-1))) + 1
    target_keys = np.repeat(np.arange(n, dtype=np.int64), n_targets) * width + flat
    rec_keys = np.arange(n, dtype=np.int64)[:, None] * width + recs
    return np.isin(rec_keys, target_keys) & (recs >= 0), n_targets


# -- metrics on a hit matrix: (rel (n, L) bool, n_targets (n,), k) -> (n,) float ------------------
def _hit_rate(rel: np.ndarray, n_t: np.ndarray, k: int) -> np.ndarray:
    return np.asarray(rel[:, :k].any(axis=1), dtype=np.float64)


def _recall(rel: np.ndarray, n_t: np.ndarray, k: int) -> np.ndarray:
    return rel[:, :k].sum(axis=1) / np.maximum(n_t, 1)


def _precision(rel: np.ndarray, n_t: np.ndarray, k: int) -> np.ndarray:
    return rel[:, :k].sum(axis=1) / k


def _ndcg(rel: np.ndarray, n_t: np.ndarray, k: int) -> np.ndarray:
    r = rel[:, :k]
    dcg = (r * _discounts(r.shape[1])).sum(axis=1)
    ideal = np.concatenate([[0.0], np.cumsum(_discounts(k))])[np.minimum(n_t, k)]
    return dcg / np.where(ideal > 0, ideal, 1.0)


def _mrr(rel: np.ndarray, n_t: np.ndarray, k: int) -> np.ndarray:
    r = rel[:, :k]
    first = r.argmax(axis=1)
    return np.where(r.any(axis=1), 1.0 / (first + 1), 0.0)


def _map(rel: np.ndarray, n_t: np.ndarray, k: int) -> np.ndarray:
    r = rel[:, :k]
    prec = np.cumsum(r, axis=1) / np.arange(1, r.shape[1] + 1)
    return (prec * r).sum(axis=1) / np.maximum(np.minimum(n_t, k), 1)


RANKING_METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "hit_rate": _hit_rate,
    "recall": _recall,
    "precision": _precision,
    "ndcg": _ndcg,
    "mrr": _mrr,
    "map": _map,
}


def metric_at_k(name: str, rel: np.ndarray, n_targets: np.ndarray, k: int) -> np.ndarray:
    """Per-user values of metric ``name`` from a hit matrix; NaN for users without targets."""
    if name not in RANKING_METRICS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(RANKING_METRICS)}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    values = RANKING_METRICS[name](rel, n_targets, k).astype(np.float64)
    values[n_targets == 0] = np.nan
    return values


def hit_rate_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """1 when any target is in the top ``k``, else 0 (equals recall with one target)."""
    return metric_at_k("hit_rate", *relevance(recs, targets), k)


def recall_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """Share of the user's distinct targets found in the top ``k``."""
    return metric_at_k("recall", *relevance(recs, targets), k)


def precision_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """Hits in the top ``k`` divided by ``k`` (also when the list is shorter than ``k``)."""
    return metric_at_k("precision", *relevance(recs, targets), k)


def ndcg_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """Binary-relevance NDCG with log2 discount; ideal DCG over ``min(|targets|, k)`` hits."""
    return metric_at_k("ndcg", *relevance(recs, targets), k)


def mrr_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """1 / rank of the first hit within the top ``k``, 0 without a hit."""
    return metric_at_k("mrr", *relevance(recs, targets), k)


def map_at_k(recs: np.ndarray, targets: Targets, k: int) -> np.ndarray:
    """Average precision at ``k``: sum of precision at each hit / ``min(|targets|, k)``."""
    return metric_at_k("map", *relevance(recs, targets), k)


def mean_metric(values: np.ndarray) -> float:
    """Mean over users, NaN (users without targets) left out; NaN when nothing is left."""
    values = np.asarray(values, dtype=np.float64)
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


# -- ranks from scores -----------------------------------------------------------------------------
def _greater_equal(
    scores: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    rows = np.arange(len(scores))
    own = scores[rows, targets][:, None]
    greater = (scores > own).sum(axis=1)
    equal = (scores == own).sum(axis=1) - 1
    masked = ~np.isfinite(own[:, 0]) & ~(own[:, 0] == np.inf)  # -inf or NaN: never a hit
    greater = np.where(masked, scores.shape[1], greater)
    equal = np.where(masked, 0, equal)
    return greater.astype(np.int64), equal.astype(np.int64), masked


def rank_of_target(
    scores: np.ndarray, targets: np.ndarray, ties: str = "pessimistic"
) -> np.ndarray:
    """0-based rank of each row's target among all its scores.

    ``greater`` (items with a strictly higher score) plus a share of the ``equal`` other items:
    all of them (``pessimistic``, the default), none (``optimistic``) or half (``expected``, the
    mean rank under a random order of ties). A target whose own score is -inf (masked, e.g. in the
    history) or NaN gets rank ``n_items``: never a hit. NaN scores of other items never outrank it.
    """
    if ties not in TIE_RULES:
        raise ValueError(f"unknown tie rule {ties!r}; known: {', '.join(TIE_RULES)}")
    greater, equal, _ = _greater_equal(scores, targets)
    share = {"pessimistic": 1.0, "optimistic": 0.0, "expected": 0.5}[ties]
    return greater + share * equal


def hit_ndcg_from_scores(
    scores: np.ndarray, targets: np.ndarray, k: int, ties: str = "expected"
) -> tuple[np.ndarray, np.ndarray]:
    """HR@k and NDCG@k of one target per row, straight from scores, under a tie rule.

    With ``expected`` the target is equally likely at each 0-based position ``greater ..
    greater + equal``, and the result is the exact mean of HR and NDCG over those positions.
    """
    if ties not in TIE_RULES:
        raise ValueError(f"unknown tie rule {ties!r}; known: {', '.join(TIE_RULES)}")
    greater, equal, masked = _greater_equal(scores, targets)
    if ties != "expected":
        pos = greater + (equal if ties == "pessimistic" else 0)
        hit = (pos < k) & ~masked
        return hit.astype(np.float64), np.where(hit, 1.0 / np.log2(np.minimum(pos, k) + 2), 0.0)
    cum = np.concatenate([[0.0], np.cumsum(_discounts(k))])  # cum[p] = sum of discounts < p
    lo, hi = np.minimum(greater, k), np.minimum(greater + equal + 1, k)
    span = (equal + 1).astype(np.float64)
    hr, ndcg = (hi - lo) / span, (cum[hi] - cum[lo]) / span
    return np.where(masked, 0.0, hr), np.where(masked, 0.0, ndcg)


# -- the aggregator --------------------------------------------------------------------------------
def evaluate_topk(
    recs: np.ndarray,
    targets: Targets,
    ks: Sequence[int] = (5, 10, 20),
    metrics: Sequence[str] = tuple(RANKING_METRICS),
    *,
    n_items: int | None = None,
    train_counts: np.ndarray | None = None,
    item_categories: np.ndarray | None = None,
    item_brands: Sequence[str | None] | None = None,
    segments: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Every metric at every K over one top-K matrix, as a JSON-ready dict.

    Parameters
    ----------
    recs, targets
        As in the module conventions; ``recs`` should be at least ``max(ks)`` wide.
    ks, metrics
        Cut-offs and names from :data:`RANKING_METRICS`; keys are ``"<metric>@<k>"``.
    n_items
        Adds ``coverage@k`` and ``gini@k`` (exposure over the whole catalogue).
    train_counts
        Training interactions per item; adds ``novelty@k`` and ``popularity@k``.
    item_categories
        Category code per item (-1 unknown); adds ``diversity@k`` (intra-list).
    item_brands
        Brand per item; adds ``brand_exposure@k`` (brand → share of recommendation slots).
    segments
        ``{segment name: label per user}``; adds
        ``segments[name][label] = {"n": users, "<metric>@<k>": mean, ...}``.

    Returns
    -------
    dict
        ``n_users`` (users with a target), one float per metric and K, optional blocks above.
    """
    rel, n_t = relevance(recs, targets)
    recs = np.asarray(recs, dtype=np.int64)
    out: dict[str, Any] = {"n_users": int((n_t > 0).sum())}
    per_user: dict[str, np.ndarray] = {}
    for k in ks:
        for name in metrics:
            per_user[f"{name}@{k}"] = values = metric_at_k(name, rel, n_t, k)
            out[f"{name}@{k}"] = mean_metric(values)
    evaluated = n_t > 0
    for k in ks:
        top = recs[evaluated, :k]
        if n_items is not None:
            out[f"coverage@{k}"] = beyond.catalogue_coverage(top, n_items)
            out[f"gini@{k}"] = beyond.exposure_gini(top, n_items)
        if train_counts is not None:
            out[f"novelty@{k}"] = mean_metric(beyond.novelty(top, train_counts))
            out[f"popularity@{k}"] = mean_metric(beyond.average_popularity(top, train_counts))
        if item_categories is not None:
            out[f"diversity@{k}"] = mean_metric(beyond.intra_list_diversity(top, item_categories))
        if item_brands is not None:
            out[f"brand_exposure@{k}"] = beyond.exposure_by_brand(top, item_brands)
    if segments:
        out["segments"] = {}
        for seg_name, labels in segments.items():
            block: dict[str, dict[str, float]] = {}
            for key, values in per_user.items():
                for label, stat in by_segment(values, labels).items():
                    block.setdefault(label, {"n": stat["n"]})[key] = stat["mean"]
            out["segments"][seg_name] = block
    return out
