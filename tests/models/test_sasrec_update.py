"""Incremental update of the sequential model: grown item tables, id-map alignment, warm start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.sasrec_model import SASRecModel
from shopflow.models.sasrec_update import align_items, extend_items, fine_tune, select_items
from shopflow.store.idmap import IdMap

torch.set_num_threads(1)
N = 40  # old items; item i is followed by i + 1 (mod N)
N_NEW = 3
PREDECESSOR = 7  # in the new events, PREDECESSOR is followed by the new item N


def _brand(i: int) -> str:
    return f"brand{i % 5}"


def _side(n: int) -> ItemSide:
    return ItemSide(
        brand=[_brand(i) for i in range(n)],
        categories=[["Beauty", f"shelf{i % 4}"] for i in range(n)],
    )


def _walks(rng: np.random.Generator, n_users: int) -> list[np.ndarray]:
    out = []
    for _ in range(n_users):
        start, length = int(rng.integers(N)), int(rng.integers(4, 10))
        out.append(np.array([(start + j) % N for j in range(length)], dtype=np.int64))
    return out


@pytest.fixture(scope="module")
def model() -> SASRecModel:
    seqs = _walks(np.random.default_rng(0), 300)
    data = InteractionData(
        "walks",
        IdMap([f"u{u}" for u in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(N)]),
        seqs,
        side=_side(N),
    )
    torch.manual_seed(0)
    return SASRecModel(
        hidden=32, n_layers=1, n_heads=1, max_len=10, dropout=0.1, attn_dropout=0.1,
        epochs=15, lr=5e-3, batch_size=32, validation=False, device="cpu",
    ).fit(data)  # fmt: skip


def _old_histories() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.integers(0, N, int(rng.integers(1, 12))) for _ in range(30)]


def test_extended_model_keeps_every_old_score_and_scores_new_items(model: SASRecModel) -> None:
    grown = extend_items(model, N_NEW, side=_side(N + N_NEW))
    assert grown.n_items == N + N_NEW and model.n_items == N  # a copy; the original is untouched
    hists = _old_histories()
    before, after = model.score(hists), grown.score(hists)
    assert after.shape == (len(hists), N + N_NEW)
    np.testing.assert_allclose(after[:, :N], before, rtol=0, atol=1e-5)  # matmul widths differ
    np.testing.assert_array_equal(grown.encode(hists), model.encode(hists))
    np.testing.assert_array_equal(grown.item_vectors()[:N], model.item_vectors())
    assert np.all(np.isfinite(after[:, N:]))
    # new items in histories are read, not skipped (the old model drops them as unknown ids)
    with_new = [np.array([3, N + 1])]
    assert not np.allclose(grown.score(with_new), grown.score([np.array([3])]))


def test_new_items_start_from_the_items_that_share_their_side_information(
    model: SASRecModel,
) -> None:
    grown = extend_items(model, N_NEW, side=_side(N + N_NEW))
    assert grown.net is not None and model.net is not None
    vectors = grown.item_vectors()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for j in range(N, N + N_NEW):
        peers = [i for i in range(N) if _brand(i) == _brand(j) and i % 4 == j % 4]
        nearest = int(np.argmax(unit[:N] @ unit[j]))
        assert nearest in peers, (j, nearest, peers)  # same brand and shelf
        tokens = grown.net.items.tokens
        assert tokens is not None
        np.testing.assert_array_equal(tokens[j + 1], tokens[peers[0] + 1])
    ids_old = model.net.items.ids.weight[1:].detach()  # (N, D)
    plain = extend_items(model, 1)  # no side information: the mean id embedding
    assert plain.net is not None
    np.testing.assert_allclose(
        plain.net.items.ids.weight[N + 1].detach().numpy(), ids_old.mean(0).numpy(), atol=1e-6
    )


def test_fine_tuning_makes_the_new_item_follow_its_planted_predecessor(
    model: SASRecModel,
) -> None:
    new_item = N
    grown = extend_items(model, N_NEW, side=_side(N + N_NEW))
    hist = np.array([PREDECESSOR - 2, PREDECESSOR - 1, PREDECESSOR])
    ids, _ = grown.recommend([hist], k=3)
    assert new_item not in ids[0]  # not before fine-tuning
    rng = np.random.default_rng(2)
    seqs = [np.array([PREDECESSOR - 2, PREDECESSOR - 1, PREDECESSOR, new_item])] * 60
    seqs += _walks(rng, 60)  # replay of the old pattern
    result = fine_tune(grown, seqs, epochs=8, lr=5e-3)
    assert len(result.history) == 8
    ids, _ = grown.recommend([hist, np.array([PREDECESSOR])], k=1)
    assert ids[:, 0].tolist() == [new_item, new_item]
    ids, _ = grown.recommend([np.array([i]) for i in range(20, 30)], k=1)  # old rule still there
    assert ids[:, 0].tolist() == list(range(21, 31))


def test_fine_tuning_keeps_the_start_when_no_epoch_beats_it(model: SASRecModel) -> None:
    grown = extend_items(model, 0)
    assert grown.net is not None
    start = {k: v.clone() for k, v in grown.net.state_dict().items()}
    hists = [np.array([i, (i + 1) % N]) for i in range(N)]
    targets = np.array([(i + 2) % N for i in range(N)])
    noise = [np.random.default_rng(3).integers(0, N, 8) for _ in range(50)]  # unlearns the rule
    result = fine_tune(grown, noise, epochs=2, lr=5e-2, val=(hists, targets))
    assert all(row["val_ndcg@10"] < result.best_score for row in result.history)
    assert result.best_epoch == 0  # the starting weights are back
    for key, value in grown.net.state_dict().items():
        torch.testing.assert_close(value, start[key])


def test_align_items_follows_a_new_id_map(model: SASRecModel, tmp_path: Path) -> None:
    old = IdMap([f"i{i}" for i in range(N)])
    # the newer map drops i5, puts a new item first and one in the middle, and reorders the rest
    kept = [f"i{i}" for i in range(N) if i != 5][::-1]
    new = IdMap(["fresh-a", *kept[:10], "fresh-b", *kept[10:]])
    side = ItemSide(brand=[_brand(0) if e.startswith("fresh") else None for e in new.external_ids])
    grown, n_new = align_items(model, old, new, side)
    assert n_new == 2 and grown.n_items == len(new)
    hists_old = [np.array([3, 4]), np.array([12])]
    hists_new = [new.to_index([f"i{i}" for i in h]) for h in hists_old]
    before, after = model.score(hists_old), grown.score(hists_new)
    for ext in kept:
        np.testing.assert_allclose(after[:, new.index_of(ext)], before[:, old.index_of(ext)])
    assert np.all(np.isfinite(after[:, new.index_of("fresh-a")]))
    grown.save(tmp_path / "m")  # the grown tables save and load like any model
    loaded = SASRecModel.load(tmp_path / "m")
    np.testing.assert_array_equal(loaded.score(hists_new), after)


def test_bad_arguments_are_refused(model: SASRecModel) -> None:
    with pytest.raises(ValueError, match="n_new must be"):
        extend_items(model, -1)
    with pytest.raises(ValueError, match=r"side\.brand has 40 entries"):
        extend_items(model, 2, side=_side(N))
    with pytest.raises(ValueError, match="rows must be item ids"):
        select_items(model, [0, N])
    with pytest.raises(ValueError, match="needs a trained model"):
        extend_items(SASRecModel(), 1)
    with pytest.raises(ValueError, match="its map"):
        align_items(model, IdMap(["a"]), IdMap(["a"]))
    assert select_items(model, list(range(N))).score([np.array([1])]).shape == (1, N)
