"""Training loop of the sequential transformer: batching, losses, early stopping on NDCG@10.

Sequence-to-sequence training as in SASRec: every prefix of every training sequence predicts its
next item, in one forward pass per sequence. Sequences are pre-built once as one left-padded int
tensor (long sequences cut into windows of ``max_len + 1`` so every target is used once); an epoch
is a shuffled list of index batches, each drawn from users of similar length ("sortish") and
trimmed to its longest row, so padding costs little. No per-sample Python runs in the hot loop.

Early stopping watches **validation** NDCG@10 under full ranking with the user's history excluded,
and the best state is restored at the end. Never pass test targets here. With ``ema_decay`` > 0 the
model validated and kept is an exponential moving average of the weights over the steps
(``torch.optim.swa_utils.AveragedModel``): a smoother curve, so the epoch that early stopping picks
on a sample of validation users depends less on the noise of one step.

Example
-------
>>> net = SASRec(SASRecConfig(hidden=16), n_items=100)                        # doctest: +SKIP
>>> val = make_eval_set(histories, targets, max_len=50)                         # doctest: +SKIP
>>> result = train_sasrec(net, train_sequences, TrainConfig(epochs=5), val)     # doctest: +SKIP
>>> result.best_epoch, result.history[-1]["val_ndcg@10"]                        # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.optim.swa_utils import AveragedModel
from tqdm.auto import tqdm

from shopflow.models.losses import (
    full_softmax_ce,
    popularity_log_q,
    sample_items,
    sampled_softmax_ce,
    uniform_log_q,
)
from shopflow.models.sasrec import SASRec, pad_left
from shopflow.models.sasrec_config import (  # re-exported: callers import from either module
    LOSSES,
    SAMPLERS,
    TrainConfig,
    TrainResult,
    pick_device,
    seed_everything,
    uses_sampled_softmax,
)

log = logging.getLogger(__name__)

__all__ = [
    "LOSSES",
    "SAMPLERS",
    "EvalSet",
    "TrainConfig",
    "TrainResult",
    "evaluate",
    "make_eval_set",
    "make_training_tensor",
    "pick_device",
    "seed_everything",
    "train_sasrec",
]


@dataclass
class EvalSet:
    """Users to rank for: model inputs, the items to exclude, the target item."""

    inputs: Tensor  # (U, T) shifted, left-padded last max_len history items
    seen_flat: Tensor  # (sum of history lengths,) item ids 0..N-1, user after user
    seen_offsets: Tensor  # (U + 1,) user u's history is seen_flat[off[u]:off[u+1]]
    targets: Tensor  # (U,) item ids 0..N-1


def make_training_tensor(sequences: Sequence[np.ndarray], max_len: int) -> Tensor:
    """Left-padded windows of at most ``max_len + 1`` shifted ids → (W, max_len + 1) long.

    A sequence longer than ``max_len + 1`` is cut from its end into windows that overlap by one
    item, so every item after the first is a target exactly once. Sequences under 2 items are
    dropped (nothing to predict).
    """
    windows: list[np.ndarray] = []
    for seq in sequences:
        end = len(seq)
        while end >= 2:
            start = max(0, end - max_len - 1)
            windows.append(np.asarray(seq[start:end]))
            end = start + 1 if start > 0 else 0
    if not windows:
        return torch.zeros(0, max_len + 1, dtype=torch.long)
    out = pad_left(windows, max_len + 1)  # (W, ≤ max_len + 1)
    full = torch.zeros(len(windows), max_len + 1, dtype=torch.long)
    full[:, max_len + 1 - out.shape[1] :] = out
    return full


def make_eval_set(
    histories: Sequence[np.ndarray], targets: Sequence[int] | np.ndarray, max_len: int
) -> EvalSet:
    """Build an :class:`EvalSet`: ranking ``targets[u]`` given ``histories[u]`` (oldest first).

    Users are stored shortest history first, so that evaluation batches carry little padding.
    """
    order = np.argsort([len(h) for h in histories], kind="stable")
    histories = [histories[u] for u in order]
    targets = np.asarray(targets, dtype=np.int64)[order]
    lens = np.array([len(h) for h in histories], dtype=np.int64)
    flat = np.concatenate([np.asarray(h, np.int64) for h in histories]) if lens.sum() else lens[:0]
    return EvalSet(
        inputs=pad_left(histories, max_len),
        seen_flat=torch.from_numpy(flat),
        seen_offsets=torch.from_numpy(np.concatenate([[0], np.cumsum(lens)])),
        targets=torch.as_tensor(targets),
    )


@torch.no_grad()
def evaluate(
    net: SASRec, ev: EvalSet, ks: Sequence[int] = (10, 20), batch_size: int = 1024
) -> dict[str, float]:
    """Full-ranking HR@K and NDCG@K of ``ev`` (history items excluded), means over users."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    table = net.item_table()  # (N, D)
    sums = {f"{m}@{k}": 0.0 for k in ks for m in ("hr", "ndcg")}
    n_users = len(ev.targets)
    for lo in range(0, n_users, batch_size):
        hi = min(lo + batch_size, n_users)
        x = ev.inputs[lo:hi]  # (b, T)
        width = max(1, int((x > 0).sum(1).max()))
        scores = net.encode(x[:, -width:].to(device)) @ table.T  # (b, N)
        seen = ev.seen_flat[ev.seen_offsets[lo] : ev.seen_offsets[hi]].to(device)
        lens = (ev.seen_offsets[lo + 1 : hi + 1] - ev.seen_offsets[lo:hi]).to(device)
        rows = torch.repeat_interleave(torch.arange(hi - lo, device=device), lens)
        scores[rows, seen] = float("-inf")
        y = ev.targets[lo:hi].to(device)
        target_score = scores.gather(1, y[:, None])  # (b, 1)
        rank = (scores > target_score).sum(1)  # (b,) 0 = first
        rank = torch.where(torch.isfinite(target_score[:, 0]), rank, scores.shape[1])
        for k in ks:
            hit = rank < k
            sums[f"hr@{k}"] += float(hit.sum())
            sums[f"ndcg@{k}"] += float((hit / torch.log2(rank.float() + 2.0)).sum())
    net.train(was_training)
    return {key: value / max(n_users, 1) for key, value in sums.items()}


def _batches(lengths: Tensor, batch_size: int, generator: torch.Generator) -> list[Tensor]:
    """Shuffled index batches; rows in a batch come from a similar-length pool (sortish)."""
    perm = torch.randperm(len(lengths), generator=generator)
    pool = batch_size * 32
    out: list[Tensor] = []
    for lo in range(0, len(perm), pool):
        chunk = perm[lo : lo + pool]
        chunk = chunk[torch.argsort(lengths[chunk], descending=True)]
        out.extend(chunk.split(batch_size))
    order = torch.randperm(len(out), generator=generator).tolist()
    return [out[i] for i in order]


def train_sasrec(
    net: SASRec,
    sequences: Sequence[np.ndarray],
    cfg: TrainConfig,
    val: EvalSet | None = None,
    item_counts: Tensor | None = None,
    monitor: EvalSet | None = None,
) -> TrainResult:
    """Train ``net`` in place on ``sequences`` (item ids 0..N-1, oldest first); keep the best state.

    Parameters
    ----------
    net
        The network (its config gives ``max_len``).
    sequences
        Training sequences; every next item of every prefix is a target.
    cfg
        Training settings.
    val
        Validation users for early stopping on NDCG@10; ``None`` trains ``cfg.epochs`` epochs.
    item_counts
        Training frequency of each item (N,), for ``sampler="popularity"``.
    monitor
        Optional extra users evaluated and logged (``monitor_*``) at every validation, never used
        for any decision — for learning curves in benchmarks (e.g. quality against time).

    Returns
    -------
    TrainResult
        One history row per evaluation (epoch, loss, seconds, val metrics).
    """
    if cfg.loss not in LOSSES:
        raise ValueError(f"unknown loss {cfg.loss!r}; known: {', '.join(LOSSES)}")
    if cfg.sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {cfg.sampler!r}; known: {', '.join(SAMPLERS)}")
    device = pick_device(cfg.device)
    net.to(device)
    gen = torch.Generator().manual_seed(cfg.seed)
    data = make_training_tensor(sequences, net.cfg.max_len)  # (W, max_len + 1)
    lengths = (data > 0).sum(1)  # (W,)
    sampled = uses_sampled_softmax(cfg, net.n_items)
    log_q_cpu = _log_q(cfg, net.n_items, item_counts) if sampled else None
    log_q = log_q_cpu.to(device) if log_q_cpu is not None else None
    opt = torch.optim.AdamW(
        net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=device.type != "mps"
    )
    autocast: Any = (
        torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()
    )
    ema = _ema(net, cfg.ema_decay) if cfg.ema_decay > 0 else None
    # the weights validated and returned: the average's copy of the network, or the network
    kept: SASRec = ema.module if ema is not None else net  # type: ignore[assignment]
    result = TrainResult()
    best_state: dict[str, Tensor] | None = None
    stale = lr_stale = 0
    start, start_cpu = time.perf_counter(), time.process_time()
    bar = tqdm(range(1, cfg.epochs + 1), desc="sasrec", disable=not cfg.progress, unit="epoch")
    for epoch in bar:
        net.train()
        total, count, epoch_start = 0.0, 0, time.perf_counter()
        for idx in _batches(lengths, cfg.batch_size, gen):
            width = int(lengths[idx].max())
            seq = data[idx, -width:].to(device, non_blocking=True)  # (b, width)
            x = seq[:, :-1]  # (b, width - 1) inputs
            y = torch.where(x > 0, seq[:, 1:] - 1, -1)  # (b, width - 1) next item, -1 = none
            with autocast:
                full = net.embed_all()  # (N + 1, D), row 0 = padding
                h = net(x, full)  # (b, width - 1, D)
                table = full[1:]  # (N, D) output vectors, tied
                if log_q is None or log_q_cpu is None:
                    loss = full_softmax_ce(h, y, table)
                else:
                    neg = sample_items(log_q_cpu, cfg.n_negatives, gen).to(device)  # (S,)
                    loss = sampled_softmax_ce(h, y, table, neg, log_q)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                ema.update_parameters(net)
            total += float(loss.detach())
            count += 1
        train_seconds = time.perf_counter() - epoch_start
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - start >= cfg.max_seconds
        row: dict[str, float] = {"epoch": epoch, "loss": total / max(count, 1)}
        if val is not None and (epoch % cfg.eval_every == 0 or epoch == cfg.epochs or out_of_time):
            row.update({f"val_{k}": v for k, v in evaluate(kept, val).items()})
            if row["val_ndcg@10"] > result.best_score:
                result.best_score, result.best_epoch, stale = row["val_ndcg@10"], epoch, 0
                best_state, lr_stale = copy.deepcopy(kept.state_dict()), 0
            else:
                stale, lr_stale = stale + 1, lr_stale + 1
            if cfg.lr_patience and lr_stale >= cfg.lr_patience:  # plateau: smaller steps
                for group in opt.param_groups:
                    group["lr"] *= cfg.lr_decay
                lr_stale = 0
            row["lr"] = opt.param_groups[0]["lr"]
            if monitor is not None:
                wall, cpu = time.perf_counter(), time.process_time()
                row.update({f"monitor_{k}": v for k, v in evaluate(kept, monitor).items()})
                start += time.perf_counter() - wall  # monitoring is not counted in the clocks
                start_cpu += time.process_time() - cpu
        row["train_seconds"] = train_seconds  # this epoch, without evaluation
        row["seconds"] = time.perf_counter() - start  # since the start, evaluations included
        row["cpu_seconds"] = time.process_time() - start_cpu  # all threads; robust to a busy host
        result.history.append(row)
        log.info("sasrec %s", " ".join(f"{k}={v:.4g}" for k, v in row.items()))
        bar.set_postfix({k: f"{v:.4f}" for k, v in row.items() if k in ("loss", "val_ndcg@10")})
        if (val is not None and stale >= cfg.patience) or out_of_time:
            break
    bar.close()
    if best_state is not None:
        net.load_state_dict(best_state)
    elif result.history:
        result.best_epoch = int(result.history[-1]["epoch"])
        if ema is not None:  # no validation: the average of the last steps is the model
            net.load_state_dict(kept.state_dict())
    result.seconds = time.perf_counter() - start
    net.eval()
    return result


def _ema(net: SASRec, decay: float) -> AveragedModel:
    """A copy of ``net`` kept as the moving average ``avg += w_t (param - avg)`` after each step.

    ``w_t = 1 - min(decay, (1 + t) / (10 + t))``: early steps move the average a lot, so it is not
    held back by the random initial weights; later ones by ``1 - decay``.
    """
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema_decay must be in (0, 1), got {decay}")

    def update(
        avg: list[Tensor] | tuple[Tensor, ...], params: list[Tensor] | tuple[Tensor, ...], n: Any
    ) -> None:
        t = int(n)
        weight = 1.0 - min(decay, (1.0 + t) / (10.0 + t))
        torch._foreach_lerp_(avg, params, weight)

    return AveragedModel(net, multi_avg_fn=update)  # buffers (side tokens, text) are constant


def _log_q(cfg: TrainConfig, n_items: int, counts: Tensor | None) -> Tensor:
    if cfg.sampler == "uniform":
        return uniform_log_q(n_items)
    if counts is None:
        raise ValueError("sampler='popularity' needs item_counts")
    return popularity_log_q(counts, alpha=0.75)
