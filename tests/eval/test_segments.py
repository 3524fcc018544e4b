"""Segment labels and per-segment averages."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.eval.segments import (
    bin_labels,
    by_segment,
    segment_by_bins,
    segment_cold_users,
    segment_targets_by_item_popularity,
    segment_users_by_history_length,
)


def test_bin_labels() -> None:
    assert bin_labels((0, 5, 10, 20)) == ["0-4", "5-9", "10-19", "20+"]
    assert bin_labels((0, 1, 10)) == ["0", "1-9", "10+"]
    with pytest.raises(ValueError, match="ascending"):
        bin_labels((5, 5))


def test_segment_labels() -> None:
    assert segment_by_bins(np.array([0, 1, 4, 5, 99]), (1, 5)).tolist() == [
        "<1",
        "1-4",
        "1-4",
        "5+",
        "5+",
    ]
    lengths = np.array([3, 4, 5, 12, 60])
    assert segment_users_by_history_length(lengths, (0, 5, 10)).tolist() == [
        "0-4",
        "0-4",
        "5-9",
        "10+",
        "10+",
    ]
    counts = np.array([0, 3, 50, 200])
    assert segment_targets_by_item_popularity(counts, np.array([0, 1, 2, 3, 1])).tolist() == [
        "0",
        "1-9",
        "10-99",
        "100+",
        "1-9",
    ]
    with pytest.raises(ValueError, match="one target per user"):
        segment_targets_by_item_popularity(counts, np.array([[0, 1]]))
    assert segment_cold_users(np.array([True, False])).tolist() == ["cold", "warm"]


def test_by_segment_orders_bins_and_skips_nan() -> None:
    values = np.array([1.0, np.nan, 0.0, 0.5, 0.25])
    labels = np.array(["10+", "0-4", "0-4", "<0", "10+"], dtype=object)
    out = by_segment(values, labels)
    assert list(out) == ["<0", "0-4", "10+"]  # bin order, not alphabetical
    assert out["0-4"] == {"n": 1, "mean": 0.0}  # the NaN user is not counted
    assert out["10+"] == {"n": 2, "mean": 0.625}
    only_nan = by_segment(np.array([np.nan]), np.array(["x"]))
    assert only_nan["x"]["n"] == 0 and np.isnan(only_nan["x"]["mean"])
    with pytest.raises(ValueError, match="labels"):
        by_segment(values, labels[:2])
