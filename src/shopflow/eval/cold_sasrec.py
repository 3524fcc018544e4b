"""The sequential transformer under the cold-item protocol: train on the warm catalogue, then add
the cold items the way an upsert after training would.

Why not simply fit on ``split.train``? SASRec's full-softmax loss scores every catalogue item as a
negative for every target, so rows of items that never occur are *trained* — pushed down — and so
are the side tokens and the text projection for whatever marks those items out. That is a model
told in advance which items will be new. Instead :func:`fit_cold_sasrec` trains on
:meth:`~shopflow.eval.cold.ColdItemSplit.warm_catalogue` (the cold items do not exist) and
:func:`add_items` then appends them:

- **id vector**: zero — nothing was learnt about the item;
- **side tokens**: the item's brand / category / attribute tokens, through the embeddings learnt
  for those tokens on warm items; a token no warm item has is dropped (nothing learnt about it);
- **text**: the frozen all-MiniLM-L6-v2 vector of the item's text, through the learnt projection.

So a cold item's vector is exactly what its side information says, and a model without side
information gives every cold item the zero vector (all tie, at chance). Everything else — blocks,
positions, warm rows — is copied unchanged: warm items score exactly as in the trained model.

Example
-------
>>> split = cold_item_split(load("scientific"))                               # doctest: +SKIP
>>> model = fit_cold_sasrec(split, side_tokens=True, side_text=True, epochs=20)  # doctest: +SKIP
>>> evaluate_cold(model, split)["cold"]["ndcg@10"]                            # doctest: +SKIP
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any

import numpy as np
import torch

from shopflow.eval.cold import ColdItemSplit
from shopflow.features.sequences import ItemSide
from shopflow.models.sasrec import SASRec, SASRecConfig
from shopflow.models.sasrec_model import SASRecModel, side_tokens, text_embeddings

log = logging.getLogger(__name__)


def fit_cold_sasrec(split: ColdItemSplit, **settings: Any) -> SASRecModel:
    """Fit :class:`SASRecModel` (``settings`` as its config) on the warm catalogue, then add the
    cold items from their side information; the result ranks the full catalogue."""
    data, warm = split.warm_catalogue()
    model = SASRecModel(**settings).fit(data)
    return add_items(model, split.train.side, warm, split.train.n_items)


def add_items(model: SASRecModel, side: ItemSide, known: np.ndarray, n_items: int) -> SASRecModel:
    """A copy of ``model`` over a larger catalogue, new items placed by side information only.

    Parameters
    ----------
    model
        A fitted model over ``len(known)`` items.
    side
        Side data of the full catalogue (``N`` items, as :class:`ItemSide` lists / arrays).
    known
        int (len(known),): ``known[j]`` is the full-catalogue id of the model's item ``j``,
        ascending; every other id in ``[0, N)`` is new.
    n_items
        ``N``, the size of the full catalogue.

    Returns
    -------
    SASRecModel
        Fitted, ``n_items = N``; warm items keep their vectors, new items get side-only vectors.
    """
    known = np.asarray(known, dtype=np.int64)
    net = model.net
    if net is None or not model.fitted:
        raise ValueError("add_items needs a fitted model: call fit() first")
    if len(known) != model.n_items or np.any(np.diff(known) <= 0):
        raise ValueError(f"known must list the model's {model.n_items} items, ascending, once each")
    n = n_items
    if len(known) and known[-1] >= n:
        raise ValueError(f"known holds id {known[-1]}, but the catalogue has {n} items")
    _check_side(side, n)
    cfg = model.config
    new = np.setdiff1d(np.arange(n), known)
    tokens = text = None
    if net.items.tokens is not None:
        tokens = _token_table(side, n, model.vocab, cfg.max_tokens_per_item)  # type: ignore[attr-defined]
    if net.items.text is not None:
        text = torch.zeros(n + 1, net.items.text.shape[1])  # (N+1, E)
        text[torch.from_numpy(known) + 1] = net.items.text[1:].detach().cpu().float()
        texts = [side.text[i] for i in new.tolist()] if side.text is not None else []
        if texts and any(texts):
            text[torch.from_numpy(new) + 1] = text_embeddings(texts)[1:]
        else:
            log.warning("add_items: the new items have no text; their text vectors are zero")
    shape = SASRecConfig(**{f.name: getattr(cfg, f.name) for f in fields(SASRecConfig)})
    grown = SASRec(shape, n, tokens, len(model.vocab), text)
    state = grown.state_dict()
    for key, value in net.state_dict().items():
        if key == "items.ids.weight":  # (W+1, D) → (N+1, D); row 0 and new rows stay zero
            ids = torch.zeros_like(state[key])
            ids[torch.from_numpy(known) + 1] = value[1:].detach().cpu()
            state[key] = ids
        elif key not in ("items.tokens", "items.text"):  # the new side tables are already in place
            state[key] = value.detach().cpu()
    grown.load_state_dict(state)
    device = next(net.parameters()).device
    out = SASRecModel(cfg)
    out.net = grown.to(device).eval()
    out.vocab = list(model.vocab)
    out.result = model.result
    out.n_items = n
    out.fitted = True
    return out


def _check_side(side: ItemSide, n: int) -> None:
    for f in fields(side):
        value = getattr(side, f.name)
        if value is not None and len(value) != n:
            raise ValueError(f"side.{f.name} has {len(value)} entries for a catalogue of {n} items")


def _token_table(side: ItemSide, n: int, vocab: list[str], max_per_item: int) -> torch.Tensor:
    """Token table (N+1, A) in the trained vocabulary; tokens it lacks are dropped (left-packed)."""
    table, names = side_tokens(side, n, max_per_item)  # (N+1, A') in its own vocabulary
    index = {name: j + 1 for j, name in enumerate(vocab)}
    to_trained = torch.tensor([0] + [index.get(name, 0) for name in names], dtype=torch.long)
    mapped = to_trained[table]  # (N+1, A'), 0 where the token is unknown
    order = torch.argsort((mapped == 0).to(torch.int8), dim=1, stable=True)  # known tokens first
    return torch.gather(mapped, 1, order)
