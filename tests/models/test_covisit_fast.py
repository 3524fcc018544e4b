"""Co-visitation's request and compaction paths equal the straightforward computations.

``score_items`` (one history, only its rows read) must give the entries of ``score`` that pairs
make; the compaction (only rows over the cap pruned) must give the table a full re-prune gives.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import scipy.sparse as sp

from shopflow.features.sequences import InteractionData
from shopflow.models.base import prune_rows
from shopflow.models.covisit import CoVisitation
from shopflow.store.idmap import IdMap


def fitted(seed: int, n_items: int = 50, neighbours: int = 6) -> CoVisitation:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, n_items, int(rng.integers(2, 15))) for _ in range(80)]
    types = [rng.choice(["view", "add_to_cart", "purchase"], len(s)) for s in seqs]
    data = InteractionData(
        "toy",
        IdMap([f"u{i}" for i in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(n_items)]),
        seqs,
        event_types=[t.astype(object) for t in types],
    )
    return CoVisitation(neighbours=neighbours).fit(data)


@pytest.mark.parametrize("seed", range(8))
def test_score_items_equals_score_where_pairs_exist(seed: int) -> None:
    model = fitted(seed)
    rng = np.random.default_rng(100 + seed)
    for _ in range(30):  # online updates: the delta tables count too
        hist = rng.integers(0, 50, 5)
        model.update(hist, int(rng.integers(0, 50)), "view", types_before=np.array(["view"] * 5))
    for _ in range(10):
        history = rng.integers(0, 50, int(rng.integers(1, 30)))
        items, scores = model.score_items(history)
        full = model.score([history])[0]
        tiebreak = model.config.pop_tiebreak * model.pop / model.pop.max()
        has_pairs = np.flatnonzero(full - tiebreak > 1e-7)
        assert set(has_pairs.tolist()) <= set(items.tolist())
        assert np.allclose(scores, full[items], rtol=1e-5, atol=1e-9)


def reference_merge(model: CoVisitation, table: sp.csr_matrix, delta: dict) -> sp.csr_matrix:
    """The compaction as first written: everything summed, every row pruned."""
    coo = table.tocoo()
    rows = np.concatenate([coo.row, [a for a, r in delta.items() for _ in r]]).astype(int)
    cols = np.concatenate([coo.col, [b for r in delta.values() for b in r]]).astype(int)
    vals = np.concatenate([coo.data, [v for r in delta.values() for v in r.values()]])
    mat = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=table.shape)
    mat.sum_duplicates()
    key = mat.data * model._col_factor()[mat.indices]
    return prune_rows(mat, model.config.neighbours, key).astype(np.float32)


@pytest.mark.parametrize("seed", range(10))
def test_compaction_equals_a_full_re_prune(seed: int) -> None:
    model = fitted(seed)
    rng = np.random.default_rng(seed)
    delta: dict[int, dict[int, float]] = defaultdict(dict)
    for _ in range(120):
        a, b = (int(x) for x in rng.integers(0, 50, 2))
        delta[a][b] = delta[a].get(b, 0.0) + float(rng.random())
    got = model._merge(model.table, delta)
    ref = reference_merge(model, model.table, delta)
    assert (np.diff(got.indptr) <= model.config.neighbours).all()
    assert np.allclose(got.toarray(), ref.toarray(), atol=1e-6)


def test_compact_keeps_the_scores_of_the_online_updates() -> None:
    model = fitted(0, neighbours=200)  # no row reaches the cap: compaction must change nothing
    rng = np.random.default_rng(5)
    for _ in range(50):
        model.update(rng.integers(0, 50, 4), int(rng.integers(0, 50)), "purchase",
                     types_before=np.array(["purchase"] * 4))  # fmt: skip
    histories = [rng.integers(0, 50, 6) for _ in range(5)]
    before = model.score(histories)
    model.compact()
    assert not model._delta
    assert np.allclose(model.score(histories), before, rtol=1e-5)


def test_a_compaction_in_three_steps_never_hides_an_update() -> None:
    """Updates made while a compaction runs count at once and stay online after it; the grown
    catalogue survives the swap."""
    rng = np.random.default_rng(9)
    first = [(rng.integers(0, 50, 5), int(rng.integers(0, 50))) for _ in range(40)]
    meanwhile = [(rng.integers(0, 50, 5), int(rng.integers(0, 55))) for _ in range(30)]  # grows
    histories = [rng.integers(0, 50, 6) for _ in range(5)]
    buy = np.array(["purchase"] * 5)
    # the reference learns it all without compacting; no row reaches the cap, so pruning (tested
    # above) changes nothing here
    model, reference = fitted(1, neighbours=200), fitted(1, neighbours=200)
    for hist, item in first + meanwhile:
        reference.update(hist, item, "purchase", types_before=buy)
    for hist, item in first:
        model.update(hist, item, "purchase", types_before=buy)
    build = model.compact_start()
    assert model.compacting
    for hist, item in meanwhile:
        model.update(hist, item, "purchase", types_before=buy)
    during = model.score(histories)
    assert np.allclose(during, reference.score(histories), rtol=1e-5)
    finish = build()
    assert np.allclose(model.score(histories), during, rtol=1e-5)  # nothing moves before finish
    finish()
    assert not model.compacting and model.table.shape == (reference.n_items,) * 2
    assert reference.n_items > 50  # the catalogue grew during the compaction
    assert np.allclose(model.score(histories), during, rtol=1e-5)
    assert np.allclose(model.complementary(3, 5)[1], reference.complementary(3, 5)[1], rtol=1e-5)


def test_an_aborted_compaction_gives_its_updates_back() -> None:
    model = fitted(2)
    rng = np.random.default_rng(3)
    for _ in range(20):
        model.update(rng.integers(0, 50, 4), int(rng.integers(0, 50)), "view")
    histories = [rng.integers(0, 50, 6) for _ in range(4)]
    before = model.score(histories)
    model.compact_start()
    model.compact_abort()
    assert not model.compacting
    assert np.allclose(model.score(histories), before, rtol=1e-6)
