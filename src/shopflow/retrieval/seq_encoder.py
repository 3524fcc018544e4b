"""The sequential model's user state for ONE history, in numpy: the serving path of SASRec.

``SASRecModel.encode`` runs the torch network on a padded batch; for one request that is some
sixty small torch calls (about 0.8 ms of CPU here), most of it per-call overhead. A single history
needs no padding (every position is a real item, so the attention mask is plain causal), and only
its last position is read, so the last block needs the query, the attention and the feed-forward
of that one position. :class:`NumpyEncoder` does exactly that with the network's own weights
(read once per bundle; the input item table comes from ``SASRec.embed_all`` so side tokens and
text are included), in float32 — the same function as the torch forward in eval mode, which stays
the reference: :meth:`NumpyEncoder.check` compares the two on a few histories when a bundle is
loaded, and :func:`numpy_encoder` returns None (callers keep the torch path) when they differ or
the network has a part this file does not know.

Example
-------
>>> import numpy as np, torch
>>> from shopflow.models.sasrec import SASRec, SASRecConfig, pad_left
>>> net = SASRec(SASRecConfig(hidden=16, n_layers=2, n_heads=2), n_items=30).eval()
>>> enc = numpy_encoder(net)
>>> h = np.array([3, 7, 7, 1])
>>> ref = net.encode(pad_left([h], 50))[0].numpy()
>>> bool(np.allclose(enc.encode(h), ref, atol=1e-5))
True
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import erf

log = logging.getLogger(__name__)


@dataclass
class _Block:
    ln1: tuple[np.ndarray, np.ndarray, float]
    qkv_w: np.ndarray  # (D, 3D), transposed for x @ w
    qkv_b: np.ndarray
    proj_w: np.ndarray  # (D, D)
    proj_b: np.ndarray
    ln2: tuple[np.ndarray, np.ndarray, float]
    ff1_w: np.ndarray  # (D, F)
    ff1_b: np.ndarray
    ff2_w: np.ndarray  # (F, D)
    ff2_b: np.ndarray
    gelu_tanh: bool


def _np(t: Any) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().float().numpy())


def _ln(m: Any) -> tuple[np.ndarray, np.ndarray, float]:
    return _np(m.weight), _np(m.bias), float(m.eps)


def _layer_norm(x: np.ndarray, p: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    inv_d = np.float32(1.0 / x.shape[-1])
    xc = x - x.sum(axis=-1, keepdims=True) * inv_d  # sum, not mean: fewer Python layers
    var = (xc * xc).sum(axis=-1, keepdims=True) * inv_d
    return xc / np.sqrt(var + np.float32(p[2])) * p[0] + p[1]


def _gelu(x: np.ndarray, tanh: bool) -> np.ndarray:
    if tanh:
        return 0.5 * x * (1.0 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))
    return 0.5 * x * (1.0 + erf(x * np.float32(1 / math.sqrt(2.0))))


class NumpyEncoder:
    """User state after one history (item ids 0..N-1, oldest first) → float32 (D,)."""

    def __init__(self, net: Any) -> None:
        import torch

        cfg = net.cfg
        with torch.no_grad():
            self.table = _np(net.embed_all())  # (N+1, D), row 0 = padding
        self.n_items, self.max_len, self.heads = int(net.n_items), int(cfg.max_len), cfg.n_heads
        self.pos = _np(net.pos.weight)  # (max_len, D)
        self.rel = _np(net.rel) if getattr(net, "rel", None) is not None else None  # (H, max_len)
        self.ln_f = _ln(net.ln_f)
        self.blocks = []
        for b in net.blocks:
            lin1, act, lin2 = b.ffn[0], b.ffn[1], b.ffn[2]
            self.blocks.append(
                _Block(
                    _ln(b.ln1), _np(b.attn.qkv.weight).T.copy(), _np(b.attn.qkv.bias),
                    _np(b.attn.proj.weight).T.copy(), _np(b.attn.proj.bias), _ln(b.ln2),
                    _np(lin1.weight).T.copy(), _np(lin1.bias), _np(lin2.weight).T.copy(),
                    _np(lin2.bias), getattr(act, "approximate", "none") == "tanh",
                )
            )  # fmt: skip

    def encode(self, history: np.ndarray) -> np.ndarray:
        """The state after ``history`` (ids outside the catalogue skipped; empty → zeros)."""
        h = np.asarray(history, dtype=np.int64)
        h = h[(h >= 0) & (h < self.n_items)][-self.max_len :]
        t, d = len(h), self.table.shape[1]
        if t == 0:
            return np.zeros(d, dtype=np.float32)
        x = self.table[h + 1] + self.pos[:t]  # (T, D)
        last = len(self.blocks) - 1
        for i, blk in enumerate(self.blocks):
            x = self._block(x, blk, only_last=i == last)
        return _layer_norm(x[-1], self.ln_f).astype(np.float32)

    def _block(self, x: np.ndarray, b: _Block, only_last: bool) -> np.ndarray:
        """One pre-norm block over (T, D); with ``only_last`` the answer is the last row (1, D)."""
        t, d = x.shape
        hd = d // self.heads
        qkv = _layer_norm(x, b.ln1) @ b.qkv_w + b.qkv_b  # (T, 3D)
        q, k, v = qkv[:, :d], qkv[:, d : 2 * d], qkv[:, 2 * d :]
        if only_last:
            q, x = q[-1:], x[-1:]
        tq = len(q)
        q = q.reshape(tq, self.heads, hd).transpose(1, 0, 2)  # (H, Tq, Dh)
        k = k.reshape(t, self.heads, hd).transpose(1, 2, 0)  # (H, Dh, T)
        v = v.reshape(t, self.heads, hd).transpose(1, 0, 2)  # (H, T, Dh)
        logits = (q @ k) * np.float32(1.0 / math.sqrt(hd))  # (H, Tq, T)
        qpos = np.arange(t - tq, t)  # positions of the queries
        dist = qpos[:, None] - np.arange(t)[None, :]  # (Tq, T): query - key
        if self.rel is not None:
            logits = logits + self.rel[:, np.clip(dist, 0, self.max_len - 1)]
        logits = np.where(dist >= 0, logits, -np.inf)  # causal
        logits = np.exp(logits - logits.max(axis=-1, keepdims=True))
        att = logits / logits.sum(axis=-1, keepdims=True)
        y = (att @ v).transpose(1, 0, 2).reshape(tq, d)  # (Tq, D)
        x = x + (y @ b.proj_w + b.proj_b)
        f = _gelu(_layer_norm(x, b.ln2) @ b.ff1_w + b.ff1_b, b.gelu_tanh)
        return x + (f @ b.ff2_w + b.ff2_b)

    def check(self, net: Any, histories: list[np.ndarray], atol: float = 1e-4) -> float:
        """Largest difference from the torch network's ``encode`` over ``histories``."""
        import torch

        from shopflow.models.sasrec import pad_left

        worst = 0.0
        with torch.inference_mode():
            for h in histories:
                ref = net.encode(pad_left([h], self.max_len))[0].float().numpy()
                worst = max(worst, float(np.abs(self.encode(h) - ref).max()))
        return worst


KNOWN_BLOCK = {"ln1", "attn", "ln2", "ffn", "drop"}


def numpy_encoder(net: Any, seed: int = 0) -> NumpyEncoder | None:
    """A :class:`NumpyEncoder` for ``net`` if it matches the torch forward, else None (logged)."""
    try:
        if any(set(dict(b.named_children())) - KNOWN_BLOCK for b in net.blocks):
            raise ValueError("unknown parts in a block")
        enc = NumpyEncoder(net.eval())
        rng = np.random.default_rng(seed)
        tests = [rng.integers(0, enc.n_items, size=s) for s in (1, 2, 7, enc.max_len + 5)]
        worst = enc.check(net, tests)
    except Exception as exc:  # any mismatch means: keep the torch path
        log.warning("sequential model served by torch: numpy path unavailable (%s)", exc)
        return None
    if not worst <= 1e-3:
        log.warning("sequential model served by torch: numpy path differs by %.2g", worst)
        return None
    return enc
