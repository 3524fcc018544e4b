"""Sequential transformer: planted rules, parity with a slow reference, save/load, side tokens."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from shopflow.eval.metrics import hit_ndcg_from_scores
from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.base import mask_seen
from shopflow.models.sasrec import Block, SASRec, SASRecConfig, pad_left
from shopflow.models.sasrec_model import SASRecModel, side_tokens
from shopflow.models.sasrec_train import (
    TrainConfig,
    evaluate,
    make_eval_set,
    make_training_tensor,
    train_sasrec,
)
from shopflow.store.idmap import IdMap

torch.set_num_threads(1)


def _data(seqs: list[np.ndarray], n_items: int, side: ItemSide | None = None) -> InteractionData:
    return InteractionData(
        "toy",
        IdMap([f"u{i}" for i in range(len(seqs))]),
        IdMap([f"i{i}" for i in range(n_items)]),
        seqs,
        side=side or ItemSide(),
    )


def _successor_sequences(rng: np.random.Generator, n_users: int, n_items: int, noise: float):
    """Item i is followed by i + 1 (mod n_items), except with probability ``noise``."""
    seqs = []
    for _ in range(n_users):
        s = [int(rng.integers(n_items))]
        for _ in range(int(rng.integers(4, 12)) - 1):
            s.append((s[-1] + 1) % n_items if rng.random() > noise else int(rng.integers(n_items)))
        seqs.append(np.array(s, dtype=np.int64))
    return seqs


def _tiny(**kw) -> SASRecConfig:
    base = dict(hidden=32, n_layers=1, n_heads=2, max_len=12, dropout=0.1, attn_dropout=0.1)
    base.update(kw)
    return SASRecConfig(**base)  # type: ignore[arg-type]


def _top1_accuracy(net: SASRec, histories: list[np.ndarray], targets: list[int]) -> float:
    net.eval()
    pred = net.score(pad_left(histories, net.cfg.max_len)).argmax(1).numpy()
    return float((pred == np.array(targets)).mean())


# -- planted rules --------------------------------------------------------------------------------
def test_learns_a_planted_successor_rule() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    n = 20
    train = _successor_sequences(rng, 300, n, noise=0.1)
    test = [np.array([(a + j) % n for j in range(int(rng.integers(1, 8)))]) for a in range(n)]
    net = SASRec(_tiny(), n)
    train_sasrec(net, train, TrainConfig(epochs=12, batch_size=32, lr=5e-3))
    acc = _top1_accuracy(net, test, [(int(h[-1]) + 1) % n for h in test])
    # chance is 1/20; a model that sees the future in training (broken causal mask) or learns the
    # wrong target (shifted loss) ends near chance here
    assert acc >= 0.9


def test_learns_a_rule_that_needs_attention_beyond_the_last_item() -> None:
    """Sequences alternate two items a b a b ...: the next item is the one two steps back."""
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    n = 12
    pairs = [(int(a), int(b)) for a, b in rng.integers(0, n, size=(600, 2)) if a != b]
    train = [np.array([(a, b)[j % 2] for j in range(int(rng.integers(3, 9)))]) for a, b in pairs]
    test_pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    hist = [np.array([a, b, a, b, a, b][: 2 + (a + b) % 4]) for a, b in test_pairs]
    target = [int(h[-2]) for h in hist]
    net = SASRec(_tiny(dropout=0.0, attn_dropout=0.0), n)
    train_sasrec(net, train, TrainConfig(epochs=15, batch_size=32, lr=5e-3))
    # the last item alone says nothing about the next one: chance is about 1/11
    assert _top1_accuracy(net, hist, target) >= 0.8


# -- parity with a slow, explicit reference --------------------------------------------------------
def _reference_states(net: SASRec, x: torch.Tensor) -> torch.Tensor:
    """Eval-mode forward written out with loops over rows, positions and heads → (B, T, D)."""
    cfg = net.cfg
    out = torch.zeros(*x.shape, cfg.hidden)
    dh = cfg.hidden // cfg.n_heads
    for b in range(x.shape[0]):
        real = [j for j in range(x.shape[1]) if x[b, j] > 0]
        emb = net.items.ids.weight[x[b]].clone()  # (T, D)
        if net.items.tok is not None and net.items.tokens is not None:
            for j in range(x.shape[1]):
                toks = [int(t) for t in net.items.tokens[x[b, j]] if t > 0]
                if toks:
                    emb[j] += net.items.tok.weight[toks].mean(0)
        h = torch.zeros(x.shape[1], cfg.hidden)
        for order, j in enumerate(real):
            h[j] = emb[j] + net.pos.weight[order]
        for block in net.blocks:
            assert isinstance(block, Block)
            a = F.layer_norm(h, (cfg.hidden,), block.ln1.weight, block.ln1.bias)
            qkv = a @ block.attn.qkv.weight.T + block.attn.qkv.bias
            q, k, v = qkv.split(cfg.hidden, dim=1)
            att = torch.zeros_like(h)
            for i in range(x.shape[1]):
                keys = [j for j in real if j <= i] or [i]
                for head in range(cfg.n_heads):
                    sl = slice(head * dh, (head + 1) * dh)
                    # plus the learned bias by distance from the query, when there is one
                    rel = net.rel[head] if net.rel is not None else torch.zeros(cfg.max_len)
                    logits = [q[i, sl] @ k[j, sl] / math.sqrt(dh) + rel[i - j] for j in keys]
                    w = torch.softmax(torch.stack(logits), 0)
                    att[i, sl] = sum(wj * v[j, sl] for wj, j in zip(w, keys, strict=True))
            h = h + att @ block.attn.proj.weight.T + block.attn.proj.bias
            f = F.layer_norm(h, (cfg.hidden,), block.ln2.weight, block.ln2.bias)
            h = h + block.ffn(f)
        out[b] = F.layer_norm(h, (cfg.hidden,), net.ln_f.weight, net.ln_f.bias)
    return out


def _random_side_net(high_dropout: bool = True) -> tuple[SASRec, torch.Tensor]:
    torch.manual_seed(2)
    n = 15
    tokens = torch.randint(0, 6, (n + 1, 3))
    tokens[0] = 0
    p = 0.5 if high_dropout else 0.0
    cfg = _tiny(n_layers=2, side_tokens=True, rel_bias=True, dropout=p, attn_dropout=p)
    net = SASRec(cfg, n, tokens, 5)
    for param in net.parameters():  # move away from the near-zero init so differences show
        param.data.normal_(0, 0.3)
    x = pad_left([np.array([3, 1, 4, 1, 5]), np.array([9]), np.array([2, 6, 5, 3, 5, 8, 9])], 12)
    return net, x


def test_eval_mode_scores_equal_the_explicit_reference() -> None:
    net, x = _random_side_net()
    net.eval()
    ref = _reference_states(net, x)  # (B, T, D)
    real = x > 0
    assert torch.allclose(net(x)[real], ref[real], atol=1e-4)
    assert torch.allclose(net.encode(x), ref[:, -1], atol=1e-4)
    expected_scores = ref[:, -1] @ net.item_table().T
    assert torch.allclose(net.score(x), expected_scores, atol=1e-3)
    # the ranking is the reference ranking, not a chance ordering
    assert torch.equal(
        net.score(x).argsort(1, descending=True)[:, :5],
        expected_scores.argsort(1, descending=True)[:, :5],
    )


def test_training_forward_without_dropout_equals_inference() -> None:
    net, x = _random_side_net(high_dropout=False)
    net.train()
    train_states = net(x)[:, -1]
    net.eval()
    assert torch.allclose(net.encode(x), train_states, atol=1e-5)


def test_states_are_causal_prefix_consistent_and_padding_free() -> None:
    net, _ = _random_side_net(high_dropout=False)
    net.eval()
    seq = np.array([2, 6, 5, 3, 5, 8, 9])
    full = net(pad_left([seq], 12))[0]  # (T, D), T = 7
    for t in range(1, len(seq) + 1):
        prefix = net.encode(pad_left([seq[:t]], 12))[0]
        assert torch.allclose(prefix, full[t - 1], atol=1e-5)  # no peeking at later items
    wide = torch.cat([torch.zeros(1, 5, dtype=torch.long), pad_left([seq], 12)], dim=1)
    assert torch.allclose(net.encode(wide)[0], full[-1], atol=1e-5)  # extra padding: no effect


# -- the Recommender wrapper -----------------------------------------------------------------------
def _side_model_and_data() -> tuple[SASRecModel, InteractionData]:
    rng = np.random.default_rng(4)
    n = 16
    seqs = _successor_sequences(rng, 120, n, noise=0.2)
    side = ItemSide(attributes=[[1 + i % 4] for i in range(n)], brand=[None] * (n - 1) + ["acme"])
    model = SASRecModel(
        hidden=16, n_layers=1, max_len=10, epochs=3, batch_size=32, side_tokens=True, seed=4
    )
    return model, _data(seqs, n, side)


def test_save_load_gives_identical_scores(tmp_path: Path) -> None:
    model, data = _side_model_and_data()
    model.fit(data)
    histories = [np.array([1, 2, 3]), np.array([15]), np.array([], dtype=np.int64), np.arange(16)]
    before = model.score(histories)
    loaded = SASRecModel.load(model.save(tmp_path / "m"))
    assert loaded.config == model.config
    assert loaded.vocab == model.vocab
    np.testing.assert_array_equal(loaded.score(histories), before)
    np.testing.assert_array_equal(loaded.item_vectors(), model.item_vectors())
    assert np.all(before[2] == 0)  # empty history: zero state, all scores 0
    assert len(model.history) >= 1 and "val_ndcg@10" in model.history[0]


def test_built_in_validation_matches_the_shared_metrics() -> None:
    model, data = _side_model_and_data()
    model.fit(data)
    hist = [s[:-1] for s in data.sequences]
    targets = np.array([s[-1] for s in data.sequences])
    ev = make_eval_set(hist, targets, model.config.max_len)  # type: ignore[attr-defined]
    mine = evaluate(model.net, ev, ks=(10,))  # type: ignore[arg-type]
    scores = model.score(hist)
    mask_seen(scores, hist)
    hr, ndcg = hit_ndcg_from_scores(scores, targets, 10, ties="optimistic")
    assert mine["hr@10"] == pytest.approx(hr.mean(), abs=1e-9)
    assert mine["ndcg@10"] == pytest.approx(ndcg.mean(), rel=1e-5)


def test_side_tokens_table_by_hand() -> None:
    side = ItemSide(
        attributes=[[7, 8], [], [8]], brand=["b", None, "b"], categories=[[], ["x"], []]
    )
    table, vocab = side_tokens(side, 3, max_per_item=8)
    assert vocab == ["attr:7", "attr:8", "brand:b", "cat:x"]
    assert table.tolist() == [[0, 0, 0], [1, 2, 3], [4, 0, 0], [2, 3, 0]]


def test_side_tokens_give_never_seen_items_meaningful_vectors() -> None:
    """Items 10..19 never occur in training but share a token with items 0..9 (item 10 + k ~ k)."""
    rng = np.random.default_rng(5)
    warm = 10
    seqs = _successor_sequences(rng, 300, warm, noise=0.1)
    side = ItemSide(attributes=[[1 + i % warm] for i in range(2 * warm)])
    model = SASRecModel(
        hidden=32,
        n_layers=1,
        max_len=10,
        epochs=10,
        batch_size=32,
        lr=5e-3,
        side_tokens=True,
        dropout=0.1,
        attn_dropout=0.1,
        validation=False,
        seed=5,
    ).fit(_data(seqs, 2 * warm, side))
    hist = [np.array([(k - 1) % warm, k]) for k in range(warm)]
    cold_scores = model.score(hist)[:, warm:]  # (10, 10): only the never-seen twins
    hits = cold_scores.argmax(1) == (np.arange(warm) + 1) % warm
    assert hits.mean() >= 0.8  # without side tokens the cold items rank at chance (1/10)


def test_training_windows_use_every_target_once() -> None:
    data = make_training_tensor([np.arange(7), np.array([5]), np.array([3, 4])], max_len=3)
    assert data.tolist() == [[4, 5, 6, 7], [1, 2, 3, 4], [0, 0, 4, 5]]


def test_sampled_softmax_training_also_learns_the_rule() -> None:
    torch.manual_seed(6)
    rng = np.random.default_rng(6)
    n = 20
    net = SASRec(_tiny(), n)
    cfg = TrainConfig(epochs=12, batch_size=32, lr=5e-3, loss="sampled", n_negatives=8)
    train_sasrec(net, _successor_sequences(rng, 300, n, noise=0.1), cfg)
    hist = [np.array([a, (a + 1) % n]) for a in range(n)]
    assert _top1_accuracy(net, hist, [(a + 2) % n for a in range(n)]) >= 0.9


@pytest.mark.slow
def test_side_text_embeddings_are_fused_and_saved(tmp_path: Path) -> None:
    """Items with the same text share a frozen text vector; missing text gives zeros."""
    texts = ["red lipstick", "blue shampoo", None, "red lipstick", "hiking boots", "tent"]
    rng = np.random.default_rng(7)
    seqs = _successor_sequences(rng, 40, len(texts), noise=0.2)
    model = SASRecModel(hidden=16, n_layers=1, max_len=8, epochs=1, side_text=True)
    model.fit(_data(seqs, len(texts), ItemSide(text=texts)))
    text = model.net.items.text  # type: ignore[union-attr]
    assert text is not None and text.shape == (len(texts) + 1, 384)
    assert torch.equal(text[1], text[4])  # same text, same vector (rows are shifted by one)
    assert torch.all(text[3] == 0) and torch.all(text[0] == 0)
    assert float(text[1] @ text[2]) < 0.99  # different texts differ
    histories = [np.array([0, 1]), np.array([5])]
    loaded = SASRecModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.score(histories), model.score(histories))


def test_lr_is_halved_after_each_evaluation_without_improvement() -> None:
    torch.manual_seed(8)
    rng = np.random.default_rng(8)
    seqs = _successor_sequences(rng, 60, 12, noise=0.5)
    val = make_eval_set([s[:-1] for s in seqs], [int(s[-1]) for s in seqs], 12)
    cfg = TrainConfig(epochs=8, batch_size=32, lr=1e-2, patience=100, lr_patience=1)
    result = train_sasrec(SASRec(_tiny(), 12), [s[:-1] for s in seqs], cfg, val)
    best, lr = float("-inf"), 1e-2
    for row in result.history:
        if row["val_ndcg@10"] > best:
            best = row["val_ndcg@10"]
        else:
            lr /= 2
        assert row["lr"] == pytest.approx(lr)
    assert result.history[-1]["lr"] < 1e-2  # the noisy rule makes some evaluation stall


def test_early_stopping_restores_the_best_validation_state() -> None:
    torch.manual_seed(9)
    rng = np.random.default_rng(9)
    seqs = _successor_sequences(rng, 60, 12, noise=0.5)
    val = make_eval_set([s[:-1] for s in seqs], [int(s[-1]) for s in seqs], 12)
    cfg = TrainConfig(epochs=30, batch_size=32, lr=3e-2, patience=2)
    net = SASRec(_tiny(), 12)
    result = train_sasrec(net, [s[:-1] for s in seqs], cfg, val)
    scores = [row["val_ndcg@10"] for row in result.history]
    assert len(scores) < 30  # stopped early: two evaluations without a better score
    assert scores.index(max(scores)) == len(scores) - 3
    assert result.best_score == max(scores)
    assert evaluate(net, val)["ndcg@10"] == pytest.approx(result.best_score)  # best state is back


def test_weight_average_follows_its_warmed_up_decay() -> None:
    from shopflow.models.sasrec_train import _ema

    torch.manual_seed(10)
    net = SASRec(_tiny(), 12)
    ema = _ema(net, decay=0.9)
    expected = {k: v.clone() for k, v in net.named_parameters()}
    for t in range(40):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p))
        ema.update_parameters(net)
        # first update copies; then weight 1 - min(0.9, (1 + t') / (10 + t')), t' = updates before
        w = 1.0 if t == 0 else 1.0 - min(0.9, (1.0 + t) / (10.0 + t))
        for k, p in net.named_parameters():
            expected[k] += w * (p.detach() - expected[k])
    for k, p in ema.module.named_parameters():
        torch.testing.assert_close(p, expected[k])
    with pytest.raises(ValueError, match="ema_decay"):
        _ema(net, decay=1.0)


def test_weight_average_is_what_is_validated_and_kept() -> None:
    torch.manual_seed(11)
    rng = np.random.default_rng(11)
    n = 20
    seqs = _successor_sequences(rng, 300, n, noise=0.1)
    val = make_eval_set([s[:-1] for s in seqs[:60]], [int(s[-1]) for s in seqs[:60]], 12)
    net = SASRec(_tiny(), n)
    cfg = TrainConfig(epochs=12, batch_size=32, lr=5e-3, ema_decay=0.95, patience=100)
    result = train_sasrec(net, [s[:-1] for s in seqs], cfg, val)
    assert evaluate(net, val)["ndcg@10"] == pytest.approx(result.best_score)
    hist = [np.array([a, (a + 1) % n]) for a in range(n)]
    assert _top1_accuracy(net, hist, [(a + 2) % n for a in range(n)]) >= 0.9


def test_side_text_without_any_item_text_adds_nothing(tmp_path: Path) -> None:
    """No item text: no (all-zero) text input, the same network as without side text."""
    rng = np.random.default_rng(12)
    data = _data(_successor_sequences(rng, 40, 8, noise=0.2), 8)
    torch.manual_seed(0)
    with_flag = SASRecModel(hidden=16, n_layers=1, max_len=8, epochs=1, side_text=True)
    with_flag.fit(data)
    torch.manual_seed(0)
    without = SASRecModel(hidden=16, n_layers=1, max_len=8, epochs=1)
    without.fit(data)
    assert with_flag.net is not None and with_flag.net.items.text_proj is None
    histories = [np.array([0, 1]), np.array([5])]
    np.testing.assert_allclose(with_flag.score(histories), without.score(histories), rtol=1e-5)
    loaded = SASRecModel.load(with_flag.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.score(histories), with_flag.score(histories))
