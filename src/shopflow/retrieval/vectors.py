"""Item vectors and histories: the small numpy helpers the candidate sources share."""

from __future__ import annotations

import numpy as np

from shopflow.retrieval.index import ExactIndex, FaissIndex, ItemIndex

EMPTY = np.empty(0, dtype=np.int64)
ANN_THRESHOLD = 200_000  # catalogues larger than this use an HNSW index instead of exact search


def make_index(vectors: np.ndarray) -> ItemIndex:
    """Exact search for ordinary catalogues, FAISS HNSW beyond ``ANN_THRESHOLD`` items."""
    index: ItemIndex = FaissIndex(kind="hnsw") if len(vectors) > ANN_THRESHOLD else ExactIndex()
    return index.build(vectors)


def recency_weights(n: int, decay: float) -> np.ndarray:
    """Weight of each of ``n`` history items, oldest first: ``decay ** (distance from the end)``."""
    return decay ** np.arange(n - 1, -1, -1, dtype=np.float64)


def normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def nearest_history(vectors: np.ndarray, items: np.ndarray, history: np.ndarray) -> np.ndarray:
    """For each item, the history item whose (unit) vector is closest: the "because of" item."""
    if not len(items) or not len(history):
        return np.full(len(items), -1, dtype=np.int64)
    sims = vectors[items] @ vectors[history].T  # (k, L)
    return history[np.argmax(sims, axis=1)]


def known(items: np.ndarray, vectors: np.ndarray | None) -> np.ndarray:
    """The ``items`` that index a row of ``vectors`` (a model's items); all when it is None."""
    if vectors is None or not len(items) or (items.min() >= 0 and items.max() < len(vectors)):
        return items  # the usual case, in two reductions rather than a mask and a copy
    return items[(items >= 0) & (items < len(vectors))]
