"""Evaluation protocols (DESIGN.md §6): leave-one-out for Amazon benchmarks, time split for logs.

Both return plain arrays that line up with each other; the evaluation runner feeds the histories to
a model, ranks every item with the user's own history excluded, and scores the targets with
:mod:`shopflow.eval.metrics`. Sampled negatives exist only as the explicitly named
:func:`sampled_negatives`, never as a default: their numbers are not headlines.

Example
-------
>>> import numpy as np
>>> from shopflow.features.sequences import InteractionData
>>> from shopflow.store.idmap import IdMap
>>> d = InteractionData("toy", IdMap(["u"]), IdMap(list("abcd")), [np.array([0, 1, 2, 3])])
>>> s = leave_one_out(d)
>>> s.train.sequences[0].tolist(), s.valid_targets.tolist(), s.test_histories[0].tolist()
([0, 1], [2], [0, 1, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopflow.features.sequences import InteractionData

LOO_PROTOCOL = (
    "leave-one-out, full ranking: per user the last item is the test target and the one before it "
    "the validation target; every item is ranked, the user's own history excluded"
)


@dataclass(frozen=True)
class LeaveOneOutSplit:
    """The published leave-one-out protocol; arrays are aligned with ``users``.

    Attributes
    ----------
    train
        Same users, items and side data as the input; each evaluated user's sequence without its
        last two items. Users shorter than ``min_len`` keep their whole sequence (and are not
        evaluated).
    users
        Dense indices of the evaluated users, ascending (all users when every sequence is long
        enough, as in the S3-Rec data, where then ``users[i] == i``).
    valid_histories, valid_targets
        The train sequence and the second-to-last item.
    test_histories, test_targets
        Everything but the last item (train + validation item) and the last item.
    """

    train: InteractionData
    users: np.ndarray
    valid_histories: list[np.ndarray]
    valid_targets: np.ndarray
    test_histories: list[np.ndarray]
    test_targets: np.ndarray
    protocol: str = LOO_PROTOCOL

    def train_with_validation(self) -> InteractionData:
        """Training data that also holds each validation item (for a final refit before testing)."""
        seqs = list(self.train.sequences)
        for u, hist in zip(self.users, self.test_histories, strict=True):
            seqs[u] = hist
        return self.train.with_sequences(seqs)


def leave_one_out(data: InteractionData, min_len: int = 3) -> LeaveOneOutSplit:
    """Split each user's sequence into train / validation item / test item (oldest first).

    Parameters
    ----------
    data
        Per-user sequences in time order.
    min_len
        Users with fewer items (at least 3: one to train on, one to validate, one to test) keep
        their whole sequence in ``train`` and are left out of ``users`` and the evaluation arrays.
        Every user in the S3-Rec and UniSRec data has at least 5 items.

    Returns
    -------
    LeaveOneOutSplit
    """
    if min_len < 3:
        raise ValueError(
            f"min_len must be at least 3 (train, validation, test item), got {min_len}"
        )
    lengths = np.fromiter((len(s) for s in data.sequences), dtype=np.int64, count=data.n_users)
    users = np.flatnonzero(lengths >= min_len).astype(np.int64)
    long_enough = lengths >= min_len

    def cut(arrays: list[np.ndarray] | None) -> list[np.ndarray] | None:
        if arrays is None:
            return None
        return [a[:-2] if ok else a for a, ok in zip(arrays, long_enough, strict=True)]

    train_seqs = cut(data.sequences)
    assert train_seqs is not None
    train = data.with_sequences(train_seqs, cut(data.timestamps), cut(data.event_types))
    seqs = data.sequences
    return LeaveOneOutSplit(
        train=train,
        users=users,
        valid_histories=[train_seqs[u] for u in users],
        valid_targets=np.array([seqs[u][-2] for u in users], dtype=np.int64),
        test_histories=[seqs[u][:-1] for u in users],
        test_targets=np.array([seqs[u][-1] for u in users], dtype=np.int64),
    )


@dataclass(frozen=True)
class TimeSplit:
    """Train before a cutoff, test after it.

    Per-user arrays are aligned with ``users``; per-event arrays with each other (grouped by user
    ascending, time order within a user).

    Attributes
    ----------
    train
        Same users, items and side data; each sequence cut to its events with timestamp < ``cutoff``
        (users without such events get an empty sequence).
    cutoff
        Unix seconds; events at or after it are test events.
    users
        Dense indices of users with at least one test event, ascending.
    cold
        Per ``users`` entry: True when the user has no training event (a cold user; kept).
    histories
        Per ``users`` entry: the training sequence, what was known of the user at the cutoff.
    targets
        Per ``users`` entry: the items of the user's test events in time order (repeats kept unless
        ``drop_repeats``) — the target set of a one-shot top-K evaluation at the cutoff.
    event_users, event_items, event_timestamps, event_types
        One entry per test event (``event_types`` is None when the data has none).
    event_histories
        Per test event, every item of the user before that event (train + earlier test events,
        including dropped repeats): the state to replay through the online path.
    """

    train: InteractionData
    cutoff: float
    users: np.ndarray
    cold: np.ndarray
    histories: list[np.ndarray]
    targets: list[np.ndarray]
    event_users: np.ndarray
    event_items: np.ndarray
    event_timestamps: np.ndarray
    event_types: np.ndarray | None
    event_histories: list[np.ndarray]

    def replay_order(self) -> np.ndarray:
        """Indices of the test events in global time order (stable), for replaying the stream."""
        return np.argsort(self.event_timestamps, kind="stable")


def time_split(
    data: InteractionData,
    cutoff: float | None = None,
    *,
    quantile: float | None = None,
    drop_repeats: bool = False,
) -> TimeSplit:
    """Split an event log at a point in time.

    Parameters
    ----------
    data
        Sequences with ``timestamps`` (sorted within each user).
    cutoff
        Unix seconds; events with timestamp < cutoff train, the others test.
    quantile
        Instead of ``cutoff``: the cutoff is this quantile of all event timestamps (0.8 puts about
        the last 20 % of events in test; events tied with the cutoff go to test).
    drop_repeats
        Leave out of the test events (and targets) those whose item the user already had before
        that event — they cannot be hit when the user's history is excluded from ranking.
        Histories still contain every earlier event.

    Returns
    -------
    TimeSplit
    """
    if data.timestamps is None:
        raise ValueError(f"{data.name} has no timestamps: use leave_one_out for it")
    if (cutoff is None) == (quantile is None):
        raise ValueError("give exactly one of cutoff (unix seconds) or quantile")
    if quantile is not None:
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
        cutoff = float(np.quantile(np.concatenate(data.timestamps), quantile))
    assert cutoff is not None
    train_seqs, train_ts, train_kinds = [], [], []
    users, cold, histories, targets = [], [], [], []
    ev_users, ev_items, ev_ts, ev_kinds = [], [], [], []
    ev_hist: list[np.ndarray] = []
    for u, (seq, ts) in enumerate(zip(data.sequences, data.timestamps, strict=True)):
        if len(ts) > 1 and np.any(np.diff(ts) < 0):
            raise ValueError(f"{data.name}: timestamps of user {u} are not in time order")
        cut = int(np.searchsorted(ts, cutoff, side="left"))
        train_seqs.append(seq[:cut])
        train_ts.append(ts[:cut])
        kinds = data.event_types[u] if data.event_types is not None else None
        if kinds is not None:
            train_kinds.append(kinds[:cut])
        positions = np.arange(cut, len(seq))
        if drop_repeats:
            seen, keep = set(seq[:cut].tolist()), []
            for p in positions.tolist():
                if int(seq[p]) not in seen:
                    keep.append(p)
                seen.add(int(seq[p]))
            positions = np.asarray(keep, dtype=np.int64)
        if len(positions) == 0:
            continue
        users.append(u)
        cold.append(cut == 0)
        histories.append(seq[:cut])
        targets.append(seq[positions])
        ev_users.append(np.full(len(positions), u, dtype=np.int64))
        ev_items.append(seq[positions])
        ev_ts.append(ts[positions])
        if kinds is not None:
            ev_kinds.append(kinds[positions])
        ev_hist.extend(seq[:p] for p in positions)
    train = data.with_sequences(
        train_seqs, train_ts, train_kinds if data.event_types is not None else None
    )

    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

    return TimeSplit(
        train=train,
        cutoff=float(cutoff),
        users=np.asarray(users, dtype=np.int64),
        cold=np.asarray(cold, dtype=bool),
        histories=histories,
        targets=targets,
        event_users=cat(ev_users, np.int64),
        event_items=cat(ev_items, np.int64),
        event_timestamps=cat(ev_ts, np.float64),
        event_types=cat(ev_kinds, object) if data.event_types is not None else None,
        event_histories=ev_hist,
    )


def sampled_negatives(
    n_items: int,
    histories: list[np.ndarray],
    targets: np.ndarray,
    n: int = 100,
    seed: int = 0,
) -> np.ndarray:
    """Sampled-negative protocol (S3-Rec's "99 negatives" style), never a headline metric.

    For each user, ``n`` distinct items drawn uniformly from those neither in the history nor the
    target. Rank the target among ``[target, *negatives]`` with
    :func:`shopflow.eval.metrics.rank_of_target`.

    Returns
    -------
    np.ndarray
        int64 of shape (len(histories), n).
    """
    rng = np.random.default_rng(seed)
    out = np.empty((len(histories), n), dtype=np.int64)
    for row, (hist, target) in enumerate(zip(histories, targets, strict=True)):
        forbidden = np.union1d(np.asarray(hist, dtype=np.int64), [int(target)])
        if n_items - len(forbidden) < n:
            raise ValueError(
                f"user row {row}: only {n_items - len(forbidden)} items left to sample, asked {n}"
            )
        chosen: np.ndarray = np.empty(0, dtype=np.int64)
        while len(chosen) < n:
            draw = rng.integers(0, n_items, size=2 * n)
            draw = draw[~np.isin(draw, forbidden)]
            _, first = np.unique(np.concatenate([chosen, draw]), return_index=True)
            chosen = np.concatenate([chosen, draw])[np.sort(first)]
        out[row] = chosen[:n]
    return out
