"""SASRec-family causal transformer over a user's recent items (the network only; no training loop).

Kang & McAuley, "Self-Attentive Sequential Recommendation", ICDM 2018 (https://arxiv.org/abs/1808.09781).
What we changed, and why:

- **Full softmax cross-entropy** over the catalogue instead of one sampled negative with binary CE
  (Klenitskiy & Vasilev, "Turning Dross Into Gold Loss: is BERT4Rec really better than SASRec?",
  RecSys 2023): a large, cheap gain on the Amazon sets. The losses live in ``models/losses.py``.
- **Pre-norm blocks** with GELU feed-forward and a final LayerNorm (as in GPT-2) — steadier training
  with high dropout than SASRec's post-norm.
- **Attention written with** ``F.scaled_dot_product_attention`` and one explicit boolean mask
  (causal AND key is a real item, OR the diagonal). ``nn.TransformerEncoder``'s inference fast path
  mis-handled causal + key-padding masks together on this data (chance-level ranking in eval mode).
  The diagonal keeps padding rows finite, so no NaN ever appears.
- **Positions count from the first real item** (left padding, ``cumsum`` of the real mask), so the
  state after item *t* is the same whether it is computed inside a long training sequence or from
  the prefix alone at serving time (causal attention + prefix-consistent positions).
- **Side information** (S3-Rec-style attribute tokens, brand, categories; frozen sentence embeddings
  of the item text) is optionally *added* to each item's id embedding: ``e_i = id_i + mean(tok_i) +
  W text_i``, so items with few interactions get vectors from what they share with others.
- Optional **relative attention bias** (``rel_bias``): one learned logit per head and distance
  between query and key (as in T5, without buckets) on top of the absolute positions, so recency
  can be weighted directly while states stay prefix-consistent. (Rotary embeddings would serve too.)
- Input and output item embeddings are tied (one table, ``item_table``).

Ids: the network sees ``item + 1``; 0 is padding. Sequences are left-padded, so position ``-1`` is
always the latest item. ``encode`` returns the state at that position; scores are
``encode(x) @ item_table().T``.

Example
-------
>>> import torch
>>> net = SASRec(SASRecConfig(hidden=16, n_layers=1), n_items=10).eval()
>>> x = torch.tensor([[0, 0, 3, 5], [1, 2, 3, 4]])  # left-padded, ids shifted by +1
>>> net.score(x).shape
torch.Size([2, 10])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass
class SASRecConfig:
    """Shape of the network. Item count and side tensors are given to :class:`SASRec` directly."""

    hidden: int = 64  # D
    n_layers: int = 2
    n_heads: int = 1
    max_len: int = 50  # T at most: the most recent items a state is built from
    ff_mult: int = 4  # feed-forward width = ff_mult * D
    dropout: float = 0.5  # on embeddings and residual branches
    attn_dropout: float = 0.5  # on attention weights
    side_tokens: bool = False  # fuse attribute / brand / category tokens into item vectors
    side_text: bool = False  # fuse a frozen projected text embedding into item vectors
    rel_bias: bool = False  # learned attention bias per head and distance (query - key)


class ItemEmbedding(nn.Module):
    """Item vectors: id embedding, plus mean of side-token embeddings, plus projected frozen text.

    ``tokens`` (N+1, A) holds token ids per shifted item (0 = no token; row 0 = padding item);
    ``text`` (N+1, E) holds fixed text embeddings (row 0 = zeros). Both are buffers, saved with the
    weights but never trained.
    """

    def __init__(
        self,
        n_items: int,
        hidden: int,
        tokens: Tensor | None = None,
        n_tokens: int = 0,
        text: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.ids = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.tokens: Tensor | None
        self.text: Tensor | None
        self.tok: nn.EmbeddingBag | None = None
        self.text_proj: nn.Linear | None = None
        if tokens is not None:
            self.register_buffer("tokens", tokens.long())  # (N+1, A)
            # mean over an item's real tokens (padding_idx is left out of the mean; none → zeros)
            self.tok = nn.EmbeddingBag(n_tokens + 1, hidden, mode="mean", padding_idx=0)
        else:
            self.tokens = None
        if text is not None:
            self.register_buffer("text", text.float())  # (N+1, E)
            self.text_proj = nn.Linear(text.shape[1], hidden, bias=False)
        else:
            self.text = None

    def forward(self, idx: Tensor) -> Tensor:
        """Vectors of shifted item ids ``idx`` (any shape S) → (*S, D); id 0 gives zeros."""
        out = self.ids(idx)  # (*S, D)
        if self.tok is not None and self.tokens is not None:
            tok = self.tokens[idx.reshape(-1)]  # (S, A)
            out = out + self.tok(tok).view(out.shape)  # (*S, D)
        if self.text_proj is not None and self.text is not None:
            out = out + self.text_proj(self.text[idx])  # (*S, D)
        return out


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        assert cfg.hidden % cfg.n_heads == 0, "hidden must be divisible by n_heads"
        self.n_heads = cfg.n_heads
        self.qkv = nn.Linear(cfg.hidden, 3 * cfg.hidden)
        self.proj = nn.Linear(cfg.hidden, cfg.hidden)
        self.attn_dropout = cfg.attn_dropout

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        """``x`` (B, T, D), ``allowed`` (B, 1, T, T) bool: query i may attend key j → (B, T, D).

        ``allowed`` may instead be a float bias (B, H, T, T), -inf where attention is not allowed.
        """
        b, t, d = x.shape
        q, k, v = self.qkv(x).split(d, dim=2)  # 3 × (B, T, D)
        q = q.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, H, T, Dh)
        k = k.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, H, T, Dh)
        v = v.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2)  # (B, H, T, Dh)
        p = self.attn_dropout if self.training else 0.0
        mask = allowed if allowed.dtype == torch.bool else allowed.to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)  # (B, H, T, Dh)
        y = y.transpose(1, 2).reshape(b, t, d)  # (B, T, D)
        return self.proj(y)


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + ffn(ln(x))."""

    def __init__(self, cfg: SASRecConfig) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.hidden)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.hidden)
        self.ffn = nn.Sequential(
            nn.Linear(cfg.hidden, cfg.ff_mult * cfg.hidden),
            nn.GELU(),
            nn.Linear(cfg.ff_mult * cfg.hidden, cfg.hidden),
        )
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: Tensor, allowed: Tensor) -> Tensor:
        x = x + self.drop(self.attn(self.ln1(x), allowed))  # (B, T, D)
        return x + self.drop(self.ffn(self.ln2(x)))  # (B, T, D)


class SASRec(nn.Module):
    """Causal transformer: left-padded shifted item ids (B, T) → hidden states (B, T, D).

    Parameters
    ----------
    cfg
        Network shape.
    n_items
        Catalogue size N (items 0..N-1 outside, 1..N inside).
    tokens, n_tokens
        Side-token table (N+1, A) and token vocabulary size, when ``cfg.side_tokens``.
    text
        Frozen text embeddings (N+1, E), when ``cfg.side_text``.
    """

    def __init__(
        self,
        cfg: SASRecConfig,
        n_items: int,
        tokens: Tensor | None = None,
        n_tokens: int = 0,
        text: Tensor | None = None,
    ) -> None:
        super().__init__()
        if cfg.side_tokens and tokens is None:
            raise ValueError("side_tokens=True needs a token table (N+1, A)")
        if cfg.side_text and text is None:
            raise ValueError("side_text=True needs a text embedding table (N+1, E)")
        self.cfg = cfg
        self.n_items = n_items
        self.items = ItemEmbedding(
            n_items,
            cfg.hidden,
            tokens if cfg.side_tokens else None,
            n_tokens,
            text if cfg.side_text else None,
        )
        self.pos = nn.Embedding(cfg.max_len, cfg.hidden)
        # bias[h, d]: added to head h's attention logit of a key d items before the query
        self.rel = nn.Parameter(torch.zeros(cfg.n_heads, cfg.max_len)) if cfg.rel_bias else None
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList([Block(cfg) for _ in range(cfg.n_layers)])
        self.ln_f = nn.LayerNorm(cfg.hidden)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding | nn.EmbeddingBag):
            nn.init.normal_(m.weight, std=0.02)
            if m.padding_idx is not None:
                nn.init.zeros_(m.weight[m.padding_idx])

    def forward(self, x: Tensor, table: Tensor | None = None) -> Tensor:
        """Training-time trunk: shifted ids (B, T), 0 = padding, T ≤ max_len → states (B, T, D).

        The state at position t summarises items ≤ t and is trained to predict item t+1.
        ``table`` (N+1, D), from :meth:`embed_all`, saves embedding the inputs again when the
        output layer needs every item vector anyway (training with the full softmax).
        """
        real = x > 0  # (B, T)
        t = x.shape[1]
        pos = (real.long().cumsum(1) - 1).clamp(min=0)  # (B, T) index from the first real item
        emb = self.items(x) if table is None else table[x]  # (B, T, D)
        h = (emb + self.pos(pos)) * real.unsqueeze(-1)  # (B, T, D), padding rows 0
        h = self.drop(h)  # (B, T, D)
        causal = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()  # (T, T)
        eye = torch.eye(t, dtype=torch.bool, device=x.device)  # (T, T)
        allowed = (causal & real[:, None, :]) | eye  # (B, T, T): key j real and j ≤ i, or j = i
        allowed = allowed.unsqueeze(1)  # (B, 1, T, T)
        if self.rel is not None:  # relative to the query: the same in training and serving
            ar = torch.arange(t, device=x.device)
            dist = (ar[:, None] - ar[None, :]).clamp(0, self.cfg.max_len - 1)  # (T, T)
            bias = self.rel[:, dist].unsqueeze(0)  # (1, H, T, T)
            allowed = bias.masked_fill(~allowed, float("-inf"))  # (B, H, T, T)
        for block in self.blocks:
            h = block(h, allowed)  # (B, T, D)
        return self.ln_f(h)  # (B, T, D)

    def embed_all(self) -> Tensor:
        """Vectors of every shifted id 0..N (row 0, padding, is zeros) → (N+1, D)."""
        idx = torch.arange(self.n_items + 1, device=self.pos.weight.device)  # (N+1,)
        return self.items(idx) * (idx > 0).unsqueeze(-1)  # (N+1, D)

    def item_table(self) -> Tensor:
        """Output vectors of items 0..N-1 (tied with the input embedding) → (N, D)."""
        idx = torch.arange(1, self.n_items + 1, device=self.pos.weight.device)  # (N,)
        return self.items(idx)  # (N, D)

    @torch.no_grad()
    def encode(self, x: Tensor) -> Tensor:
        """Inference: user state after the latest item of each left-padded row (B, T) → (B, D)."""
        return self.forward(x)[:, -1]  # (B, D)

    @torch.no_grad()
    def score(self, x: Tensor) -> Tensor:
        """Inference: scores of every item for each row (B, T) → (B, N)."""
        return self.encode(x) @ self.item_table().T  # (B, N)


def pad_left(histories: Sequence[np.ndarray], max_len: int) -> Tensor:
    """Last ``max_len`` items of each history (item ids 0..N-1) → shifted, left-padded (B, T) long.

    T is the longest kept history (at least 1), so short batches do no wasted work.

    >>> pad_left([np.array([4, 5, 6]), np.array([7])], max_len=2).tolist()
    [[6, 7], [0, 8]]
    """
    kept = [np.asarray(h, dtype=np.int64)[-max_len:] if max_len else h[:0] for h in histories]
    lens = np.array([len(h) for h in kept], dtype=np.int64)  # (B,)
    width = max(1, int(lens.max(initial=0)))
    out = np.zeros((len(kept), width), dtype=np.int64)  # (B, T)
    if lens.sum():
        flat = np.concatenate(kept)  # (sum lens,)
        rows = np.repeat(np.arange(len(kept)), lens)
        starts = np.cumsum(lens) - lens  # offset of each row in flat
        cols = width - lens[rows] + (np.arange(len(flat)) - starts[rows])
        out[rows, cols] = flat + 1
    return torch.from_numpy(out)
