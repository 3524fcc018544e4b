"""Serving-time user encoders of the sequential model, one interface; the ONNX one needs no torch.

A user's state is one vector: ``encode(histories) -> (B, D) float32``, and the top items are the
largest inner products with the item vectors (``SASRecModel.item_vectors()``), found by any
:class:`~shopflow.retrieval.ItemIndex` (exact matrix product or FAISS). Four encoders answer the
same :class:`Encoder` protocol, so a serving path is one encoder plus one index:

- ``SASRecModel`` itself (PyTorch, eval mode) — the reference;
- :class:`OnnxEncoder` — an ONNX Runtime session over a graph written by
  ``sasrec_export.export_onnx`` (float32, or int8 after ``sasrec_export.quantize_onnx``);
- ``sasrec_export.TorchInt8Encoder`` — PyTorch with dynamically quantised ``Linear`` layers.

This module imports neither torch nor the training code: a process that serves through ONNX Runtime
loads only ``onnxruntime`` and numpy.

Example
-------
>>> encoder = OnnxEncoder("sasrec.onnx")                                # doctest: +SKIP
>>> index = ExactIndex().build(item_vectors)                             # doctest: +SKIP
>>> ids, scores = recommend(encoder, index, [np.array([3, 5, 8])], k=10)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from shopflow.errors import missing_extra

# keys of the ONNX model's metadata (what an encoder needs to read histories)
META_KEYS = ("n_items", "max_len", "hidden")


@runtime_checkable
class Encoder(Protocol):
    """Histories (item ids 0..N-1, oldest first) → user states float32 (B, D).

    Ids outside the catalogue are skipped; an empty history gives the zero state.
    """

    def encode(self, histories: Sequence[np.ndarray]) -> np.ndarray: ...


def pad_histories(histories: Sequence[np.ndarray], n_items: int, max_len: int) -> np.ndarray:
    """The network's input, without torch: last ``max_len`` known items, ids + 1, left-padded.

    Ids outside ``[0, n_items)`` are dropped first. Returns int64 (B, T), T = the longest kept
    history (at least 1); 0 is padding. Same as ``sasrec.pad_left`` after that filter.

    >>> pad_histories([np.array([4, 5, 6]), np.array([7, 99])], n_items=10, max_len=2).tolist()
    [[6, 7], [0, 8]]
    """
    kept = []
    for h in histories:
        h = np.asarray(h, dtype=np.int64)
        kept.append(h[(h >= 0) & (h < n_items)][-max_len:] if max_len > 0 else h[:0])
    width = max(1, max((len(h) for h in kept), default=0))
    out = np.zeros((len(kept), width), dtype=np.int64)  # (B, T)
    for row, h in enumerate(kept):
        if len(h):
            out[row, width - len(h) :] = h + 1
    return out


class OnnxEncoder:
    """User encoder on ONNX Runtime (CPU), from a file written by ``sasrec_export.export_onnx``.

    Parameters
    ----------
    path
        The ``.onnx`` file; its metadata gives ``n_items``, ``max_len`` and ``hidden``.
    threads
        Intra-op threads of the session (1 suits one request per worker).
    """

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a dependency
            raise missing_extra("onnxruntime", "onnx") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.path = Path(path)
        self.session = ort.InferenceSession(
            str(self.path), opts, providers=["CPUExecutionProvider"]
        )
        meta = self.session.get_modelmeta().custom_metadata_map
        missing = [k for k in META_KEYS if k not in meta]
        if missing:
            raise ValueError(
                f"{path} lacks metadata {', '.join(missing)}: export it with "
                "shopflow.models.sasrec_export.export_onnx"
            )
        self.n_items, self.max_len, self.hidden = (int(meta[k]) for k in META_KEYS)

    def encode(self, histories: Sequence[np.ndarray], batch_size: int = 1024) -> np.ndarray:
        """User states after each history → float32 (B, D); see :class:`Encoder`."""
        out = np.zeros((len(histories), self.hidden), dtype=np.float32)
        for lo in range(0, len(histories), batch_size):
            x = pad_histories(histories[lo : lo + batch_size], self.n_items, self.max_len)
            out[lo : lo + len(x)] = self.session.run(["state"], {"items": x})[0]
        return out


def recommend(
    encoder: Encoder, index: Any, histories: Sequence[np.ndarray], k: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` items per history through ``encoder`` and an ``ItemIndex``, own items excluded.

    Returns ids int64 (B, k) best first (-1 pads) and scores float32 (B, k).
    """
    states = encoder.encode(histories)  # (B, D)
    return index.search(states, k=k, exclude=histories)
