"""Settings and results of sequential-transformer training, importable without the training loop.

Serving loads a bundle's sasrec through this module and ``models/sasrec.py`` only; the loop itself
(``models/sasrec_train.py``, with its losses and progress bars) is imported when a model is fitted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

LOSSES = ("full", "sampled", "auto")
SAMPLERS = ("uniform", "popularity")


@dataclass
class TrainConfig:
    """How to train. Defaults: full softmax CE, AdamW 1e-3, batch 64, patience 10 evaluations."""

    epochs: int = 200
    # 64 beat 256 on Beauty at equal epochs (val NDCG@10 after 3 epochs 0.0195 vs 0.0147) for about
    # the same CPU per epoch: the cost is the output layer, paid per target, not per step
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    # "full" softmax CE | "sampled" softmax with logQ correction | "auto": full up to
    # ``full_softmax_max_items`` items, sampled beyond (full softmax logits grow with the catalogue)
    loss: str = "full"
    n_negatives: int = 1024  # shared negatives per batch for loss="sampled"
    full_softmax_max_items: int = 30_000
    sampler: str = "uniform"  # "uniform" | "popularity" (counts ** 0.75)
    patience: int = 10  # evaluations without a better validation NDCG@10 before stopping
    lr_patience: int = 0  # evaluations without improvement before lr *= lr_decay (0: never)
    lr_decay: float = 0.5
    eval_every: int = 1  # epochs between validations
    # > 0: validate, keep and return an exponential moving average of the weights (decay per step,
    # warmed up as min(decay, (1 + t) / (10 + t))) instead of the last step's weights
    ema_decay: float = 0.0
    max_seconds: float | None = None  # stop training after this much wall time (None: no limit)
    seed: int = 0
    device: str = "auto"  # "auto" (CUDA when available) | "cpu" | "cuda"
    progress: bool = False  # show a tqdm bar (runners and the CLI turn it on)


@dataclass
class TrainResult:
    """What training did: one row per evaluation, the best epoch and its validation score."""

    history: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = float("-inf")
    seconds: float = 0.0


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's legacy global generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def pick_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def uses_sampled_softmax(cfg: TrainConfig, n_items: int) -> bool:
    """Whether training ``n_items`` items with ``cfg`` samples negatives (else: full softmax).

    Sampling at least as many negatives as there are items is the full softmax, done exactly.
    """
    wanted = cfg.loss == "sampled" or (cfg.loss == "auto" and n_items > cfg.full_softmax_max_items)
    return wanted and cfg.n_negatives < n_items
