"""Non-personalised baselines: popularity and trending (time-decayed popularity).

Both score every history with the same vector; the base class then masks the history's own items.
They are the fallback of last resort (DESIGN.md §4) and the floor every other model must beat.

Example
-------
>>> import numpy as np
>>> from shopflow.features.sequences import InteractionData
>>> from shopflow.store.idmap import IdMap
>>> data = InteractionData("toy", IdMap(["u", "v"]), IdMap(["a", "b", "c"]),
...                        [np.array([0, 1]), np.array([1, 2, 1])])
>>> Popular().fit(data).score([np.array([], dtype=np.int64)]).tolist()
[[1.0, 3.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from shopflow.config import DEFAULT_EVENT_WEIGHTS
from shopflow.features.sequences import InteractionData
from shopflow.models.base import ModelConfig, Recommender


def default_event_weights() -> dict[str, float]:
    """The settings' default weight per event type, as plain strings (JSON-friendly)."""
    return {str(k): float(v) for k, v in DEFAULT_EVENT_WEIGHTS.items()}


def event_weight_arrays(
    data: InteractionData, weights: dict[str, float] | None, default: float = 1.0
) -> list[np.ndarray]:
    """Per-event weights aligned with ``data.sequences``.

    Every event weighs 1 when ``weights`` is ``None`` or ``data`` has no event types; otherwise the
    event type's weight from ``weights`` (``default`` for a type it does not name).
    """
    if weights is None or data.event_types is None:
        return [np.ones(len(s), dtype=np.float64) for s in data.sequences]
    out = []
    for types in data.event_types:
        out.append(np.array([weights.get(str(t), default) for t in types], dtype=np.float64))
    return out


@dataclass
class PopularConfig(ModelConfig):
    """Popularity: (weighted) count of training interactions per item.

    ``event_weights`` weighs each interaction by its event type when the data has event types
    (``None``: every interaction counts 1).
    """

    event_weights: dict[str, float] | None = field(default_factory=default_event_weights)


class Popular(Recommender):
    """Most-interacted items first, the same for everyone."""

    name = "pop"
    config_cls = PopularConfig
    config: PopularConfig

    def _fit(self, data: InteractionData) -> None:
        weights = event_weight_arrays(data, self.config.event_weights)
        self.counts = _accumulate(data.sequences, weights, data.n_items)

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.repeat(self.counts[None, :].astype(np.float32), len(histories), axis=0)

    def _similar(self, item: int) -> np.ndarray:
        return self.counts.astype(np.float32)

    def _save_state(self, path: Path) -> None:
        np.save(path / "counts.npy", self.counts)

    def _load_state(self, path: Path) -> None:
        self.counts = np.load(path / "counts.npy")


@dataclass
class TrendingConfig(ModelConfig):
    """Trending: popularity where an event ``half_life_days`` before the latest one counts half.

    Without timestamps every interaction counts fully (plain popularity).
    """

    half_life_days: float = 7.0
    event_weights: dict[str, float] | None = field(default_factory=default_event_weights)


class Trending(Recommender):
    """Time-decayed popularity relative to the latest training timestamp."""

    name = "trending"
    config_cls = TrendingConfig
    config: TrendingConfig

    def _fit(self, data: InteractionData) -> None:
        weights = event_weight_arrays(data, self.config.event_weights)
        self.reference_time = float("nan")
        if data.timestamps is not None and any(len(t) for t in data.timestamps):
            latest = max(float(np.max(t)) for t in data.timestamps if len(t))
            half_life = self.config.half_life_days * 86_400.0
            weights = [
                w * np.exp2(-(latest - np.asarray(t, dtype=np.float64)) / half_life)
                for w, t in zip(weights, data.timestamps, strict=True)
            ]
            self.reference_time = latest
        self.scores = _accumulate(data.sequences, weights, data.n_items)

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.repeat(self.scores[None, :].astype(np.float32), len(histories), axis=0)

    def _similar(self, item: int) -> np.ndarray:
        return self.scores.astype(np.float32)

    def _save_state(self, path: Path) -> None:
        np.savez(path / "trending.npz", scores=self.scores, reference_time=self.reference_time)

    def _load_state(self, path: Path) -> None:
        with np.load(path / "trending.npz") as z:
            self.scores = z["scores"]
            self.reference_time = float(z["reference_time"])


def _accumulate(
    sequences: Sequence[np.ndarray], weights: Sequence[np.ndarray], n_items: int
) -> np.ndarray:
    if not sequences:
        return np.zeros(n_items, dtype=np.float64)
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences])
    w = np.concatenate(list(weights)) if len(items) else np.zeros(0)
    return np.bincount(items, weights=w, minlength=n_items).astype(np.float64)
