"""ALS and BPR: fold-in parity with the normal equations, weighted input, BPR scoring formula."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shopflow.features.sequences import InteractionData
from shopflow.models.mf import ALS, BPR, fold_in, fold_in_solver, user_item_matrix
from shopflow.store.idmap import IdMap
from tests.models.planted import planted_data


def test_fold_in_solves_implicits_normal_equations() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=(15, 4)).astype(np.float32)
    hist = sp.csr_matrix(
        np.array([[0, 1.0, 0, 0.5] + [0] * 11, [0] * 15, [1.0] * 3 + [0] * 12], dtype=np.float32)
    )
    reg, alpha = 0.3, 4.0
    got = fold_in(fold_in_solver(y, reg, alpha, threads=1), hist)
    yd = y.astype(np.float64)
    for b in range(hist.shape[0]):
        row = hist[b].toarray()[0]
        c = alpha * row  # implicit's confidence convention
        a = yd.T @ yd + reg * np.eye(4) + (yd.T * np.where(row > 0, c - 1, 0)) @ yd
        rhs = yd.T @ np.where(row > 0, c, 0)
        np.testing.assert_allclose(got[b], np.linalg.solve(a, rhs), rtol=1e-3, atol=1e-4)
    assert not got[1].any()  # empty history → zero vector


def test_user_item_matrix_sums_event_weights() -> None:
    data = InteractionData(
        "toy",
        IdMap(["u", "v"]),
        IdMap(["a", "b", "c"]),
        [np.array([0, 1, 0]), np.array([2])],
        event_types=[np.array(["view", "purchase", "add_to_cart"]), np.array(["view"])],
    )
    m = user_item_matrix(data, {"view": 1.0, "add_to_cart": 3.0, "purchase": 5.0})
    np.testing.assert_array_equal(m.toarray(), [[4.0, 5.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(user_item_matrix(data, None).toarray(), [[2, 1, 0], [0, 0, 1]])


def test_als_is_deterministic_and_scores_by_fold_in() -> None:
    data = planted_data(users_per_group=10)
    cfg = dict(factors=6, iterations=5, num_threads=1, seed=3)
    a, b = ALS(**cfg).fit(data), ALS(**cfg).fit(data)
    np.testing.assert_array_equal(a.item_factors, b.item_factors)
    hist = [np.array([0, 2])]
    h = sp.csr_matrix(([a.config.recency_decay, 1.0], ([0, 0], [0, 2])), shape=(1, 24))
    user = fold_in(fold_in_solver(a.item_factors, a.config.regularization, a.config.alpha, 1), h)
    np.testing.assert_allclose(a.score(hist), user @ a.item_factors.T, rtol=1e-5)


def test_bpr_scores_are_the_recency_weighted_sum_plus_bias() -> None:
    data = planted_data(users_per_group=10)
    model = BPR(factors=6, iterations=20, num_threads=1, recency_decay=0.5).fit(data)
    y, bias = model.item_factors[:, :-1], model.item_factors[:, -1]
    expected = (y[7] + 0.5 * y[3]) @ y.T + bias
    np.testing.assert_allclose(model.score([np.array([3, 7])])[0], expected, rtol=1e-5)
