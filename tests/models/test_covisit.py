"""Co-visitation: hand-computed pair weights, online updates, bought-together, real Beauty data."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from shopflow.features.sequences import InteractionData
from shopflow.models.covisit import CoVisitation
from shopflow.store.idmap import IdMap
from tests.conftest import dataset_path

PLAIN = {"pop_alpha": 0.0, "pop_beta": 0.0, "pop_tiebreak": 0.0, "recency_decay": 1.0}
WEIGHTS = {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0}


def _data(seqs, n_items, types=None, times=None) -> InteractionData:
    return InteractionData(
        "toy",
        IdMap([f"u{i}" for i in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(n_items)]),
        [np.array(s, dtype=np.int64) for s in seqs],
        timestamps=None if times is None else [np.array(t, dtype=float) for t in times],
        event_types=None if types is None else [np.array(t, dtype=object) for t in types],
    )


def test_pair_weights_by_hand() -> None:
    # 0 then 1 then 2: gap 1 weighs 1, gap 2 weighs gap_decay; backward pairs weigh 0.25 of that.
    model = CoVisitation(window=2, gap_decay=0.5, backward_weight=0.25, **PLAIN)
    model.fit(_data([[0, 1, 2]], 4))
    expected = np.array(
        [
            [0, 1.0, 0.5, 0],
            [0.25, 0, 1.0, 0],
            [0.125, 0.25, 0, 0],
            [0, 0, 0, 0],
        ]
    )
    np.testing.assert_allclose(model.table.toarray(), expected)
    # Scoring [0, 1] with recency 0.5: row 1 + 0.5 * row 0, seen items masked by recommend.
    model.config.recency_decay = 0.5
    np.testing.assert_allclose(model.score([np.array([0, 1])])[0], [0.25, 0.5, 1.25, 0])


def test_window_event_weights_and_time_window() -> None:
    model = CoVisitation(
        window=1, backward_weight=0.0, event_weights=WEIGHTS, time_window_seconds=100.0, **PLAIN
    )
    seqs = [[0, 1, 2, 3]]
    types = [["view", "purchase", "add_to_cart", "view"]]
    times = [[0.0, 50.0, 500.0, 550.0]]  # 1 → 2 is 450 s apart: outside the time window
    model.fit(_data(seqs, 4, types, times))
    assert model.pair_weight(0, 1) == 5.0  # weight of the later event (a purchase)
    assert model.pair_weight(1, 2) == 0.0
    assert model.pair_weight(2, 3) == 1.0
    assert model.pair_weight(0, 2) == 0.0  # beyond window=1


def test_popularity_normalisation() -> None:
    # 0 is followed by 1 twice and by 2 once, but 1 is very popular: with pop_alpha=1 2 wins.
    seqs = [[0, 1], [0, 1], [0, 2]] + [[1, 3]] * 20
    plain = CoVisitation(window=1, backward_weight=0.0, pop_alpha=0.0, pop_tiebreak=0.0)
    normed = CoVisitation(window=1, backward_weight=0.0, pop_alpha=1.0, pop_tiebreak=0.0)
    assert plain.fit(_data(seqs, 4)).recommend([np.array([0])], k=1)[0][0, 0] == 1
    assert normed.fit(_data(seqs, 4)).recommend([np.array([0])], k=1)[0][0, 0] == 2


def test_update_raises_the_pair_by_exactly_the_configured_weight() -> None:
    model = CoVisitation(
        window=2,
        gap_decay=0.5,
        forward_weight=1.0,
        backward_weight=0.25,
        event_weights=WEIGHTS,
        **PLAIN,
    )
    model.fit(_data([[0, 1, 2], [1, 3]], 5))
    before_score = model.score([np.array([1])])[0]
    before = {p: model.pair_weight(*p) for p in [(1, 3), (0, 3), (3, 1), (3, 0), (2, 3)]}
    model.update(np.array([2, 0, 1]), 3, "purchase")
    assert model.pair_weight(1, 3) == before[(1, 3)] + 5.0  # gap 1, forward
    assert model.pair_weight(0, 3) == before[(0, 3)] + 5.0 * 0.5  # gap 2
    assert model.pair_weight(3, 1) == before[(3, 1)] + 5.0 * 0.25  # backward
    assert model.pair_weight(3, 0) == before[(3, 0)] + 5.0 * 0.5 * 0.25
    assert model.pair_weight(2, 3) == before[(2, 3)]  # gap 3 > window
    after_score = model.score([np.array([1])])[0]
    assert after_score[3] == pytest.approx(before_score[3] + 5.0)
    np.testing.assert_allclose(np.delete(after_score, 3), np.delete(before_score, 3))


def test_updates_equal_a_refit() -> None:
    """Replaying the last events through update() gives the tables a fit on everything gives."""
    rng = np.random.default_rng(1)
    seqs = [rng.integers(0, 15, size=int(rng.integers(2, 9))).tolist() for _ in range(40)]
    types = [rng.choice(["view", "add_to_cart", "purchase"], size=len(s)).tolist() for s in seqs]
    cfg = dict(window=3, gap_decay=0.7, backward_weight=0.4, event_weights=WEIGHTS, neighbours=50)
    full = CoVisitation(**cfg).fit(_data(seqs, 15, types))
    online = CoVisitation(**cfg).fit(_data([s[:-2] for s in seqs], 15, [t[:-2] for t in types]))
    for s, t in zip(seqs, types, strict=True):
        for pos in range(len(s) - 2, len(s)):
            online.update(np.array(s[:pos]), s[pos], t[pos], types_before=np.array(t[:pos]))
    np.testing.assert_allclose(
        online.score([np.array([3, 4])]), full.score([np.array([3, 4])]), rtol=1e-5
    )
    online.compact()
    np.testing.assert_allclose(online.table.toarray(), full.table.toarray(), rtol=1e-5)
    np.testing.assert_allclose(online.bought.toarray(), full.bought.toarray(), rtol=1e-5)
    np.testing.assert_allclose(online.pop, full.pop)


def test_update_grows_the_catalogue_and_survives_save_load(tmp_path: Path) -> None:
    model = CoVisitation(**PLAIN).fit(_data([[0, 1], [1, 2]], 3))
    model.update(np.array([1]), 3, "purchase")  # item 3 is new; a purchase weighs 5
    assert model.n_items == 4 and model.score([np.array([1])]).shape == (1, 4)
    assert model.recommend([np.array([1])], k=1)[0][0, 0] == 3
    model.save(tmp_path / "cv")
    loaded = CoVisitation.load(tmp_path / "cv")
    assert loaded.n_items == 4 and loaded.pair_weight(1, 3) == model.pair_weight(1, 3)
    np.testing.assert_array_equal(loaded.score([np.array([1])]), model.score([np.array([1])]))


def test_viewed_together_and_bought_together_are_separate() -> None:
    # Views: 0 → 1 often. Purchases: 0 and 2 bought by the same users.
    seqs = [[0, 1, 2]] * 5 + [[0, 1]] * 5
    types = [["purchase", "view", "purchase"]] * 5 + [["view", "view"]] * 5
    model = CoVisitation(window=2, event_weights={"view": 1.0, "purchase": 1.0}, **PLAIN)
    model.fit(_data(seqs, 4, types))
    assert model.similar_items(0, k=1)[0][0] == 1
    ids, _ = model.complementary(0, k=3)
    assert ids[0] == 2 and ids[1] == -1  # only 2 was bought with 0; no padding with guesses
    assert model.pair_weight(0, 2, bought=True) == 5.0  # gap 1 among the purchases
    # Without event types there is one table, and complementary reads it.
    plain = CoVisitation(window=2, **PLAIN).fit(_data(seqs, 4))
    assert plain.bought is None and plain.complementary(0, k=1)[0][0] == 1


def test_neighbours_are_pruned_to_the_best() -> None:
    seqs = [[0, j] for j in range(1, 6) for _ in range(j)]  # 0 → j seen j times
    model = CoVisitation(window=1, neighbours=2, **PLAIN).fit(_data(seqs, 6))
    row = model.table[0].toarray()[0]
    assert np.flatnonzero(row).tolist() == [4, 5]
    assert isinstance(model.table, sp.csr_matrix)


def _read_s3rec(path: Path) -> tuple[list[np.ndarray], int]:
    seqs = [np.array(line.split()[1:], dtype=np.int64) - 1 for line in path.open()]
    return seqs, int(max(s.max() for s in seqs)) + 1


def _loo_ndcg10(score, hists, targets, n_items: int, batch: int = 1024) -> float:
    """NDCG@10 under full ranking with the history masked (ties: lower index first, as top_k)."""
    total = 0.0
    for s in range(0, len(hists), batch):
        h, t = hists[s : s + batch], targets[s : s + batch]
        scores = score(h)
        for row, hist in enumerate(h):
            scores[row, hist] = -np.inf
        target = scores[np.arange(len(h)), t][:, None]
        idx = np.arange(n_items)[None, :]
        rank = (scores > target).sum(1) + ((scores == target) & (idx < t[:, None])).sum(1)
        total += float(np.where(rank < 10, 1.0 / np.log2(rank + 2), 0.0).sum())
    return total / len(hists)


@pytest.mark.dataset
@pytest.mark.slow
def test_beauty_loo_beats_last_item_transitions() -> None:
    """Leave-one-out, full ranking, own history excluded; fit on all but the last two items."""
    seqs, n = _read_s3rec(dataset_path("amazon_beauty_s3rec") / "Beauty.txt")
    train = [s[:-2] for s in seqs]
    test_hists, test_targets = [s[:-1] for s in seqs], np.array([s[-1] for s in seqs])
    data = _data(train, n)
    start = time.perf_counter()
    model = CoVisitation().fit(data)
    ndcg = _loo_ndcg10(model.score, test_hists, test_targets, n)
    elapsed = time.perf_counter() - start
    # The plainest baseline: count of "a directly followed by b", scored from the last item.
    a = np.concatenate([s[:-1] for s in train])
    b = np.concatenate([s[1:] for s in train])
    trans = sp.csr_matrix((np.ones(len(a), np.float32), (a, b)), shape=(n, n))
    pop = np.bincount(np.concatenate(train), minlength=n)
    tiebreak = 1e-6 * pop / pop.max()

    def last_item(h):
        return trans[np.array([x[-1] for x in h])].toarray() + tiebreak

    baseline = _loo_ndcg10(last_item, test_hists, test_targets, n)
    assert baseline == pytest.approx(0.044, abs=0.002)
    assert ndcg >= 0.050 > baseline, (ndcg, baseline)
    assert elapsed < 60, elapsed
