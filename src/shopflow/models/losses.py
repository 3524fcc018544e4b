"""Next-item losses and negative samplers, as standalone functions.

Every loss takes hidden states ``(..., D)`` and targets ``(...)`` of the same leading shape, where a
target of ``pad`` (default -1) marks a position with nothing to predict (padding). Those positions
are dropped *before* the product with the item table, so padding costs nothing and contributes
nothing: the loss is the mean over real positions only.

- :func:`full_softmax_ce` — cross-entropy over the whole catalogue (default up to ~100k items).
- :func:`sampled_softmax_ce` — softmax over the target and ``S`` shared sampled negatives, with the
  logQ correction (Bengio & Senécal 2008; Yi et al., "Sampling-bias-corrected neural modeling",
  RecSys 2019): each logit gets ``- log q(item)`` so that the sampled loss is a consistent
  stand-in for the full softmax. Negatives equal to the target ("accidental hits") are masked.
- :func:`uniform_log_q`, :func:`popularity_log_q`, :func:`sample_items` — the samplers.

Example
-------
>>> import torch
>>> h = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])      # (B=1, T=2, D=2)
>>> table = torch.tensor([[1.0, 0.0], [0.0, 1.0]])    # (N=2, D=2)
>>> y = torch.tensor([[-1, 1]])                       # first position is padding
>>> round(float(full_softmax_ce(h, y, table)), 4)     # -log(e / (1 + e))
0.3133
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _real(hidden: Tensor, targets: Tensor, pad: int) -> tuple[Tensor, Tensor]:
    """Hidden states and targets at real positions: (..., D), (...) → (M, D), (M,)."""
    if hidden.shape[:-1] != targets.shape:
        raise ValueError(f"hidden {tuple(hidden.shape)} and targets {tuple(targets.shape)} differ")
    real = targets != pad  # (...)
    return hidden[real], targets[real]  # (M, D), (M,)


def full_softmax_ce(hidden: Tensor, targets: Tensor, item_table: Tensor, pad: int = -1) -> Tensor:
    """Mean cross-entropy of the target item against every item, over real positions.

    Parameters
    ----------
    hidden
        States (..., D).
    targets
        Item index 0..N-1 per state (...), or ``pad`` where there is none.
    item_table
        Output item vectors (N, D).
    pad
        Target value of positions to ignore.

    Returns
    -------
    Tensor
        Scalar; 0 (with a gradient path) when no position is real.
    """
    h, y = _real(hidden, targets, pad)  # (M, D), (M,)
    if len(y) == 0:
        return hidden.sum() * 0.0
    logits = h @ item_table.T  # (M, N)
    return F.cross_entropy(logits.float(), y)


def sampled_softmax_ce(
    hidden: Tensor,
    targets: Tensor,
    item_table: Tensor,
    negatives: Tensor,
    log_q: Tensor | None = None,
    pad: int = -1,
) -> Tensor:
    """Mean softmax cross-entropy of each target against ``S`` shared negatives, logQ-corrected.

    Parameters
    ----------
    hidden, targets, item_table, pad
        As in :func:`full_softmax_ce`.
    negatives
        Sampled item indices (S,), shared by every position (e.g. from :func:`sample_items`).
    log_q
        Log sampling probability of every item (N,); ``None`` for no correction. Subtracted from
        the logits of the target and of each negative.

    Returns
    -------
    Tensor
        Scalar. With ``negatives`` = every item once and uniform (or no) ``log_q`` it equals
        :func:`full_softmax_ce` exactly.
    """
    h, y = _real(hidden, targets, pad)  # (M, D), (M,)
    if len(y) == 0:
        return hidden.sum() * 0.0
    pos = (h * item_table[y]).sum(-1)  # (M,)
    neg = h @ item_table[negatives].T  # (M, S)
    if log_q is not None:
        pos = pos - log_q[y]
        neg = neg - log_q[negatives][None, :]
    neg = neg.masked_fill(negatives[None, :] == y[:, None], float("-inf"))  # accidental hits
    logits = torch.cat([pos[:, None], neg], dim=1).float()  # (M, 1 + S), target in column 0
    return F.cross_entropy(logits, torch.zeros_like(y))


def uniform_log_q(n_items: int, device: torch.device | str | None = None) -> Tensor:
    """Log probability of every item under uniform sampling → (N,) all ``-log N``."""
    return torch.full((n_items,), -float(torch.log(torch.tensor(float(n_items)))), device=device)


def popularity_log_q(counts: Tensor, alpha: float = 1.0, smoothing: float = 1.0) -> Tensor:
    """Log probabilities proportional to ``(count + smoothing) ** alpha`` → (N,).

    ``alpha`` = 1 samples by popularity, 0 uniformly; values in between (0.75 as in word2vec)
    flatten the head. ``smoothing`` keeps never-seen items sampleable.
    """
    weights = (counts.double() + smoothing).pow(alpha)  # (N,)
    return (weights / weights.sum()).log().float()


def sample_items(log_q: Tensor, n: int, generator: torch.Generator | None = None) -> Tensor:
    """``n`` item indices drawn with replacement from the distribution ``exp(log_q)`` → (n,)."""
    return torch.multinomial(log_q.exp(), n, replacement=True, generator=generator)
