"""Item indexes: one contract suite for every implementation, exact search as the oracle."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.errors import ModelNotTrained
from shopflow.retrieval import ExactIndex, FaissIndex, ItemIndex


def _vectors(n: int = 500, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(40, d)).astype(np.float32)


EXACT_KINDS = {
    "exact": lambda: ExactIndex(),
    "faiss-flat": lambda: FaissIndex(kind="flat"),
    # an IVF that visits every cell is exhaustive, hence exact
    "faiss-ivf-all-cells": lambda: FaissIndex(kind="ivf", nlist=8, nprobe=8),
}
# approximate, but exhaustive on the few-item fixtures below
ALL_KINDS = {**EXACT_KINDS, "faiss-hnsw": lambda: FaissIndex(kind="hnsw", hnsw_m=16, ef_search=64)}


@pytest.fixture(params=list(ALL_KINDS))
def make_index(request: pytest.FixtureRequest):
    return ALL_KINDS[request.param]


@pytest.fixture(params=list(EXACT_KINDS))
def make_exact_index(request: pytest.FixtureRequest):
    return EXACT_KINDS[request.param]


def test_hand_computed_answer(make_index) -> None:
    vecs = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    index: ItemIndex = make_index().build(vecs)
    ids, scores = index.search(np.array([[2.0, 1.0]]), k=3)
    assert ids.tolist() == [[2, 0, 1]]  # scores 3, 2, 1 (item 3: -2)
    assert scores.tolist() == [[3.0, 2.0, 1.0]]


def test_exclusion_removes_items_and_fills_up_with_the_next_ones(make_index) -> None:
    vecs = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    index = make_index().build(vecs)
    q = np.array([[2.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    ids, scores = index.search(q, k=2, exclude=[[2, 0], []])
    assert ids[0].tolist() == [1, 3]
    assert scores[0].tolist() == [1.0, -2.0]
    assert ids[1, 0] in (1, 2)  # items 1 and 2 tie at 1.0
    assert set(ids[1].tolist()) == {1, 2}


def test_asking_for_more_than_remains_pads_with_minus_one(make_index) -> None:
    vecs = np.eye(3, dtype=np.float32)
    index = make_index().build(vecs)
    ids, scores = index.search(np.ones((1, 3), np.float32), k=5, exclude=[np.array([1])])
    assert sorted(ids[0, :2].tolist()) == [0, 2]
    assert ids[0, 2:].tolist() == [-1, -1, -1]
    assert np.all(np.isneginf(scores[0, 2:]))


def test_exact_kinds_equal_the_matrix_product_oracle(make_exact_index) -> None:
    vecs, queries = _vectors()
    rng = np.random.default_rng(1)
    exclude = [rng.choice(len(vecs), size=int(rng.integers(0, 30)), replace=False) for _ in queries]
    oracle = ExactIndex().build(vecs)
    index = make_exact_index().build(vecs)
    for excluded in (None, exclude):
        want_ids, want_scores = oracle.search(queries, k=20, exclude=excluded)
        ids, scores = index.search(queries, k=20, exclude=excluded)
        np.testing.assert_array_equal(ids, want_ids)
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
    # by hand: the oracle is the plain matrix product
    full = queries @ vecs.T
    np.testing.assert_array_equal(oracle.search(queries, 1)[0][:, 0], full.argmax(1))
    for row, excl in enumerate(exclude):
        assert not set(want_ids[row].tolist()) & set(excl.tolist())


@pytest.mark.parametrize(
    ("kind", "settings", "min_recall"),
    [("hnsw", {"hnsw_m": 16, "ef_search": 64}, 0.95), ("ivf", {"nlist": 16, "nprobe": 8}, 0.8)],
)
def test_approximate_kinds_have_high_recall_and_respect_exclusion(
    kind: str, settings: dict, min_recall: float
) -> None:
    vecs, queries = _vectors(n=2000, d=32, seed=3)
    rng = np.random.default_rng(4)
    exclude = [rng.choice(len(vecs), size=25, replace=False) for _ in queries]
    want, _ = ExactIndex().build(vecs).search(queries, k=10, exclude=exclude)
    index = FaissIndex(kind=kind, **settings).build(vecs)
    got, scores = index.search(queries, k=10, exclude=exclude)
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want, strict=True)])
    assert recall >= min_recall
    for row, excl in enumerate(exclude):
        assert not set(got[row].tolist()) & set(excl.tolist())
        np.testing.assert_allclose(scores[row], queries[row] @ vecs[got[row]].T, rtol=1e-4)
        assert np.all(np.diff(scores[row]) <= 1e-6)  # best first


def test_misuse_is_reported() -> None:
    with pytest.raises(ModelNotTrained, match="build"):
        ExactIndex().search(np.zeros((1, 2), np.float32), k=1)
    index = ExactIndex().build(np.eye(2, dtype=np.float32))
    with pytest.raises(ValueError, match="dim"):
        index.search(np.zeros((1, 3), np.float32), k=1)
    with pytest.raises(ValueError, match="exclude"):
        index.search(np.zeros((2, 2), np.float32), k=1, exclude=[[0]])
    with pytest.raises(ValueError, match="kind"):
        FaissIndex(kind="lsh")
