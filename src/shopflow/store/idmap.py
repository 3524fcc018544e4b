"""One id boundary: shop ids (strings) ↔ dense integers 0..n-1, frozen and saved with a model.

Example
-------
>>> m = IdMap.from_ids(["b", "a", "b", "c"])
>>> m.to_index(["c", "b"]).tolist(), m.to_external([0, 1])
([2, 0], ['b', 'a'])
>>> m2 = m.extend(["d", "a"]); len(m2), m2.index_of("d")
(4, 3)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import orjson


class IdMap:
    """Immutable mapping of external string ids to dense indices, in first-seen order."""

    def __init__(self, external: Sequence[str]) -> None:
        self._ext: tuple[str, ...] = tuple(external)
        self._idx: dict[str, int] = {e: i for i, e in enumerate(self._ext)}
        if len(self._idx) != len(self._ext):
            raise ValueError("IdMap ids must be unique")

    @classmethod
    def from_ids(cls, ids: Iterable[str]) -> IdMap:
        return cls(list(dict.fromkeys(ids)))

    def __len__(self) -> int:
        return len(self._ext)

    def __contains__(self, ext: object) -> bool:
        return ext in self._idx

    @property
    def external_ids(self) -> tuple[str, ...]:
        return self._ext

    def index_of(self, ext: str) -> int:
        """Dense index of ``ext``; KeyError names the unknown id."""
        try:
            return self._idx[ext]
        except KeyError:
            raise KeyError(f"unknown id {ext!r}") from None

    def get(self, ext: str, default: int = -1) -> int:
        return self._idx.get(ext, default)

    def to_index(self, ids: Iterable[str], missing: int | None = None) -> np.ndarray:
        """Dense indices of ``ids``; unknown ids raise, or map to ``missing`` when given."""
        if missing is None:
            return np.fromiter((self.index_of(e) for e in ids), dtype=np.int64)
        return np.fromiter((self._idx.get(e, missing) for e in ids), dtype=np.int64)

    def to_external(self, indices: Iterable[int]) -> list[str]:
        return [self._ext[int(i)] for i in indices]

    def extend(self, ids: Iterable[str]) -> IdMap:
        """A new map with unseen ``ids`` appended; existing indices keep their place."""
        new = [e for e in dict.fromkeys(ids) if e not in self._idx]
        return IdMap([*self._ext, *new]) if new else self

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(orjson.dumps(list(self._ext)))

    @classmethod
    def load(cls, path: str | Path) -> IdMap:
        return cls(orjson.loads(Path(path).read_bytes()))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._ext == other._ext

    def __hash__(self) -> int:
        return hash(self._ext)

    def __repr__(self) -> str:
        return f"IdMap(n={len(self)})"
