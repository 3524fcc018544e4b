"""Protocols on tiny data whose answer is known exactly."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.eval.split import leave_one_out, sampled_negatives, time_split
from shopflow.features.sequences import InteractionData
from shopflow.store.idmap import IdMap


def lists(arrays: list[np.ndarray]) -> list[list[int]]:
    return [a.tolist() for a in arrays]


@pytest.fixture
def sequences() -> InteractionData:
    # u0: 5 items, u1: 3 items, u2: 2 items (too short to evaluate)
    seqs = [np.array([0, 1, 2, 3, 4]), np.array([5, 6, 7]), np.array([1, 2])]
    ts = [np.arange(5, dtype=float), np.arange(3, dtype=float) + 10, np.array([1.0, 2.0])]
    kinds = [
        np.array(["view"] * 4 + ["purchase"], dtype=object),
        np.array(["view", "add_to_cart", "view"], dtype=object),
        np.array(["view", "view"], dtype=object),
    ]
    return InteractionData(
        "toy", IdMap(["u0", "u1", "u2"]), IdMap([str(i) for i in range(8)]), seqs, ts, kinds
    )


def test_leave_one_out(sequences: InteractionData) -> None:
    s = leave_one_out(sequences)
    assert s.users.tolist() == [0, 1]
    assert lists(s.train.sequences) == [[0, 1, 2], [5], [1, 2]]  # u2 keeps everything
    assert lists(s.valid_histories) == [[0, 1, 2], [5]]
    assert s.valid_targets.tolist() == [3, 6]
    assert lists(s.test_histories) == [[0, 1, 2, 3], [5, 6]]
    assert s.test_targets.tolist() == [4, 7]
    assert s.train.timestamps is not None and s.train.event_types is not None
    assert lists(s.train.timestamps) == [[0.0, 1.0, 2.0], [10.0], [1.0, 2.0]]
    assert lists(s.train.event_types) == [["view"] * 3, ["view"], ["view", "view"]]
    assert s.train.users == sequences.users and s.train.items == sequences.items
    assert lists(s.train_with_validation().sequences) == [[0, 1, 2, 3], [5, 6], [1, 2]]
    assert sequences.sequences[0].tolist() == [0, 1, 2, 3, 4]  # input untouched
    assert "excluding" in s.protocol or "excluded" in s.protocol


def test_leave_one_out_min_len(sequences: InteractionData) -> None:
    s = leave_one_out(sequences, min_len=4)
    assert s.users.tolist() == [0]
    assert lists(s.train.sequences) == [[0, 1, 2], [5, 6, 7], [1, 2]]
    with pytest.raises(ValueError, match="at least 3"):
        leave_one_out(sequences, min_len=2)


@pytest.fixture
def log() -> InteractionData:
    seqs = [np.array([0, 1, 2, 3]), np.array([4, 4, 5]), np.array([6, 7]), np.array([1])]
    ts = [
        np.array([10.0, 20, 30, 40]),
        np.array([5.0, 35, 36]),
        np.array([31.0, 50]),
        np.array([12.0]),
    ]
    kinds = [
        np.array(["view", "view", "purchase", "view"], dtype=object),
        np.array(["view", "add_to_cart", "purchase"], dtype=object),
        np.array(["view", "view"], dtype=object),
        np.array(["view"], dtype=object),
    ]
    return InteractionData(
        "log", IdMap(["a", "b", "c", "d"]), IdMap([str(i) for i in range(8)]), seqs, ts, kinds
    )


def test_time_split(log: InteractionData) -> None:
    s = time_split(log, cutoff=30.0)  # ts < 30 trains; an event at exactly 30 is a test event
    assert lists(s.train.sequences) == [[0, 1], [4], [], [1]]
    assert s.users.tolist() == [0, 1, 2]  # d has no test event
    assert s.cold.tolist() == [False, False, True]  # c has no training event
    assert lists(s.histories) == [[0, 1], [4], []]
    assert lists(s.targets) == [[2, 3], [4, 5], [6, 7]]
    assert s.event_users.tolist() == [0, 0, 1, 1, 2, 2]
    assert s.event_items.tolist() == [2, 3, 4, 5, 6, 7]
    assert s.event_timestamps.tolist() == [30, 40, 35, 36, 31, 50]
    assert s.event_types is not None
    assert s.event_types.tolist() == ["purchase", "view", "add_to_cart", "purchase", "view", "view"]
    # each event's history is everything of the user before it.
    assert lists(s.event_histories) == [[0, 1], [0, 1, 2], [4], [4, 4], [], [6]]
    assert s.replay_order().tolist() == [0, 4, 2, 3, 1, 5]  # ts 30, 31, 35, 36, 40, 50
    assert s.train.event_types is not None
    assert lists(s.train.event_types) == [["view", "view"], ["view"], [], ["view"]]


def test_time_split_drop_repeats(log: InteractionData) -> None:
    s = time_split(log, cutoff=30.0, drop_repeats=True)
    # b's test event on item 4 repeats its training item: dropped; the history keeps it.
    assert lists(s.targets) == [[2, 3], [5], [6, 7]]
    assert s.event_items.tolist() == [2, 3, 5, 6, 7]
    assert lists(s.event_histories) == [[0, 1], [0, 1, 2], [4, 4], [], [6]]


def test_time_split_by_quantile(log: InteractionData) -> None:
    # all ts sorted: 5 10 12 20 30 | 31 35 36 40 50 -> median (linear) = (30 + 31) / 2 = 30.5
    s = time_split(log, quantile=0.5)
    assert s.cutoff == 30.5
    assert lists(s.train.sequences) == [[0, 1, 2], [4], [], [1]]
    assert lists(s.targets) == [[3], [4, 5], [6, 7]]


def test_time_split_refuses_bad_input(log: InteractionData, sequences: InteractionData) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        time_split(log)
    with pytest.raises(ValueError, match="exactly one"):
        time_split(log, 1.0, quantile=0.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        time_split(log, quantile=1.0)
    no_ts = sequences.with_sequences(sequences.sequences)
    with pytest.raises(ValueError, match="no timestamps"):
        time_split(no_ts, 1.0)
    shuffled = log.with_sequences(log.sequences, [t[::-1] for t in log.timestamps or []])
    with pytest.raises(ValueError, match="not in time order"):
        time_split(shuffled, 30.0)


def test_sampled_negatives() -> None:
    histories = [np.array([0, 1, 2]), np.array([5])]
    targets = np.array([3, 6])
    neg = sampled_negatives(10, histories, targets, n=5, seed=0)
    assert neg.shape == (2, 5)
    for row, (hist, t) in enumerate(zip(histories, targets, strict=True)):
        assert len(set(neg[row].tolist())) == 5
        assert not set(neg[row].tolist()) & {*hist.tolist(), int(t)}
    assert (sampled_negatives(10, histories, targets, n=5, seed=0) == neg).all()
    # u0 may only draw from {4, 5, 6, 7, 8, 9}: asking for all 6 gives exactly that set.
    every = sampled_negatives(10, histories[:1], targets[:1], n=6, seed=1)
    assert sorted(every[0].tolist()) == [4, 5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="only 6 items left"):
        sampled_negatives(10, histories[:1], targets[:1], n=7)
