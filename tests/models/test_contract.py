"""One contract suite, run against every model in ``MODELS`` on the planted dataset (planted.py).

A model added to the registry must add its planted-pattern check to ``PLANTED`` (and, if the tiny
dataset needs smaller settings, to ``TINY``); ``test_every_model_has_a_planted_check`` enforces it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from shopflow.errors import ModelNotTrained, NotFound
from shopflow.models.base import Recommender
from shopflow.models.registry import MODELS, get_model, load_model
from tests.models.planted import (
    N_ITEMS,
    PER_GROUP,
    group_of,
    next_item,
    planted_data,
)

# Settings for the 24-item dataset (the defaults are sized for real catalogues).
TINY: dict[str, dict] = {
    "als": {
        "factors": 8,
        "iterations": 20,
        "alpha": 5.0,
        "regularization": 0.1,
        "recency_decay": 1.0,
        "num_threads": 1,
    },
    "bpr": {
        "factors": 8,
        "iterations": 300,
        "learning_rate": 0.05,
        "recency_decay": 1.0,
        "num_threads": 1,
    },
    "itemknn": {"shrink": 0.0},
    "sasrec": {
        "hidden": 16,
        "n_layers": 1,
        "max_len": 8,
        "dropout": 0.1,
        "attn_dropout": 0.1,
        "epochs": 40,
        "lr": 1e-2,
        "batch_size": 32,
        "validation": False,
        "device": "cpu",
    },
}
SLOW = {"content"}  # loads a sentence-transformers model (import alone takes seconds)

DATA = planted_data()


def _counts() -> np.ndarray:
    return np.bincount(np.concatenate(DATA.sequences), minlength=N_ITEMS).astype(float)


def _check_popular(model: Recommender) -> None:
    ids, _ = model.recommend([np.array([], dtype=np.int64)], k=1)
    counts = _counts()
    assert counts[ids[0, 0]] == counts.max()


def _check_trending(model: Recommender) -> None:
    latest = max(t.max() for t in DATA.timestamps)
    half_life = model.config.half_life_days * 86_400.0
    expected = np.zeros(N_ITEMS)
    for seq, ts in zip(DATA.sequences, DATA.timestamps, strict=True):
        for item, t in zip(seq, ts, strict=True):
            expected[item] += 0.5 ** ((latest - t) / half_life)
    scores = model.score([np.array([], dtype=np.int64)])[0]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def _check_groups(model: Recommender) -> None:
    """Two items of a group in the history: the other four items of the group come first."""
    for g in range(4):
        hist = np.array([g * PER_GROUP, g * PER_GROUP + 3])
        ids, _ = model.recommend([hist], k=PER_GROUP - 2)
        assert {group_of(int(i)) for i in ids[0]} == {g}, (g, ids[0].tolist())
        sim, _ = model.similar_items(g * PER_GROUP + 1, k=1)
        assert group_of(int(sim[0])) == g


def _check_sequence(model: Recommender) -> None:
    """Item i is always followed by next_item(i): it must come first for the history [i]."""
    _check_groups(model)
    hists = [np.array([i]) for i in range(N_ITEMS)]
    ids, _ = model.recommend(hists, k=1)
    assert ids[:, 0].tolist() == [next_item(i) for i in range(N_ITEMS)]


def _check_next_item(model: Recommender) -> None:
    """A next-item model: after any walk within a group, the walk's next item comes first.

    (Not ``_check_groups``: a pure next-item model has no reason to rank the rest of the group,
    which never follows the last item, above other groups' items.)
    """
    hists = [np.array([i]) for i in range(N_ITEMS)]
    hists += [np.array([i, next_item(i), next_item(next_item(i))]) for i in range(N_ITEMS)]
    ids, _ = model.recommend(hists, k=1)
    assert ids[:, 0].tolist() == [next_item(int(h[-1])) for h in hists]
    for item in range(N_ITEMS):
        sim, _ = model.similar_items(item, k=1)
        assert int(sim[0]) == next_item(item)


PLANTED: dict[str, Callable[[Recommender], None]] = {
    "pop": _check_popular,
    "trending": _check_trending,
    "covisit": _check_sequence,
    "itemknn": _check_groups,
    "als": _check_groups,
    "bpr": _check_groups,
    "content": _check_groups,
    "sasrec": _check_next_item,
}

NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in MODELS]
_FITTED: dict[str, Recommender] = {}


@pytest.fixture
def fitted(request: pytest.FixtureRequest) -> Recommender:
    name = request.param
    if name not in _FITTED:
        _FITTED[name] = get_model(name, **TINY.get(name, {})).fit(DATA)
    return _FITTED[name]


def test_every_model_has_a_planted_check() -> None:
    assert set(PLANTED) == set(MODELS)


def test_unknown_model_name_lists_the_known_ones() -> None:
    with pytest.raises(NotFound) as err:
        get_model("no-such-model")
    for name in MODELS:
        assert name in str(err.value)


@pytest.mark.parametrize("name", NAMES)
def test_unknown_setting_is_rejected(name: str) -> None:
    with pytest.raises(TypeError, match="no_such_setting"):
        get_model(name, no_such_setting=1)


@pytest.mark.parametrize("name", NAMES)
def test_unfitted_model_refuses_to_score(name: str) -> None:
    model = get_model(name)
    with pytest.raises(ModelNotTrained):
        model.score([np.array([0])])


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_planted_pattern(fitted: Recommender) -> None:
    PLANTED[fitted.name](fitted)


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_shapes_and_order(fitted: Recommender) -> None:
    hists = [np.array([0, 1]), np.array([7]), np.array([], dtype=np.int64)]
    scores = fitted.score(hists)
    assert scores.shape == (3, N_ITEMS) and scores.dtype == np.float32
    ids, vals = fitted.recommend(hists, k=5)
    assert ids.shape == vals.shape == (3, 5)
    assert np.all(np.diff(vals, axis=1) <= 0)
    np.testing.assert_array_equal(np.take_along_axis(scores, ids, axis=1), vals)


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_seen_items_excluded(fitted: Recommender) -> None:
    hists = [np.array([0, 1, 2]), np.array([13, 20])]
    ids, _ = fitted.recommend(hists, k=N_ITEMS)
    for row, hist in zip(ids, hists, strict=True):
        valid = row[row >= 0].tolist()
        assert len(valid) == len(set(valid)) == N_ITEMS - len(hist)
        assert not set(valid) & set(hist.tolist())
    ids, _ = fitted.recommend(hists, k=N_ITEMS, exclude_seen=False)
    assert set(ids[0].tolist()) == set(range(N_ITEMS))


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_unknown_items_in_a_history_are_ignored(fitted: Recommender) -> None:
    plain = fitted.score([np.array([2, 3])])
    with_unknown = fitted.score([np.array([2, N_ITEMS + 5, 3])])
    np.testing.assert_allclose(with_unknown, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_similar_items_exclude_the_item(fitted: Recommender) -> None:
    for item in (0, 9, 23):
        ids, vals = fitted.similar_items(item, k=N_ITEMS)
        assert item not in ids.tolist()
        assert np.all(np.diff(vals[ids >= 0]) <= 0)


@pytest.mark.parametrize("fitted", NAMES, indirect=True)
def test_save_load_gives_identical_scores(fitted: Recommender, tmp_path: Path) -> None:
    hists = [np.array([0, 1]), np.array([19, 18, 17]), np.array([], dtype=np.int64)]
    fitted.save(tmp_path / "m")
    for loaded in (type(fitted).load(tmp_path / "m"), load_model(tmp_path / "m")):
        assert type(loaded) is type(fitted) and loaded.config == fitted.config
        np.testing.assert_array_equal(loaded.score(hists), fitted.score(hists))
        np.testing.assert_array_equal(loaded.similar_items(5)[0], fitted.similar_items(5)[0])


def test_loading_the_wrong_model_type_is_refused(tmp_path: Path) -> None:
    model = get_model("pop").fit(DATA)
    model.save(tmp_path / "pop")
    with pytest.raises(ValueError, match="pop"):
        MODELS["covisit"].load(tmp_path / "pop")
