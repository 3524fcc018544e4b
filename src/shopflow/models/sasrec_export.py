"""Export the sequential model's user encoder to ONNX, and int8 versions of it, for serving.

The exported function is the user encoder only: left-padded shifted ids (B, T) int64 → user state
(B, D) float32, with dynamic batch and length (T ≤ ``max_len``); item vectors stay float32 and are
searched by an :class:`~shopflow.retrieval.ItemIndex` as before. Three things differ from
``SASRec.encode``, none of them in the numbers (tests hold the states to 1e-4):

- **Item input vectors are folded into one table** (N+1, D): id embedding + side tokens + projected
  text are a fixed function of the id at inference, so the graph carries one Gather instead of the
  token and 384-wide text tables (smaller file, fewer ops).
- **Attention is written out** (``softmax(q kᵀ / √d + bias) v``) with an additive mask: the
  torch.export-based exporter of torch 2.13 fails to decompose ``scaled_dot_product_attention``
  with dynamic shapes here, and the TorchScript exporter writes a bool ``EyeLike`` that ONNX Runtime
  does not implement.
- **The last block runs for the last position only** (its query, feed-forward and final norm): only
  the state after the latest item is returned.

Int8 comes two ways, both dynamic quantisation (weights int8 ahead of time, activations quantised
per call): :func:`quantize_onnx` (ONNX Runtime's ``quantize_dynamic`` over MatMul and Gather) and
:class:`TorchInt8Encoder` (``torch.ao.quantization.quantize_dynamic`` over the ``Linear`` layers).
``bench/sequential_latency.py`` measures both.

Example
-------
>>> path = export_onnx(model, "out/sasrec.onnx")                      # doctest: +SKIP
>>> int8 = quantize_onnx(path, "out/sasrec.int8.onnx")                 # doctest: +SKIP
>>> OnnxEncoder(int8).encode([np.array([3, 5, 8])]).shape              # doctest: +SKIP
(1, 64)
"""

from __future__ import annotations

import copy
import logging
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shopflow.models.sasrec import Block, SASRec, pad_left
from shopflow.models.sasrec_model import SASRecModel
from shopflow.models.sasrec_runtime import META_KEYS, OnnxEncoder

log = logging.getLogger(__name__)

OPSET = 18


class UserEncoder(nn.Module):
    """The export twin of ``SASRec.encode``: shifted ids (B, T) → state (B, D), zero when empty.

    Shares the trained network's layers (no copy of the weights beyond the folded item table).
    """

    def __init__(self, net: SASRec) -> None:
        super().__init__()
        self.net = net
        self.table: Tensor
        with torch.no_grad():
            idx = torch.arange(net.n_items + 1, device=net.pos.weight.device)
            table = net.items(idx)  # (N+1, D), row 0 (padding) = 0
        self.register_buffer("table", table.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        net = self.net
        real = x > 0  # (B, T)
        t = x.shape[1]
        pos = (real.long().cumsum(1) - 1).clamp(min=0)  # (B, T)
        h = F.embedding(x, self.table) + net.pos(pos)  # (B, T, D); a Gather, int8-quantisable
        h = h * real.unsqueeze(-1).to(h.dtype)  # padding rows 0
        ar = torch.arange(t, device=x.device)
        causal = ar[None, :] <= ar[:, None]  # (T, T) key j ≤ query i
        allowed = (causal[None] & real[:, None, :]) | (ar[None, :] == ar[:, None])[None]  # (B,T,T)
        zero = torch.zeros((), dtype=h.dtype, device=x.device)
        bias = torch.where(allowed, zero, torch.full_like(zero, float("-inf"))).unsqueeze(1)
        if net.rel is not None:  # (B, H, T, T)
            dist = (ar[:, None] - ar[None, :]).clamp(0, net.cfg.max_len - 1)  # (T, T)
            bias = bias + net.rel[:, dist].unsqueeze(0)
        for i, block in enumerate(net.blocks):
            h = self._block(block, h, bias, last=i == len(net.blocks) - 1)  # type: ignore[arg-type]
        state = net.ln_f(h[:, -1])  # (B, D)
        return state * real[:, -1:].to(state.dtype)  # empty history → 0

    @staticmethod
    def _block(block: Block, h: Tensor, bias: Tensor, last: bool) -> Tensor:
        """Pre-norm block; ``last``: only the final position's output (B, 1, D)."""
        attn = block.attn
        b, _, d = h.shape
        n_heads = attn.n_heads
        dh = d // n_heads
        q, k, v = attn.qkv(block.ln1(h)).split(d, dim=2)  # 3 × (B, T, D)
        if last:
            q, bias, h = q[:, -1:], bias[:, :, -1:], h[:, -1:]  # (B, 1, D), (B, H, 1, T)
        q = q.reshape(b, -1, n_heads, dh).transpose(1, 2)  # (B, H, Tq, Dh)
        k = k.reshape(b, -1, n_heads, dh).transpose(1, 2)  # (B, H, T, Dh)
        v = v.reshape(b, -1, n_heads, dh).transpose(1, 2)  # (B, H, T, Dh)
        w = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + bias, dim=-1)  # (B,H,Tq,T)
        y = (w @ v).transpose(1, 2).reshape(b, -1, d)  # (B, Tq, D)
        h = h + attn.proj(y)
        return h + block.ffn(block.ln2(h))  # (B, Tq, D)


def _cpu_net(model: SASRecModel) -> SASRec:
    if not model.fitted or model.net is None:
        raise ValueError("the model is not trained: fit it or load a saved one before export")
    return copy.deepcopy(model.net).cpu().eval()


def export_onnx(model: SASRecModel, path: str | Path, opset: int = OPSET) -> Path:
    """Write a trained model's user encoder as an ONNX file (input ``items``, output ``state``).

    The file's metadata holds ``n_items``, ``max_len`` and ``hidden`` (what
    :class:`~shopflow.models.sasrec_runtime.OnnxEncoder` needs). Takes seconds (torch.export).
    """
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = _cpu_net(model)
    encoder = UserEncoder(net).eval()
    example = pad_left([np.arange(min(3, net.n_items)), np.arange(1)], net.cfg.max_len)  # (2, T)
    batch = torch.export.Dim("batch", min=1, max=1 << 20)
    length = torch.export.Dim("length", min=1, max=net.cfg.max_len)
    quiet = logging.getLogger("torch.onnx")  # "torchvision is not installed" notes
    level = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation notes of torch.export internals
            torch.onnx.export(
                encoder,
                (example,),
                str(path),
                input_names=["items"],
                output_names=["state"],
                dynamic_shapes={"x": {0: batch, 1: length}},
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        quiet.setLevel(level)
    _set_metadata(path, n_items=net.n_items, max_len=net.cfg.max_len, hidden=net.cfg.hidden)
    onnx.checker.check_model(str(path))
    return path


def quantize_onnx(src: str | Path, dst: str | Path) -> Path:
    """Int8 copy of an exported encoder: ONNX Runtime dynamic quantisation (MatMul, Gather weights).

    Weights become int8 per tensor, activations are quantised on the fly; the metadata is kept.
    """
    import tempfile

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src, dst = Path(src), Path(dst)
    meta = {p.key: p.value for p in onnx.load(str(src), load_external_data=False).metadata_props}
    missing = [k for k in META_KEYS if k not in meta]
    if missing:
        raise ValueError(f"{src} lacks metadata {', '.join(missing)}: export it with export_onnx")
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ready = Path(tmp) / "pre.onnx"
        quant_pre_process(str(src), str(ready))  # shape inference + graph clean-up, as advised
        quantize_dynamic(ready, dst, weight_type=QuantType.QInt8)
    _set_metadata(dst, **{k: meta[k] for k in META_KEYS})
    return dst


def _set_metadata(path: Path, **values: object) -> None:
    import onnx

    proto = onnx.load(str(path))
    keep = [p for p in proto.metadata_props if p.key not in values]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    for key, value in values.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.save(proto, str(path))


class TorchInt8Encoder:
    """User encoder in PyTorch with int8 ``Linear`` layers (``torch.ao`` dynamic quantisation).

    Embeddings, LayerNorms and attention stay float32. Runs on CPU (quantised kernels are CPU-only).
    """

    def __init__(self, model: SASRecModel) -> None:
        net = _cpu_net(model)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao.quantization's move to torchao
            self.net = torch.ao.quantization.quantize_dynamic(net, {nn.Linear}, dtype=torch.qint8)
        self.encoder = UserEncoder(self.net).eval()
        self.n_items, self.hidden = net.n_items, net.cfg.hidden

    @torch.no_grad()
    def encode(self, histories: Sequence[np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """User states after each history → float32 (B, D); see ``sasrec_runtime.Encoder``."""
        out = np.zeros((len(histories), self.hidden), dtype=np.float32)
        for lo in range(0, len(histories), batch_size):
            chunk = [np.asarray(h, dtype=np.int64) for h in histories[lo : lo + batch_size]]
            chunk = [h[(h >= 0) & (h < self.n_items)] for h in chunk]
            x = pad_left(chunk, self.net.cfg.max_len)  # (b, T)
            out[lo : lo + len(chunk)] = self.encoder(x).numpy()
        return out


def export_all(model: SASRecModel, directory: str | Path) -> dict[str, Path]:
    """``sasrec.onnx``, ``sasrec.int8.onnx`` and ``item_vectors.npy`` (N, D) under ``directory``."""
    directory = Path(directory)
    onnx_path = export_onnx(model, directory / "sasrec.onnx")
    int8_path = quantize_onnx(onnx_path, directory / "sasrec.int8.onnx")
    vectors = directory / "item_vectors.npy"
    np.save(vectors, model.item_vectors())
    log.info("exported %s, %s and %s", onnx_path, int8_path, vectors)
    return {"onnx": onnx_path, "int8": int8_path, "item_vectors": vectors}


__all__ = [
    "OnnxEncoder",
    "TorchInt8Encoder",
    "UserEncoder",
    "export_all",
    "export_onnx",
    "quantize_onnx",
]
