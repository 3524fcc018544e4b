"""The one model contract every recommender implements (DESIGN.md §4).

A model is fitted on :class:`~shopflow.features.sequences.InteractionData` (dense ids) and scores
the whole catalogue for a batch of user histories. The base class does the shared work: top-k with
the user's own history excluded, similar items, saving and loading a self-describing directory. A
subclass fills in ``_fit`` and ``_score`` (and ``_similar`` / state for save and load where it has
them).

Example
-------
>>> import numpy as np
>>> from shopflow.models.popular import Popular            # doctest: +SKIP
>>> model = Popular().fit(data)                             # doctest: +SKIP
>>> ids, scores = model.recommend([np.array([3, 5])], k=10)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from shopflow.errors import ModelNotTrained
from shopflow.features.sequences import InteractionData

MANIFEST = "manifest.json"


@dataclass
class ModelConfig:
    """Base of every model's config dataclass."""


class Recommender(ABC):
    """fit → score / recommend / similar_items → save / load."""

    name: ClassVar[str]
    config_cls: ClassVar[type[ModelConfig]] = ModelConfig

    def __init__(self, config: ModelConfig | None = None, **overrides: Any) -> None:
        base = config or self.config_cls()
        if overrides:
            known = {f.name for f in fields(base)}  # type: ignore[arg-type]
            unknown = sorted(set(overrides) - known)
            if unknown:
                raise TypeError(
                    f"{type(self).__name__} has no setting {', '.join(unknown)}; "
                    f"known: {', '.join(sorted(known))}"
                )
            base = type(base)(**{**asdict(base), **overrides})
        self.config = base
        self.n_items: int = 0
        self.fitted = False

    # -- the contract -----------------------------------------------------------------------------
    def fit(self, data: InteractionData) -> Self:
        """Learn from ``data`` (training interactions only)."""
        self.n_items = data.n_items
        self._fit(data)
        self.fitted = True
        return self

    def score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """Scores of every item for each history: float32 array of shape
        (len(histories), n_items)."""
        self._check()
        out = np.asarray(self._score(histories), dtype=np.float32)
        assert out.shape == (len(histories), self.n_items), out.shape
        return out

    def recommend(
        self,
        histories: Sequence[np.ndarray],
        k: int = 10,
        exclude_seen: bool = True,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` item indices and scores per history, best first; seen items excluded by
        default."""
        scores = self.score(histories)
        if exclude_seen:
            mask_seen(scores, histories)
        return top_k(scores, k)

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items most similar to ``item`` (itself excluded), best first."""
        self._check()
        scores = np.asarray(self._similar(item), dtype=np.float32).copy()
        scores[item] = -np.inf
        ids, sc = top_k(scores[None, :], k)
        return ids[0], sc[0]

    def save(self, path: str | Path) -> Path:
        """Write config, manifest and state into directory ``path``."""
        self._check()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        manifest = {
            "model": self.name,
            "config": asdict(self.config) if is_dataclass(self.config) else {},
            "n_items": self.n_items,
        }
        (path / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        self._save_state(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        manifest = json.loads((path / MANIFEST).read_text())
        if manifest["model"] != cls.name:
            raise ValueError(f"{path} holds a {manifest['model']!r} model, not {cls.name!r}")
        model = cls(cls.config_cls(**manifest["config"]))
        model.n_items = int(manifest["n_items"])
        model._load_state(path)
        model.fitted = True
        return model

    # -- for subclasses ---------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, data: InteractionData) -> None: ...

    @abstractmethod
    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray: ...

    def _similar(self, item: int) -> np.ndarray:
        """Similarity of ``item`` to every item; default: score a one-item history."""
        return self._score([np.array([item], dtype=np.int64)])[0]

    @abstractmethod
    def _save_state(self, path: Path) -> None:
        """Write the fitted state (arrays as .npy / safetensors) into directory ``path``."""

    @abstractmethod
    def _load_state(self, path: Path) -> None:
        """Read back what :meth:`_save_state` wrote."""

    def _check(self) -> None:
        if not self.fitted:
            raise ModelNotTrained(f"{self.name} is not trained: call fit() or run `shopflow train`")


def mask_seen(scores: np.ndarray, histories: Sequence[np.ndarray]) -> None:
    """Set the scores of each history's own items to -inf, in place."""
    for row, hist in enumerate(histories):
        if len(hist):
            scores[row, np.asarray(hist, dtype=np.int64)] = -np.inf


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and values of the ``k`` largest scores per row, best first; ties by lower index.

    -inf entries (masked items) are never returned; rows with fewer finite scores are padded
    with -1.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k <= 0:
        return np.empty((len(scores), 0), np.int64), np.empty((len(scores), 0), np.float32)
    if k < n:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]  # (B, k), unordered
        # argpartition picks arbitrarily among scores equal to the k-th largest; in the rows where
        # it left some of those out, keep the lowest-indexed ones so that the result never depends
        # on k.
        picked = np.take_along_axis(scores, part, axis=1)
        kth = picked.min(axis=1, keepdims=True)  # (B, 1)
        rows = np.flatnonzero((scores == kth).sum(axis=1) > (picked == kth).sum(axis=1))
        if len(rows):
            sub, th = scores[rows], kth[rows]
            tied = sub == th
            room = k - (sub > th).sum(axis=1, keepdims=True)
            keep = (sub > th) | (tied & (np.cumsum(tied, axis=1) <= room))
            part[rows] = np.nonzero(keep)[1].reshape(len(rows), k)
    else:
        part = np.tile(np.arange(n), (len(scores), 1))
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -vals), axis=1)
    ids = np.take_along_axis(part, order, axis=1).astype(np.int64)
    vals = np.take_along_axis(vals, order, axis=1)
    ids[~np.isfinite(vals)] = -1
    return ids, vals


# -- helpers shared by the models (sparse history matrices, per-row pruning) ----------------------
def history_matrix(
    histories: Sequence[np.ndarray],
    n_items: int,
    max_len: int | None = None,
    decay: float = 1.0,
    binary: bool = False,
) -> Any:
    """Histories as a ``scipy.sparse`` CSR matrix of shape (len(histories), n_items).

    Entry (b, i) sums ``decay ** d`` over the positions of item ``i`` in history ``b``, where ``d``
    is the distance from the end (0 for the most recent item). Ids outside ``[0, n_items)`` (items
    the model has not seen) are dropped first; then only the last ``max_len`` items count.
    ``binary`` sets every stored entry to 1.

    >>> history_matrix([np.array([0, 2, 0])], 3, decay=0.5).toarray().tolist()
    [[1.25, 0.0, 0.5]]
    """
    import scipy.sparse as sp

    rows, cols, vals = [], [], []
    for b, hist in enumerate(histories):
        h = np.asarray(hist, dtype=np.int64)
        h = h[(h >= 0) & (h < n_items)]
        if max_len is not None:
            h = h[-max_len:] if max_len > 0 else h[:0]
        rows.append(np.full(len(h), b, dtype=np.int64))
        cols.append(h)
        vals.append(decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64))
    shape = (len(histories), n_items)
    if not rows:
        return sp.csr_matrix(shape, dtype=np.float32)
    mat = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )
    mat.sum_duplicates()
    if binary:
        mat.data[:] = 1.0
    return mat.astype(np.float32)


def prune_rows(mat: Any, n: int, key: np.ndarray | None = None) -> Any:
    """Keep the ``n`` largest entries of each CSR row (ranked by ``key``, aligned with ``data``).

    Ties are broken by lower column index. Returns a new CSR matrix with sorted indices.

    >>> import scipy.sparse as sp
    >>> prune_rows(sp.csr_matrix(np.array([[3.0, 1.0, 2.0]])), 2).toarray().tolist()
    [[3.0, 0.0, 2.0]]
    """
    import scipy.sparse as sp

    mat = sp.csr_matrix(mat)
    mat.sum_duplicates()
    rows = np.repeat(np.arange(mat.shape[0]), np.diff(mat.indptr))
    key = mat.data if key is None else key
    order = np.lexsort((mat.indices, -key, rows))
    rank = np.arange(len(order)) - mat.indptr[rows[order]]
    keep = order[rank < n]
    out = sp.csr_matrix(
        (mat.data[keep], (rows[keep], mat.indices[keep])), shape=mat.shape, dtype=mat.dtype
    )
    out.sort_indices()
    return out
