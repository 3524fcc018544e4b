"""ContentBased: needs item text, profiles by recency, cold items recommendable at once."""

from __future__ import annotations

import numpy as np
import pytest

from shopflow.errors import ConfigError
from shopflow.features.sequences import ItemSide
from shopflow.models.content import ContentBased
from tests.models.planted import N_ITEMS, PER_GROUP, planted_data

pytestmark = pytest.mark.slow  # loads the sentence-transformers model


def test_missing_text_is_a_clear_error() -> None:
    data = planted_data()
    no_text = data.with_sequences(data.sequences)
    no_text = type(data)(**{**no_text.__dict__, "side": ItemSide()})
    with pytest.raises(ConfigError, match="needs item text"):
        ContentBased().fit(no_text)


def test_profile_is_the_recency_weighted_mean_and_items_without_text_are_skipped() -> None:
    data = planted_data()
    texts = list(data.side.text)
    texts[5] = None  # one item without text
    data = type(data)(**{**data.__dict__, "side": ItemSide(text=texts)})
    model = ContentBased(recency_decay=0.5).fit(data)
    e = model.embeddings
    assert not e[5].any() and np.allclose(np.linalg.norm(e[[0, 6]], axis=1), 1.0, atol=1e-5)
    profile = e[8] + 0.5 * e[1]
    expected = e @ (profile / np.linalg.norm(profile))
    np.testing.assert_allclose(model.score([np.array([1, 8])])[0], expected, rtol=1e-4, atol=1e-6)
    assert 5 not in model.similar_items(0, k=N_ITEMS)[0].tolist()
    assert (model.similar_items(5, k=3)[0] == -1).all()


def test_new_items_are_recommendable_at_once() -> None:
    model = ContentBased().fit(planted_data())
    ids = model.add_items(["espresso coffee beans, medium roast, fresh bag"])
    assert ids.tolist() == [N_ITEMS] and model.n_items == N_ITEMS + 1
    similar, _ = model.similar_items(PER_GROUP * 1 + 2, k=PER_GROUP)  # a coffee item
    assert N_ITEMS in similar.tolist()
