"""Losses and samplers: hand-computed values, equivalences, padding invariance."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from shopflow.models.losses import (
    full_softmax_ce,
    popularity_log_q,
    sample_items,
    sampled_softmax_ce,
    uniform_log_q,
)


def _case(seed: int = 0, b: int = 3, t: int = 5, d: int = 8, n: int = 11):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(b, t, d, generator=g)
    table = torch.randn(n, d, generator=g)
    targets = torch.randint(0, n, (b, t), generator=g)
    targets[0, :2] = -1  # left padding
    targets[2, :4] = -1
    return hidden, targets, table


def test_full_ce_matches_hand_computed_value() -> None:
    hidden = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])  # (1, 2, 2)
    table = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # (3, 2)
    targets = torch.tensor([[0, 2]])
    # position 0: logits (1, 0, 1), target 0; position 1: logits (0, 2, 2), target 2
    expected = (-(1 - math.log(2 * math.e + 1)) - (2 - math.log(1 + 2 * math.e**2))) / 2
    assert float(full_softmax_ce(hidden, targets, table)) == pytest.approx(expected, rel=1e-6)


def test_full_ce_ignores_padding_positions_and_their_values() -> None:
    hidden, targets, table = _case()
    real = targets != -1
    expected = F.cross_entropy(hidden[real] @ table.T, targets[real])
    assert torch.allclose(full_softmax_ce(hidden, targets, table), expected)
    # garbage (even NaN) in padding states changes nothing, and gets no gradient
    noisy = hidden.clone().requires_grad_(True)
    with torch.no_grad():
        noisy[~real] = float("nan")
    loss = full_softmax_ce(noisy, targets, table)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert noisy.grad is not None
    assert torch.all(noisy.grad[~real] == 0)


def test_loss_is_unchanged_by_extra_left_padding() -> None:
    hidden, targets, table = _case()
    b, _, d = hidden.shape
    wide_h = torch.cat([torch.randn(b, 7, d), hidden], dim=1)  # 7 more padding columns
    wide_t = torch.cat([torch.full((b, 7), -1), targets], dim=1)
    negatives = torch.arange(table.shape[0])
    assert torch.allclose(
        full_softmax_ce(wide_h, wide_t, table), full_softmax_ce(hidden, targets, table)
    )
    assert torch.allclose(
        sampled_softmax_ce(wide_h, wide_t, table, negatives),
        sampled_softmax_ce(hidden, targets, table, negatives),
    )


def test_all_padding_gives_zero_loss_with_a_gradient_path() -> None:
    hidden = torch.randn(2, 3, 4, requires_grad=True)
    targets = torch.full((2, 3), -1)
    table = torch.randn(5, 4)
    loss = full_softmax_ce(hidden, targets, table)
    assert float(loss.detach()) == 0.0
    loss.backward()  # does not raise
    assert float(sampled_softmax_ce(hidden, targets, table, torch.arange(5)).detach()) == 0.0


def test_sampled_equals_full_when_every_item_is_sampled() -> None:
    hidden, targets, table = _case(seed=1)
    n = table.shape[0]
    full = full_softmax_ce(hidden, targets, table)
    every = torch.arange(n)
    assert torch.allclose(sampled_softmax_ce(hidden, targets, table, every), full, atol=1e-6)
    # uniform logQ subtracts the same constant from every logit: no change
    shifted = sampled_softmax_ce(hidden, targets, table, every, uniform_log_q(n))
    assert torch.allclose(shifted, full, atol=1e-6)
    # the order of the sampled items does not matter either
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(3))
    assert torch.allclose(sampled_softmax_ce(hidden, targets, table, perm), full, atol=1e-6)


def test_sampled_logq_correction_and_accidental_hits_by_hand() -> None:
    hidden = torch.tensor([[1.0, 0.0]])  # (1, 2): one real position
    table = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 0.0]])  # item scores 2, 1, 0
    targets = torch.tensor([0])
    negatives = torch.tensor([0, 1, 1])  # item 0 is the target: an accidental hit, masked
    log_q = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    # logits: target 2 - log .5; two copies of item 1: 1 - log .25 each
    pos, neg = 2 - math.log(0.5), 1 - math.log(0.25)
    expected = -(pos - math.log(math.exp(pos) + 2 * math.exp(neg)))
    got = sampled_softmax_ce(hidden, targets, table, negatives, log_q)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # a non-uniform q does change the loss
    assert float(sampled_softmax_ce(hidden, targets, table, negatives)) != pytest.approx(expected)


def test_popularity_log_q_is_a_distribution_following_counts() -> None:
    counts = torch.tensor([0.0, 1.0, 3.0])
    q = popularity_log_q(counts, alpha=1.0, smoothing=1.0).exp()
    assert torch.allclose(q, torch.tensor([1.0, 2.0, 4.0]) / 7)
    flat = popularity_log_q(counts, alpha=0.0).exp()
    assert torch.allclose(flat, torch.full((3,), 1 / 3))
    assert torch.allclose(uniform_log_q(4).exp(), torch.full((4,), 0.25))


def test_sample_items_follows_log_q_and_is_reproducible() -> None:
    log_q = torch.log(torch.tensor([0.7, 0.2, 0.1, 0.0]))
    draws = sample_items(log_q, 20_000, torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.015)
    again = sample_items(log_q, 20_000, torch.Generator().manual_seed(0))
    assert torch.equal(draws, again)


def test_shape_mismatch_is_rejected() -> None:
    with pytest.raises(ValueError, match="differ"):
        full_softmax_ce(
            torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), torch.randn(5, 4)
        )
