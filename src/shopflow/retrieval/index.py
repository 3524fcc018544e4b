"""Maximum-inner-product search over item vectors: one interface, exact and FAISS implementations.

:class:`ExactIndex` is a matrix product plus top-k — the reference every other index is tested
against. :class:`FaissIndex` wraps ``faiss-cpu`` with inner-product metric and a flat (exact),
HNSW or IVF structure, chosen by :class:`FaissConfig`. Both answer ``search(queries, k, exclude)``
with item ids best first and their scores; ``exclude`` removes given ids per query (the user's own
history). Rows with fewer than ``k`` answers are padded with id -1 and score -inf.

Example
-------
>>> import numpy as np
>>> vecs = np.eye(3, dtype=np.float32)
>>> ids, scores = ExactIndex().build(vecs).search(np.array([[1.0, 0.5, 0.0]]), k=2, exclude=[[0]])
>>> ids.tolist(), scores.tolist()
([[1, 2]], [[0.5, 0.0]])
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Self

import numpy as np

from shopflow.errors import ModelNotTrained, missing_extra
from shopflow.models.base import top_k

Exclude = Sequence[Sequence[int] | np.ndarray] | None


class ItemIndex(ABC):
    """build(vectors) once, then search(queries, k, exclude) → (ids, scores), best first."""

    def __init__(self) -> None:
        self.n_items = 0
        self.dim = 0

    def build(self, vectors: np.ndarray) -> Self:
        """Index item vectors (N, D); item ids are row numbers 0..N-1."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2:
            raise ValueError(f"vectors must be (n_items, dim), got shape {vectors.shape}")
        self.n_items, self.dim = vectors.shape
        self._build(vectors)
        return self

    def search(
        self, queries: np.ndarray, k: int, exclude: Exclude = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items of largest inner product with each query (B, D), ``exclude[b]`` left out.

        Returns
        -------
        ids : int64 (B, k)
            Item ids best first; -1 where fewer than ``k`` items qualify.
        scores : float32 (B, k)
            Inner products; -inf where the id is -1.
        """
        if self.n_items == 0 and self.dim == 0:
            raise ModelNotTrained(f"{type(self).__name__} is empty: call build(vectors) first")
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have dim {queries.shape[1]}, the index {self.dim}")
        if exclude is not None and len(exclude) != len(queries):
            raise ValueError(f"exclude has {len(exclude)} rows for {len(queries)} queries")
        if k <= 0:
            return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
        return self._search(queries, k, exclude)

    def __len__(self) -> int:
        return self.n_items

    @abstractmethod
    def _build(self, vectors: np.ndarray) -> None: ...

    @abstractmethod
    def _search(
        self, queries: np.ndarray, k: int, exclude: Exclude
    ) -> tuple[np.ndarray, np.ndarray]: ...


class ExactIndex(ItemIndex):
    """Brute force: ``queries @ vectors.T``, history masked to -inf, top-k (ties by lower id)."""

    def _build(self, vectors: np.ndarray) -> None:
        self.vectors = vectors

    def _search(
        self, queries: np.ndarray, k: int, exclude: Exclude
    ) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self.vectors.T  # (B, N)
        if exclude is not None:
            for row, items in enumerate(exclude):
                ids = np.asarray(items, dtype=np.int64)
                scores[row, ids[(ids >= 0) & (ids < self.n_items)]] = -np.inf
        ids, vals = top_k(scores, k)
        if ids.shape[1] < k:  # fewer items than k
            pad = k - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            vals = np.pad(vals, ((0, 0), (0, pad)), constant_values=-np.inf)
        vals = np.where(ids >= 0, vals, -np.inf).astype(np.float32)
        return ids, vals


KINDS = ("flat", "hnsw", "ivf")


@dataclass
class FaissConfig:
    """Which FAISS structure to build. Flat is exact; HNSW and IVF trade recall for speed."""

    kind: str = "hnsw"  # "flat" | "hnsw" | "ivf"
    hnsw_m: int = 32  # graph degree
    ef_construction: int = 200
    ef_search: int = 128  # raised to k + excluded count when a query asks for more
    nlist: int | None = None  # IVF cells; default about 4 * sqrt(N), at most N / 39
    nprobe: int = 16  # IVF cells visited per query


class FaissIndex(ItemIndex):
    """faiss-cpu inner-product index (flat, HNSW or IVF) behind :class:`ItemIndex`.

    Exclusion over-fetches ``k + len(exclude[b])`` neighbours and drops the excluded ones, so the
    answer for each query is exactly what a search over the catalogue minus its excluded items gives
    (for a flat index: exactly :class:`ExactIndex`'s answer, up to the order of equal scores).
    """

    def __init__(self, config: FaissConfig | None = None, **overrides: Any) -> None:
        super().__init__()
        cfg = config or FaissConfig()
        self.config = FaissConfig(**{**cfg.__dict__, **overrides})
        if self.config.kind not in KINDS:
            raise ValueError(f"unknown FAISS index kind {self.config.kind!r}; known: {KINDS}")
        self._index: Any = None

    def _build(self, vectors: np.ndarray) -> None:
        try:
            import faiss
        except ImportError as exc:  # pragma: no cover - faiss-cpu is a dependency
            raise missing_extra("faiss-cpu", "ann") from exc
        cfg, n, d = self.config, *vectors.shape
        index: Any
        if cfg.kind == "flat":
            index = faiss.IndexFlatIP(d)
        elif cfg.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.ef_construction
        else:
            nlist = min(n, cfg.nlist or max(1, min(int(4 * np.sqrt(n)), n // 39)))
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(vectors)
            index.nprobe = min(cfg.nprobe, nlist)
        index.add(vectors)
        self._index = index

    def _search(
        self, queries: np.ndarray, k: int, exclude: Exclude
    ) -> tuple[np.ndarray, np.ndarray]:
        excl = (
            [set()] * len(queries)
            if exclude is None
            else [{int(i) for i in items} for items in exclude]
        )
        fetch = min(self.n_items, k + max((len(e) for e in excl), default=0))
        if self.config.kind == "hnsw":
            self._index.hnsw.efSearch = max(self.config.ef_search, fetch)
        raw_scores, raw_ids = self._index.search(queries, fetch)  # (B, fetch) each
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        for row in range(len(queries)):
            keep = [c for c, i in enumerate(raw_ids[row]) if i >= 0 and int(i) not in excl[row]][:k]
            ids[row, : len(keep)] = raw_ids[row, keep]
            scores[row, : len(keep)] = raw_scores[row, keep]
        return ids, scores
