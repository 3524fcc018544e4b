"""Content-based recommendations from item text embeddings (title, brand, categories, description).

Each item's text (``side.text``) is embedded by :class:`~shopflow.text.encoder.TextEncoder` (unit
vectors); item-to-item similarity is the cosine. A history's profile is the recency-weighted mean
of its items' vectors, the item ``d`` steps from the end weighted ``recency_decay ** d``; the score
of an item is its cosine with the profile. Items without text score 0 and are never "similar".

This is the path by which a brand-new item is recommendable at once: :meth:`ContentBased.add_items`
embeds new items without refitting.

Example
-------
>>> model = ContentBased().fit(data_with_text)                     # doctest: +SKIP
>>> model.similar_items(3, k=5)                                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shopflow.errors import ConfigError
from shopflow.features.sequences import InteractionData
from shopflow.models.base import ModelConfig, Recommender, history_matrix
from shopflow.text.encoder import TextEncoder


@dataclass
class ContentConfig(ModelConfig):
    """Settings of :class:`ContentBased`; recency tuned on Scientific validation targets."""

    text_model: str | None = None  # sentence-transformers name or folder; None: packaged MiniLM
    cache_dir: str | None = None  # on-disk embedding cache (None: memory only)
    batch_size: int = 64
    device: str = "cpu"
    history_len: int = 20  # most recent history items in the profile
    recency_decay: float = 0.5  # history item d steps from the end weighs recency_decay ** d


class ContentBased(Recommender):
    """Cosine similarity of text embeddings; profile = recency-weighted mean of the history."""

    name = "content"
    config_cls = ContentConfig
    config: ContentConfig

    def _encoder(self) -> TextEncoder:
        if getattr(self, "_enc", None) is None:
            cfg = self.config
            self._enc = TextEncoder(cfg.text_model, cfg.cache_dir, device=cfg.device)
        return self._enc

    def _embed(self, texts: Sequence[str | None]) -> np.ndarray:
        """Unit vectors of ``texts``; zero rows where the text is missing or blank."""
        known = [i for i, t in enumerate(texts) if t is not None and t.strip()]
        enc = self._encoder()
        vectors = np.zeros((len(texts), enc.dim), dtype=np.float32)
        if known:
            vectors[known] = enc.encode([texts[i] for i in known], self.config.batch_size)  # type: ignore[misc]
        return vectors

    def _fit(self, data: InteractionData) -> None:
        if data.side.text is None:
            raise ConfigError(
                f"the content model needs item text, and dataset {data.name!r} has none: use a "
                "dataset whose items have titles or descriptions (e.g. scientific), or leave "
                "'content' out of the models to train"
            )
        self.embeddings = self._embed(data.side.text)  # (n_items, d)

    def add_items(self, texts: Sequence[str | None]) -> np.ndarray:
        """Append new items by their text; returns their dense ids (from ``n_items`` on)."""
        self._check()
        start = self.n_items
        self.embeddings = np.concatenate([self.embeddings, self._embed(texts)])
        self.n_items = len(self.embeddings)
        return np.arange(start, self.n_items)

    def _score(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        cfg = self.config
        hist = history_matrix(histories, self.n_items, cfg.history_len, cfg.recency_decay)
        profile = np.asarray(hist @ self.embeddings)  # (B, d)
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        profile = profile / np.maximum(norms, 1e-12)
        return profile @ self.embeddings.T  # (B, n_items)

    def _similar(self, item: int) -> np.ndarray:
        scores = self.embeddings @ self.embeddings[item]
        has_text = np.asarray(self.embeddings.any(axis=1), dtype=bool)  # (n_items,)
        scores[~has_text] = -np.inf  # no text: not similar
        if not has_text[item]:
            scores[:] = -np.inf
        return scores

    def _save_state(self, path: Path) -> None:
        np.save(path / "embeddings.npy", self.embeddings)

    def _load_state(self, path: Path) -> None:
        self.embeddings = np.load(path / "embeddings.npy")
