"""Beyond-accuracy metrics on hand-computed cases (arithmetic in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shopflow.eval.beyond import (
    average_popularity,
    catalogue_coverage,
    category_codes,
    exposure_by_brand,
    exposure_counts,
    exposure_gini,
    gini,
    intra_list_diversity,
    item_counts,
    novelty,
    self_information,
)
from shopflow.features.sequences import InteractionData
from shopflow.store.idmap import IdMap


def test_coverage_and_exposure_gini() -> None:
    recs = np.array([[0, 1], [0, 2]])
    assert exposure_counts(recs, 4).tolist() == [2, 1, 1, 0]
    assert catalogue_coverage(recs, 4) == 0.75  # items 0, 1, 2 of 4
    # sorted exposure [0, 1, 1, 2], n = 4, total 4: (-3*0 - 1*1 + 1*1 + 3*2) / (4*4) = 6/16.
    assert exposure_gini(recs, 4) == pytest.approx(0.375)
    # padding is ignored: one slot on item 0 of 2 -> coverage 1/2, Gini of [0, 1] = 1/(2*1) = 0.5.
    padded = np.array([[0, -1], [-1, -1]])
    assert catalogue_coverage(padded, 2) == 0.5
    assert exposure_gini(padded, 2) == pytest.approx(0.5)


def test_gini_extremes() -> None:
    assert gini(np.array([3, 3, 3, 3])) == 0.0
    assert gini(np.array([0, 0, 0, 4])) == pytest.approx(0.75)  # (n-1)/n
    assert gini(np.zeros(5)) == 0.0
    assert gini(np.array([1, 0, 3])) == gini(np.array([3, 1, 0]))  # order does not matter


def test_category_codes() -> None:
    cats = [["a", "b"], [], ["c", "b"]]
    assert category_codes(cats).tolist() == [0, -1, 0]  # leaf "b", none, leaf "b"
    assert category_codes(cats, which=0).tolist() == [0, -1, 1]  # "a", none, "c"
    with pytest.raises(ValueError, match="no item categories"):
        category_codes(None)


def test_intra_list_diversity() -> None:
    cats = np.array([0, 0, 1, -1, 2])
    recs = np.array([[0, 1, 2, 3], [0, 1, -1, -1], [4, -1, -1, -1], [2, 4, 0, -1]])
    # row 0: known items 0, 1, 2 (cats 0, 0, 1) -> 3 pairs, 1 same -> 1 - 1/3; item 3 unknown.
    # row 1: cats 0, 0 -> 1 pair, same -> 0.  row 2: one item -> NaN.  row 3: all differ -> 1.
    np.testing.assert_allclose(
        intra_list_diversity(recs, cats), [2 / 3, 0.0, np.nan, 1.0], equal_nan=True
    )


def test_novelty_and_popularity() -> None:
    counts = np.array([4, 2, 1, 1])  # total 8 -> p = 1/2, 1/4, 1/8, 1/8 -> 1, 2, 3, 3 bits
    np.testing.assert_allclose(self_information(counts, smoothing=0), [1, 2, 3, 3])
    recs = np.array([[0, 1], [2, -1], [-1, -1]])
    np.testing.assert_allclose(
        novelty(recs, counts, smoothing=0), [1.5, 3.0, np.nan], equal_nan=True
    )
    # smoothing 1: (c + 1) / (8 + 4) = 5/12, 3/12, 2/12, 2/12.
    np.testing.assert_allclose(
        self_information(counts), [-math.log2(5 / 12), 2.0, -math.log2(2 / 12), -math.log2(2 / 12)]
    )
    assert np.isfinite(self_information(np.array([3, 0]))).all()  # unseen items stay finite
    np.testing.assert_allclose(average_popularity(recs, counts), [3.0, 1.0, np.nan], equal_nan=True)


def test_exposure_by_brand() -> None:
    brands = ["A", "B", None, "A"]
    recs = np.array([[0, 1], [3, 2], [0, -1]])
    # 5 slots: items 0, 1, 3, 2, 0 -> A: 0, 3, 0 = 3/5; B 1/5; unknown (item 2) 1/5.
    shares = exposure_by_brand(recs, brands)
    assert shares == pytest.approx({"A": 0.6, "(unknown)": 0.2, "B": 0.2})
    assert list(shares) == ["A", "(unknown)", "B"]  # largest first, then by name
    assert exposure_by_brand(np.array([[-1]]), brands) == {}


def test_item_counts() -> None:
    data = InteractionData(
        "toy", IdMap(["u", "v"]), IdMap(list("abcd")), [np.array([0, 1, 1]), np.array([3])]
    )
    assert item_counts(data).tolist() == [1, 2, 0, 1]
