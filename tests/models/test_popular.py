"""Popularity and trending: hand-computed counts and time decay."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.features.sequences import InteractionData
from shopflow.models.popular import Popular, Trending
from shopflow.store.idmap import IdMap

DAY = 86_400.0


def _data(seqs, types=None, times=None, n_items=4) -> InteractionData:
    return InteractionData(
        "toy",
        IdMap([f"u{i}" for i in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(n_items)]),
        [np.array(s, dtype=np.int64) for s in seqs],
        timestamps=None if times is None else [np.array(t, dtype=float) for t in times],
        event_types=None if types is None else [np.array(t, dtype=object) for t in types],
    )


def test_counts_weighted_by_event_type() -> None:
    data = _data([[0, 1, 1], [2, 1]], types=[["view", "purchase", "view"], ["add_to_cart", "view"]])
    weights = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}
    scores = Popular(event_weights=weights).fit(data).score([np.array([], dtype=np.int64)])
    np.testing.assert_array_equal(scores[0], [1.0, 7.0, 3.0, 0.0])
    unweighted = Popular(event_weights=None).fit(data).score([np.array([0])])
    np.testing.assert_array_equal(unweighted[0], [1.0, 3.0, 1.0, 0.0])


def test_popular_is_the_same_for_everyone_minus_their_history() -> None:
    model = Popular().fit(_data([[0, 1, 1], [2, 1], [2]]))
    ids, _ = model.recommend([np.array([1]), np.array([], dtype=np.int64)], k=2)
    assert ids.tolist() == [[2, 0], [1, 2]]


def test_trending_halves_per_half_life() -> None:
    latest = 1_700_000_000.0
    # item 0: one event now; item 1: two events one half-life ago; item 2: four events two ago.
    seqs = [[0], [1, 1], [2, 2, 2, 2]]
    times = [[latest], [latest - 7 * DAY] * 2, [latest - 14 * DAY] * 4]
    model = Trending(half_life_days=7.0).fit(_data(seqs, times=times))
    np.testing.assert_allclose(model.score([np.array([3])])[0], [1.0, 1.0, 1.0, 0.0])
    assert model.reference_time == latest
    fast = Trending(half_life_days=1.0).fit(_data(seqs, times=times))
    assert fast.recommend([np.array([], dtype=np.int64)], k=1)[0][0, 0] == 0
    np.testing.assert_allclose(fast.score([np.array([], dtype=np.int64)])[0, 1], 2 * 0.5**7)


def test_trending_without_timestamps_is_popularity() -> None:
    data = _data([[0, 1, 1], [2, 1]])
    trending = Trending().fit(data).score([np.array([], dtype=np.int64)])
    popular = Popular().fit(data).score([np.array([], dtype=np.int64)])
    np.testing.assert_array_equal(trending, popular)


def test_scores_are_writable_copies() -> None:
    model = Popular().fit(_data([[0, 1]]))
    scores = model.score([np.array([0]), np.array([1])])
    scores[0, 1] = -1.0
    assert model.score([np.array([0])])[0, 1] == pytest.approx(1.0)
