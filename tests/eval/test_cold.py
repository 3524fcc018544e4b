"""Cold-item protocol: the split never trains on held-out items, metrics by hand, and side
information places never-seen items where a model without it cannot."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shopflow.eval.cold import chance_level, cold_item_split, evaluate_cold
from shopflow.eval.cold_sasrec import add_items, fit_cold_sasrec
from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.popular import Popular
from shopflow.models.sasrec_model import SASRecModel
from shopflow.store.idmap import IdMap

torch.set_num_threads(1)


def _data(seqs: list[np.ndarray], n_items: int, side: ItemSide | None = None) -> InteractionData:
    return InteractionData(
        "toy",
        IdMap([f"u{u}" for u in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(n_items)]),
        seqs,
        timestamps=[np.arange(len(s), dtype=np.float64) + 100 * u for u, s in enumerate(seqs)],
        side=side or ItemSide(),
    )


def _random_data(seed: int = 0, n_users: int = 200, n_items: int = 50) -> InteractionData:
    rng = np.random.default_rng(seed)
    seqs = [rng.integers(0, n_items, size=int(rng.integers(2, 10))) for _ in range(n_users)]
    seqs.append(np.array([7]))  # too short to test: trains on its whole (cold-free) sequence
    side = ItemSide(text=[f"item {i}" for i in range(n_items)])
    return _data(seqs, n_items, side)


# -- the split -------------------------------------------------------------------------------------
def test_held_out_items_never_train_and_every_cold_target_is_held_out() -> None:
    data = _random_data()
    s = cold_item_split(data, fraction=0.2, seed=3)
    cold = set(s.cold_items.tolist())
    assert len(cold) == 10 and s.fraction == pytest.approx(0.2)
    for seq in s.train.sequences:
        assert not cold & set(seq.tolist())
    assert all(t in cold for t in s.targets[s.is_cold].tolist())
    assert not any(t in cold for t in s.targets[~s.is_cold].tolist())
    assert 0 < s.is_cold.sum() < len(s.targets)
    # tested users: history = everything before the last item (cold kept); train = history − cold
    assert s.users.tolist() == list(range(200))
    for row, u in enumerate(s.users.tolist()):
        seq = data.sequences[u]
        assert s.histories[row].tolist() == seq[:-1].tolist()
        assert s.targets[row] == seq[-1]
        keep = [x for x in seq[:-1].tolist() if x not in cold]
        assert s.train.sequences[u].tolist() == keep
        assert s.train.timestamps is not None
        assert len(s.train.timestamps[u]) == len(keep)
    assert any(cold & set(h.tolist()) for h in s.histories)  # some histories hold cold items
    assert s.train.sequences[200].tolist() == ([7] if 7 not in cold else [])
    # seeded: the same seed gives the same set, another seed another one
    assert cold_item_split(data, 0.2, seed=3).cold_items.tolist() == s.cold_items.tolist()
    assert cold_item_split(data, 0.2, seed=4).cold_items.tolist() != s.cold_items.tolist()


def test_warm_catalogue_renumbers_items_and_side_data() -> None:
    s = cold_item_split(_random_data(), fraction=0.2, seed=3)
    data, warm = s.warm_catalogue()
    assert data.n_items == 40 and warm.tolist() == s.warm_items.tolist()
    assert not set(warm.tolist()) & set(s.cold_items.tolist())
    for u, seq in enumerate(data.sequences):
        assert warm[seq].tolist() == s.train.sequences[u].tolist()
    assert data.side.text == [f"item {i}" for i in warm.tolist()]
    assert list(data.items.external_ids) == [f"i{i}" for i in warm.tolist()]


def test_bad_arguments_say_what_is_wrong() -> None:
    data = _random_data()
    with pytest.raises(ValueError, match="fraction must lie strictly between 0 and 1"):
        cold_item_split(data, fraction=1.0)
    with pytest.raises(
        ValueError, match=r"cold_items must be a non-empty set of item ids in \[0, 50\)"
    ):
        cold_item_split(data, cold_items=[50])
    with pytest.raises(ValueError, match="min_len must be at least 2"):
        cold_item_split(data, min_len=1)


# -- metrics by hand -------------------------------------------------------------------------------
def test_metrics_equal_a_hand_computation() -> None:
    seqs = [np.array([0, 1, 4]), np.array([0, 2, 1]), np.array([0, 5, 3]), np.array([1, 5])]
    s = cold_item_split(_data(seqs, 6), cold_items=[4, 5])
    assert [t.tolist() for t in s.train.sequences] == [[0, 1], [0, 2], [0], [1]]
    model = Popular().fit(s.train)  # counts: item 0: 3, 1: 2, 2: 1, the rest 0
    got = evaluate_cold(model, s, k=3)
    lg = math.log2
    # u0 (cold 4): history {0, 1} out; 2 beats it, tied with 3 and 5 → positions 1, 2, 3
    # u3 (cold 5): history {1} out; 0 and 2 beat it, tied with 3 and 4 → positions 2, 3, 4
    hr_cold = [2 / 3, 1 / 3]
    ndcg_cold = [(1 / lg(3) + 1 / lg(4)) / 3, (1 / lg(4)) / 3]
    # u1 (warm 1): first; u2 (warm 3): 1 and 2 beat it, tied with 4 → positions 2, 3
    hr_warm, ndcg_warm = [1.0, 1 / 2], [1.0, (1 / lg(4)) / 2]
    assert got["cold"]["n"] == 2 and got["warm"]["n"] == 2
    assert got["cold"]["hr@3"] == pytest.approx(np.mean(hr_cold))
    assert got["cold"]["ndcg@3"] == pytest.approx(np.mean(ndcg_cold))
    assert got["warm"]["hr@3"] == pytest.approx(np.mean(hr_warm))
    assert got["warm"]["ndcg@3"] == pytest.approx(np.mean(ndcg_warm))
    assert got["cold"]["hr@3_se"] == pytest.approx(np.std(hr_cold, ddof=1) / math.sqrt(2))
    chance = chance_level(s, k=3)
    # u0: 4 candidates, u3: 5 candidates
    assert chance["cold"]["hr@3"] == pytest.approx((3 / 4 + 3 / 5) / 2)
    disc = 1 + 1 / lg(3) + 1 / lg(4)
    assert chance["cold"]["ndcg@3"] == pytest.approx((disc / 4 + disc / 5) / 2)


def test_a_model_over_the_warm_catalogue_only_is_refused() -> None:
    s = cold_item_split(_random_data(), fraction=0.2, seed=3)
    warm_only = Popular().fit(s.warm_catalogue()[0])
    with pytest.raises(ValueError, match="rank the full catalogue, cold items included"):
        evaluate_cold(warm_only, s)


# -- side information ------------------------------------------------------------------------------
CATS, PER_CAT = 20, 5


def _category_walks(seed: int = 0, n_users: int = 500) -> InteractionData:
    """Item ``c * 5 + j`` is in category ``c``; each next item is a random item of the next
    category (c + 1 mod 20): the category token fully determines the next category."""
    rng = np.random.default_rng(seed)
    seqs = []
    for _ in range(n_users):
        c, length = int(rng.integers(CATS)), int(rng.integers(4, 9))
        seq = [(c + t) % CATS * PER_CAT + int(rng.integers(PER_CAT)) for t in range(length)]
        seqs.append(np.array(seq))
    n = CATS * PER_CAT
    return _data(seqs, n, ItemSide(categories=[[f"c{i // PER_CAT}"] for i in range(n)]))


TINY = dict(hidden=32, n_layers=1, max_len=8, epochs=15, batch_size=32, lr=5e-3, dropout=0.1,
            attn_dropout=0.1, validation=False, seed=1, device="cpu")  # fmt: skip


def test_category_tokens_place_cold_items_that_a_model_without_them_cannot() -> None:
    # two cold items per category (40 of 100): without side information they tie at score 0
    s = cold_item_split(_category_walks(), cold_items=[c * PER_CAT + j for c in range(CATS)
                                                       for j in (0, 1)])  # fmt: skip
    assert s.is_cold.sum() > 100
    with_tokens = evaluate_cold(fit_cold_sasrec(s, side_tokens=True, **TINY), s)
    without = evaluate_cold(fit_cold_sasrec(s, side_tokens=False, **TINY), s)
    chance = chance_level(s)["cold"]["hr@10"]
    # with the category known, the cold target lands among the few items of the next category
    # (measured: HR@10 0.80, NDCG@10 0.25; a cold item's vector that lost its tokens gives 0)
    assert with_tokens["cold"]["hr@10"] >= 0.6, with_tokens
    assert with_tokens["cold"]["ndcg@10"] >= without["cold"]["ndcg@10"] + 0.15
    # without: every cold item scores 0, below the warm items of the right category and more
    assert without["cold"]["hr@10"] <= max(0.1, 2 * chance), without
    assert chance < 0.15
    # both models know the warm items: the gap is on the cold ones
    assert with_tokens["warm"]["hr@10"] >= 0.9 and without["warm"]["hr@10"] >= 0.6


def test_added_items_keep_warm_vectors_and_get_side_only_vectors() -> None:
    data = _category_walks(n_users=120)
    cats = [[f"c{i // PER_CAT}"] for i in range(data.n_items)]
    cats[3] = ["c0", "brand-new-token"]  # a token no warm item has
    data = _data(data.sequences, data.n_items, ItemSide(categories=cats))
    s = cold_item_split(data, cold_items=[3, 4, 57])
    warm_data, warm = s.warm_catalogue()
    settings = {**TINY, "epochs": 1}
    trained = SASRecModel(side_tokens=True, **settings).fit(warm_data)
    grown = add_items(trained, s.train.side, warm, s.train.n_items)
    assert grown.n_items == 100 and grown.vocab == trained.vocab
    assert "cat:brand-new-token" not in grown.vocab
    np.testing.assert_allclose(grown.item_vectors()[warm], trained.item_vectors(), atol=1e-6)
    histories = [warm[h] for h in warm_data.sequences[:20]]
    np.testing.assert_allclose(
        grown.encode(histories), trained.encode([h for h in warm_data.sequences[:20]]), atol=1e-5
    )
    net = trained.net
    assert net is not None and net.items.tok is not None
    tok = net.items.tok.weight.detach().numpy()
    c0, c11 = trained.vocab.index("cat:c0") + 1, trained.vocab.index("cat:c11") + 1
    vectors = grown.item_vectors()
    np.testing.assert_allclose(vectors[3], tok[c0], atol=1e-6)  # the unknown token is dropped
    np.testing.assert_allclose(vectors[4], tok[c0], atol=1e-6)
    np.testing.assert_allclose(vectors[57], tok[c11], atol=1e-6)
    bare = SASRecModel(side_tokens=False, **settings).fit(warm_data)
    grown_bare = add_items(bare, s.train.side, warm, s.train.n_items)
    assert not grown_bare.item_vectors()[[3, 4, 57]].any()  # no side information: zero vectors


@pytest.mark.slow
def test_added_items_get_their_text_vector() -> None:
    data = _category_walks(n_users=60)
    texts: list[str | None] = [f"category {i // PER_CAT} product {i}" for i in range(100)]
    data = _data(data.sequences, 100, ItemSide(text=texts))
    s = cold_item_split(data, cold_items=[3, 57])
    warm_data, warm = s.warm_catalogue()
    trained = SASRecModel(side_tokens=False, side_text=True, **{**TINY, "epochs": 1}).fit(warm_data)
    grown = add_items(trained, s.train.side, warm, 100)
    assert trained.net is not None and grown.net is not None
    text = grown.net.items.text
    assert text is not None and trained.net.items.text is not None
    torch.testing.assert_close(text[torch.from_numpy(warm) + 1], trained.net.items.text[1:])
    assert float(text[4].norm()) == pytest.approx(1.0, abs=1e-4)  # item 3: a unit MiniLM vector
    assert float(text[4] @ text[58]) < 0.99  # different texts differ
    fresh = SASRecModel(side_tokens=False, side_text=True, **{**TINY, "epochs": 1}).fit(
        _data(data.sequences, 100, ItemSide(text=texts))
    )
    assert fresh.net is not None and fresh.net.items.text is not None
    torch.testing.assert_close(text, fresh.net.items.text)  # the same vectors a full fit encodes
