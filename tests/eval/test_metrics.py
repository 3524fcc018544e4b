"""Ranking metrics, tie rules and the aggregator on hand-computed cases (arithmetic in comments).

Discounts used below: 1/log2(2) = 1, 1/log2(3) = 0.630930, 1/log2(4) = 0.5, 1/log2(5) = 0.430677,
1/log2(6) = 0.386853.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from shopflow.eval.metrics import (
    evaluate_topk,
    hit_ndcg_from_scores,
    hit_rate_at_k,
    map_at_k,
    mean_metric,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    rank_of_target,
    recall_at_k,
    relevance,
)

D2, D3, D4, D5 = 1 / math.log2(3), 1 / math.log2(4), 1 / math.log2(5), 1 / math.log2(6)

# user 0: target 1 at rank 2; user 1: no hit; user 2: target at rank 1 of a list padded with -1;
# user 3: no target (-1) -> NaN everywhere.
LOO_RECS = np.array([[3, 1, 2, -1], [5, 6, 7, 8], [9, -1, -1, -1], [0, 1, 2, 3]])
LOO_TARGETS = np.array([1, 4, 9, -1])


def close(values: np.ndarray, expected: list[float]) -> None:
    np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6, equal_nan=True)


def test_one_target_per_user() -> None:
    nan = float("nan")
    # k=1: only user 2 hits (rank 1).
    close(hit_rate_at_k(LOO_RECS, LOO_TARGETS, 1), [0, 0, 1, nan])
    # k=3: user 0 hits at rank 2.
    close(hit_rate_at_k(LOO_RECS, LOO_TARGETS, 3), [1, 0, 1, nan])
    close(recall_at_k(LOO_RECS, LOO_TARGETS, 3), [1, 0, 1, nan])  # recall == HR with one target
    close(ndcg_at_k(LOO_RECS, LOO_TARGETS, 3), [D2, 0, 1, nan])  # 1/log2(3); ideal DCG = 1
    close(mrr_at_k(LOO_RECS, LOO_TARGETS, 3), [0.5, 0, 1, nan])
    close(
        precision_at_k(LOO_RECS, LOO_TARGETS, 3), [1 / 3, 0, 1 / 3, nan]
    )  # padding counts as miss
    close(map_at_k(LOO_RECS, LOO_TARGETS, 3), [0.5, 0, 1, nan])  # (1/2) / min(1, 3)


def test_k_larger_than_the_list() -> None:
    nan = float("nan")
    # lists are 4 wide, k = 10: the missing positions are misses, precision still divides by 10.
    close(hit_rate_at_k(LOO_RECS, LOO_TARGETS, 10), [1, 0, 1, nan])
    close(precision_at_k(LOO_RECS, LOO_TARGETS, 10), [0.1, 0, 0.1, nan])
    close(ndcg_at_k(LOO_RECS, LOO_TARGETS, 10), [D2, 0, 1, nan])
    # two targets {3, 8}, list [7, 3], k = 5: hit at rank 2.
    recs, targets = np.array([[7, 3]]), [np.array([3, 8])]
    close(recall_at_k(recs, targets, 5), [0.5])
    close(precision_at_k(recs, targets, 5), [0.2])
    # DCG = 1/log2(3); ideal over min(2, 5) = 2 hits: 1 + 1/log2(3) -> 0.630930 / 1.630930.
    close(ndcg_at_k(recs, targets, 5), [D2 / (1 + D2)])
    close(map_at_k(recs, targets, 5), [0.25])  # (1/2) / min(2, 5)
    close(mrr_at_k(recs, targets, 5), [0.5])


def test_multiple_targets() -> None:
    recs = np.array([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]])
    targets = [np.array([2, 5, 9]), np.array([11])]  # user 0 hits at ranks 2 and 5; user 1 never
    close(hit_rate_at_k(recs, targets, 5), [1, 0])
    close(recall_at_k(recs, targets, 5), [2 / 3, 0])
    close(precision_at_k(recs, targets, 5), [0.4, 0])
    # DCG = 1/log2(3) + 1/log2(6) = 1.017783; ideal over 3 hits = 1 + 0.630930 + 0.5 = 2.130930.
    close(ndcg_at_k(recs, targets, 5), [(D2 + D5) / (1 + D2 + D3), 0])
    close(mrr_at_k(recs, targets, 5), [0.5, 0])
    close(map_at_k(recs, targets, 5), [(1 / 2 + 2 / 5) / 3, 0])  # precision at hits / min(3, 5)
    # k = 3: only rank 2 counts; ideal over min(3, 3) = 3 hits.
    close(recall_at_k(recs, targets, 3), [1 / 3, 0])
    close(ndcg_at_k(recs, targets, 3), [D2 / (1 + D2 + D3), 0])
    close(map_at_k(recs, targets, 3), [(1 / 2) / 3, 0])
    # k = 1: nothing.
    close(ndcg_at_k(recs, targets, 1), [0, 0])
    # ideal DCG is capped at k: two targets, both hit in a top-1? impossible; top-2 both hit -> 1.
    close(ndcg_at_k(np.array([[4, 5, 6]]), [np.array([4, 5, 6, 7])], 2), [1.0])


def test_target_sets_duplicates_and_padding() -> None:
    recs = np.array([[1, 2, 3], [4, 5, 6]])
    # duplicates count once: {2, 5} -> recall 1/2 at k=3 for user 0; padded 2-D gives the same.
    as_lists = [np.array([2, 2, 5]), np.array([], dtype=np.int64)]
    as_matrix = np.array([[2, 5, -1], [-1, -1, -1]])
    for targets in (as_lists, as_matrix):
        rel, n_t = relevance(recs, targets)
        assert rel.tolist() == [[False, True, False], [False, False, False]]
        assert n_t.tolist() == [2, 0]
        close(recall_at_k(recs, targets, 3), [0.5, float("nan")])
    # a -1 in recs never matches a -1 target.
    rel, _ = relevance(np.array([[-1, 7]]), np.array([-1]))
    assert not rel.any()


def test_mean_skips_users_without_targets() -> None:
    assert mean_metric(np.array([1.0, 0.0, float("nan")])) == 0.5
    assert math.isnan(mean_metric(np.array([float("nan")])))
    assert math.isnan(mean_metric(np.array([])))


def test_invalid_input_is_refused() -> None:
    with pytest.raises(ValueError, match="repeats an item"):
        hit_rate_at_k(np.array([[1, 2, 1]]), np.array([1]), 3)
    hit_rate_at_k(np.array([[1, -1, -1]]), np.array([1]), 3)  # repeated padding is fine
    with pytest.raises(ValueError, match="2-D"):
        hit_rate_at_k(np.array([1, 2]), np.array([1]), 3)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(LOO_RECS, LOO_TARGETS, 0)
    with pytest.raises(ValueError, match="targets for"):
        ndcg_at_k(LOO_RECS, np.array([1, 2]), 3)


# -- ties ------------------------------------------------------------------------------------------
TIE_SCORES = np.array(
    [
        [0.5, 0.9, 0.5, 0.5, 0.1],  # target 0: 1 greater (0.9), 2 equal others (items 2, 3)
        [0.2, 0.1, 0.3, 0.0, 0.0],  # target 2: alone at the top
        [1.0, -np.inf, 2.0, 0.0, 0.0],  # target 1 masked (-inf): never a hit
    ]
)
TIE_TARGETS = np.array([0, 2, 1])


def test_rank_of_target_tie_rules() -> None:
    close(rank_of_target(TIE_SCORES, TIE_TARGETS), [3, 0, 5])  # pessimistic: 1 + 2 equal
    close(rank_of_target(TIE_SCORES, TIE_TARGETS, ties="optimistic"), [1, 0, 5])
    close(rank_of_target(TIE_SCORES, TIE_TARGETS, ties="expected"), [2, 0, 5])  # 1 + 2/2
    with pytest.raises(ValueError, match="tie rule"):
        rank_of_target(TIE_SCORES, TIE_TARGETS, ties="random")


def test_hit_ndcg_from_scores_tie_rules() -> None:
    # row 0, k = 2: the target is equally likely at 0-based positions 1, 2, 3.
    # expected: HR = 1/3 (only position 1 < 2), NDCG = (1/log2(3)) / 3.
    hr, nd = hit_ndcg_from_scores(TIE_SCORES, TIE_TARGETS, 2, ties="expected")
    close(hr, [1 / 3, 1, 0])
    close(nd, [D2 / 3, 1, 0])
    hr, nd = hit_ndcg_from_scores(TIE_SCORES, TIE_TARGETS, 2, ties="pessimistic")  # position 3
    close(hr, [0, 1, 0])
    close(nd, [0, 1, 0])
    hr, nd = hit_ndcg_from_scores(TIE_SCORES, TIE_TARGETS, 2, ties="optimistic")  # position 1
    close(hr, [1, 1, 0])
    close(nd, [D2, 1, 0])
    # k = 4 (and k larger than the catalogue): positions 1, 2, 3 all count.
    # NDCG = (1/log2(3) + 1/log2(4) + 1/log2(5)) / 3 = (0.630930 + 0.5 + 0.430677) / 3 = 0.520536.
    for k in (4, 50):
        hr, nd = hit_ndcg_from_scores(TIE_SCORES, TIE_TARGETS, k, ties="expected")
        close(hr, [1, 1, 0])
        close(nd, [(D2 + D3 + D4) / 3, 1, 0])


def test_expected_tie_rule_is_the_mean_over_tie_orders() -> None:
    # brute force: break ties by every permutation of tied items, average HR/NDCG of the list.
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 3, size=(40, 8)).astype(np.float64)
    targets = rng.integers(0, 8, size=40)
    hr, nd = hit_ndcg_from_scores(scores, targets, 3, ties="expected")
    for row in range(40):
        t = scores[row, targets[row]]
        greater = int((scores[row] > t).sum())
        n_equal = int((scores[row] == t).sum())
        positions = np.arange(greater, greater + n_equal)
        assert hr[row] == pytest.approx(np.mean(positions < 3))
        assert nd[row] == pytest.approx(
            np.mean(np.where(positions < 3, 1 / np.log2(positions + 2), 0.0))
        )


def test_list_order_decides_between_tied_items() -> None:
    # from a recs matrix the order given is the ranking: the same tie put either way changes NDCG.
    close(ndcg_at_k(np.array([[4, 7]]), np.array([7]), 2), [D2])
    close(ndcg_at_k(np.array([[7, 4]]), np.array([7]), 2), [1.0])


# -- the aggregator --------------------------------------------------------------------------------
def test_evaluate_topk() -> None:
    out = evaluate_topk(
        LOO_RECS,
        LOO_TARGETS,
        ks=(1, 3),
        metrics=("hit_rate", "ndcg"),
        n_items=12,
        train_counts=np.arange(12),
        item_categories=np.arange(12) % 2,
        item_brands=["a"] * 6 + ["b"] * 6,
        segments={"group": np.array(["x", "x", "y", "y"], dtype=object)},
    )
    assert out["n_users"] == 3  # user 3 has no target
    assert out["hit_rate@1"] == pytest.approx(1 / 3)  # users 0..2: 0, 0, 1
    assert out["hit_rate@3"] == pytest.approx(2 / 3)
    assert out["ndcg@3"] == pytest.approx((D2 + 0 + 1) / 3)
    # beyond-accuracy over the evaluated users' lists only (users 0..2), top 3: items
    # {3, 1, 2} {5, 6, 7} {9} -> 7 distinct of 12.
    assert out["coverage@3"] == pytest.approx(7 / 12)
    # popularity = item id here: (3+1+2)/3 = 2, (5+6+7)/3 = 6, 9 -> mean 17/3.
    assert out["popularity@3"] == pytest.approx(17 / 3)
    # categories = id % 2: [1, 1, 0] -> 2 of 3 pairs differ; [1, 0, 1] -> 2/3; [1] -> NaN.
    assert out["diversity@3"] == pytest.approx(2 / 3)
    # brand a = items 0..5: slots 3, 1, 2, 5 of 7 -> 4/7.
    assert out["brand_exposure@3"] == pytest.approx({"a": 4 / 7, "b": 3 / 7})
    seg = out["segments"]["group"]
    assert seg["x"] == pytest.approx(
        {"n": 2, "hit_rate@1": 0.0, "hit_rate@3": 0.5, "ndcg@1": 0.0, "ndcg@3": D2 / 2}
    )
    assert seg["y"]["n"] == 1 and seg["y"]["ndcg@3"] == 1.0  # the NaN user is left out
    with pytest.raises(ValueError, match="unknown metric"):
        evaluate_topk(LOO_RECS, LOO_TARGETS, metrics=("auc",))
