"""Incremental update of a trained sequential model: new item ids without retraining, warm start.

:func:`extend_items` grows the item tables for ``n_new`` items appended after the old ones.
Old items keep their rows exactly, so every old score is unchanged until fine-tuning. A new item's
side tokens and text come from ``side`` (tokens the model's vocabulary lacks are dropped: the token
table stays as trained), and its id embedding starts as the similarity-weighted mean of the id
embeddings of the old items closest to it in side information (shared tokens, text cosine), or the
mean id embedding of all old items when it has none. :func:`select_items` reorders or drops items,
and :func:`align_items` does both to follow a newer :class:`~shopflow.store.idmap.IdMap`.

:func:`fine_tune` then trains the grown model on new sequences (``sasrec_train.train_sasrec``, the
same loss and batching), with optional early stopping that keeps the starting weights when no
epoch beats them.

Example
-------
>>> grown, n_new = align_items(model, old_map, new_data.items, new_data.side)   # doctest: +SKIP
>>> fine_tune(grown, new_sequences, epochs=3)                                    # doctest: +SKIP
>>> grown.recommend([np.array([3, 5, 8])], k=10)                                 # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np
import torch
from torch import nn

from shopflow.features.sequences import ItemSide
from shopflow.models.sasrec_model import SASRecModel, side_tokens, text_embeddings
from shopflow.models.sasrec_train import (
    TrainConfig,
    TrainResult,
    evaluate,
    make_eval_set,
    seed_everything,
    train_sasrec,
)
from shopflow.store.idmap import IdMap

log = logging.getLogger(__name__)


def side_rows(side: ItemSide, rows: np.ndarray) -> ItemSide:
    """The side information of items ``rows`` only."""
    picked: dict[str, Any] = {}
    for f in fields(ItemSide):
        values = getattr(side, f.name)
        if values is not None:
            picked[f.name] = (
                values[rows] if isinstance(values, np.ndarray) else [values[r] for r in rows]
            )
    return ItemSide(**picked)


def _new_tokens(
    model: SASRecModel, side: ItemSide, n_old: int, n_new: int, width: int
) -> torch.Tensor:
    """Side-token rows (n_new, width) of the new items in the model's own vocabulary."""
    cfg = model.config
    local, names = side_tokens(
        side_rows(side, np.arange(n_old, n_old + n_new)),
        n_new,
        cfg.max_tokens_per_item,  # type: ignore[attr-defined]
    )
    known = {name: j + 1 for j, name in enumerate(model.vocab)}
    lookup = torch.tensor([0] + [known.get(name, 0) for name in names], dtype=torch.long)
    mapped = lookup[local[1:]]  # (n_new, A'), unknown tokens → 0
    out = torch.zeros(n_new, width, dtype=torch.long)
    for r, row in enumerate(mapped):
        kept = row[row > 0][:width]
        out[r, : len(kept)] = kept
    dropped = int((local[1:] > 0).sum() - (mapped > 0).sum())
    if dropped:
        log.info("extend_items: %d side tokens of new items are not in the vocabulary", dropped)
    return out


def _similarity(
    tokens: torch.Tensor | None, text: torch.Tensor | None, n_old: int, n_new: int
) -> torch.Tensor:
    """Side similarity of new items to old ones (n_new, n_old): shared tokens + text cosine ≥ 0.

    ``tokens`` / ``text`` hold all rows of the grown item tables (row 0 = padding).
    """
    sim = torch.zeros(n_new, n_old)
    if tokens is not None:
        onehot = torch.zeros(tokens.shape[0], int(tokens.max()) + 1)
        onehot.scatter_(1, tokens, 1.0)
        onehot[:, 0] = 0.0  # token 0 is "none"
        sim += onehot[n_old + 1 :] @ onehot[1 : n_old + 1].T  # shared-token counts
    if text is not None:
        unit = torch.nn.functional.normalize(text.float(), dim=1)
        sim += (unit[n_old + 1 :] @ unit[1 : n_old + 1].T).clamp(min=0.0)
    return sim


@torch.no_grad()
def extend_items(
    model: SASRecModel,
    n_new: int,
    side: ItemSide | None = None,
    text: np.ndarray | None = None,
    neighbours: int = 10,
) -> SASRecModel:
    """A copy of ``model`` that also knows items ``N .. N + n_new - 1`` (old items unchanged).

    Parameters
    ----------
    model
        A trained model over N items.
    n_new
        How many items to append.
    side
        Side information of the grown catalogue (N + n_new entries; rows N.. are read), for the
        side tokens (and, when the model fuses text, the text) of the new items.
    text
        Text embeddings of the new items (n_new, E), instead of encoding ``side.text``.
    neighbours
        Old items whose id embeddings are averaged into a new item's, by side similarity.
    """
    if not model.fitted or model.net is None:
        raise ValueError("extend_items needs a trained model: fit it or load a saved one")
    if n_new < 0:
        raise ValueError(f"n_new must be ≥ 0, got {n_new}")
    grown = copy.deepcopy(model)
    net, n_old = grown.net, model.n_items
    assert net is not None
    if n_new == 0:
        return grown
    if side is not None:
        for f in fields(ItemSide):
            values = getattr(side, f.name)
            if values is not None and len(values) != n_old + n_new:
                raise ValueError(
                    f"side.{f.name} has {len(values)} entries; the grown catalogue {n_old + n_new}"
                )
    emb = net.items
    device = emb.ids.weight.device
    tokens = emb.tokens
    if tokens is not None:
        rows = torch.zeros(n_new, tokens.shape[1], dtype=torch.long)
        if side is not None:
            rows = _new_tokens(grown, side, n_old, n_new, tokens.shape[1])
        emb.tokens = torch.cat([tokens, rows.to(device)])  # (N+1+n_new, A)
    if emb.text is not None:
        rows_t = torch.zeros(n_new, emb.text.shape[1])
        if text is not None:
            rows_t = torch.as_tensor(np.asarray(text), dtype=torch.float32)
        elif side is not None and side.text is not None:
            rows_t = text_embeddings(side.text[n_old:])[1:]
        if rows_t.shape != (n_new, emb.text.shape[1]):
            raise ValueError(f"text for new items must be ({n_new}, {emb.text.shape[1]})")
        emb.text = torch.cat([emb.text, rows_t.to(device)])  # (N+1+n_new, E)
    old = emb.ids.weight[1 : n_old + 1]  # (N, D)
    sim = _similarity(
        emb.tokens.cpu() if emb.tokens is not None else None,
        emb.text.cpu() if emb.text is not None else None,
        n_old,
        n_new,
    ).to(device)  # (n_new, N)
    init = old.mean(0, keepdim=True).expand(n_new, -1).clone()  # (n_new, D)
    if n_old:
        top, idx = sim.topk(min(neighbours, n_old), dim=1)  # (n_new, k)
        weight = top / top.sum(1, keepdim=True).clamp(min=1e-12)
        has = top.sum(1) > 0
        init[has] = (weight[has, :, None] * old[idx[has]]).sum(1)
    ids = nn.Embedding(n_old + n_new + 1, old.shape[1], padding_idx=0).to(device)
    ids.weight.copy_(torch.cat([emb.ids.weight, init]))
    emb.ids = ids
    net.n_items = grown.n_items = n_old + n_new
    return grown


@torch.no_grad()
def select_items(model: SASRecModel, rows: Sequence[int] | np.ndarray) -> SASRecModel:
    """A copy of ``model`` whose item ``j`` is the old item ``rows[j]`` (reorder, or drop items)."""
    if not model.fitted or model.net is None:
        raise ValueError("select_items needs a trained model")
    rows_arr = np.asarray(rows, dtype=np.int64)
    if rows_arr.ndim != 1 or (
        len(rows_arr) and (rows_arr.min() < 0 or rows_arr.max() >= model.n_items)
    ):
        raise ValueError(f"rows must be item ids in [0, {model.n_items})")
    grown = copy.deepcopy(model)
    emb = grown.net.items  # type: ignore[union-attr]
    device = emb.ids.weight.device
    take = torch.as_tensor(np.concatenate([[0], rows_arr + 1]), device=device)  # row 0: padding
    ids = nn.Embedding(len(take), emb.ids.weight.shape[1], padding_idx=0).to(device)
    ids.weight.copy_(emb.ids.weight[take])
    emb.ids = ids
    if emb.tokens is not None:
        emb.tokens = emb.tokens[take].clone()
    if emb.text is not None:
        emb.text = emb.text[take].clone()
    grown.net.n_items = grown.n_items = len(rows_arr)  # type: ignore[union-attr]
    return grown


def align_items(
    model: SASRecModel, old: IdMap, new: IdMap, side: ItemSide | None = None
) -> tuple[SASRecModel, int]:
    """A copy of ``model`` (fitted with item map ``old``) over item map ``new``; and how many items
    were new. Items only in ``old`` are dropped; items only in ``new`` get :func:`extend_items`."""
    if len(old) != model.n_items:
        raise ValueError(f"the model knows {model.n_items} items, its map {len(old)}")
    where = new.to_index(old.external_ids, missing=-1)  # old index → new index
    index = old.to_index(new.external_ids, missing=-1)  # (len(new),) old index or -1
    fresh = np.flatnonzero(index < 0)
    if side is not None:  # side rows in the order extend_items reads them: old items, then new
        order = np.concatenate([np.where(where >= 0, where, 0), fresh])
        side = side_rows(side, order)
    grown = extend_items(model, len(fresh), side)
    rows = index.copy()
    rows[fresh] = model.n_items + np.arange(len(fresh))
    return select_items(grown, rows), len(fresh)


def fine_tune(
    model: SASRecModel,
    sequences: Sequence[np.ndarray],
    epochs: int = 3,
    lr: float | None = None,
    val: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    **train: Any,
) -> TrainResult:
    """Warm-start training of ``model`` in place on ``sequences`` (item ids, oldest first).

    Parameters
    ----------
    epochs, lr
        Fine-tuning length and learning rate (default: the model's own).
    val
        (histories, targets) for early stopping on NDCG@10; the starting weights are kept when no
        epoch beats them.
    train
        Other ``TrainConfig`` settings (``batch_size``, ``patience``, ``max_seconds``, ...).
    """
    if not model.fitted or model.net is None:
        raise ValueError("fine_tune needs a trained model: fit it or load a saved one")
    cfg_all = model.config
    base = {f.name: getattr(cfg_all, f.name) for f in fields(TrainConfig)}
    cfg = replace(TrainConfig(**base), epochs=epochs, lr=lr or base["lr"], max_seconds=None)
    cfg = replace(cfg, **train)
    seed_everything(cfg.seed)
    net = model.net
    val_set = make_eval_set(val[0], val[1], net.cfg.max_len) if val is not None else None
    before, start = float("-inf"), None
    if val_set is not None:
        before = evaluate(net, val_set)["ndcg@10"]
        start = copy.deepcopy(net.state_dict())
    seqs = [np.asarray(s, dtype=np.int64) for s in sequences]
    counts = np.bincount(np.concatenate(seqs), minlength=model.n_items) if seqs else None
    result = train_sasrec(
        net, seqs, cfg, val_set, torch.as_tensor(counts) if counts is not None else None
    )
    if start is not None and result.best_score <= before:
        net.load_state_dict(start)
        result.best_epoch, result.best_score = 0, before
        log.info("fine_tune: no epoch beat the starting weights (val NDCG@10 %.4f)", before)
    model.result = result
    return result
