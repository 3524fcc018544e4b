"""Personal scores of search candidates: each part, its weight, and the parts left out."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.text.personal import TasteWeights, UserTaste, shares, taste_scores

IDS = ["a", "b", "c"]
BRANDS = ["acme", "zeta", ""]
CATS = [frozenset({"tools", "saws"}), frozenset({"tools", "drills"}), frozenset()]


def test_shares_are_weighted_and_case_folded() -> None:
    assert shares(["Acme", "acme", "Zeta", None, ""], [1, 1, 2, 5, 5]) == {"acme": 0.5, "zeta": 0.5}
    assert shares([]) == {}


def test_each_part_on_its_own() -> None:
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    only_text = UserTaste(vector=np.array([2.0, 0.0]))
    score, parts = taste_scores(only_text, IDS, vectors, BRANDS, CATS)
    np.testing.assert_allclose(score, [1.0, 0.0, 0.6], atol=1e-6)  # plain cosine
    assert list(parts) == ["text"]
    cats = UserTaste(categories={"saws": 0.6, "tools": 0.3, "drills": 0.1})
    score, _ = taste_scores(cats, IDS, None, BRANDS, CATS)
    np.testing.assert_allclose(score, [1.0, 0.5, 0.0])  # best-liked level of each path / 0.6
    model = UserTaste(model_scores=lambda ids: np.array([2.0, np.nan, -2.0]))
    score, _ = taste_scores(model, IDS, None, BRANDS, CATS)
    np.testing.assert_allclose(score, [1.0, 0.0, 0.0])  # min-max scaled; unknown item 0


def test_parts_are_weighted_and_normalised_by_the_parts_present() -> None:
    taste = UserTaste(brands={"acme": 1.0}, model_scores=lambda ids: np.array([0.0, 1.0, 0.5]))
    score, parts = taste_scores(taste, IDS, None, BRANDS, CATS, TasteWeights(brand=1.0, model=3.0))
    assert set(parts) == {"brand", "model"}
    np.testing.assert_allclose(score, [0.25, 0.75, 0.375])  # (1 * brand + 3 * model) / 4
    score, parts = taste_scores(taste, IDS, None, BRANDS, CATS, TasteWeights(brand=1.0, model=0))
    assert set(parts) == {"brand"} and score.tolist() == [1.0, 0.0, 0.0]
    assert UserTaste().empty and not taste.empty
    assert taste_scores(UserTaste(), IDS, None, BRANDS, CATS)[0] == pytest.approx([0, 0, 0])
