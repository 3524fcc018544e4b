"""The candidates of a history, kept for when the same history asks again.

A history-based source (the sequential model, ALS, co-visitation) gives the same candidates for the
same history under the same models: a shopper who opens the home feed twice without doing anything
in between costs the full computation twice. :class:`CandidateCache` keeps the latest answers of
each source, keyed by the source, the number asked and the exact history (dense item ids, and
their weights where the source uses them). A new event changes the history and so the key: the
next answer is computed afresh, never served stale. The cache belongs to one
:class:`~shopflow.retrieval.sources.SourceSet`, so a new model bundle starts empty.

Co-visitation also learns from *other* shoppers' events; its entries expire after ``ttl_seconds``
so that what others do reaches a returning shopper's list within that time (the shopper's own
events still take effect at once, through the key). Entries of the model-only sources never go
stale and leave only when the cache is full (least recently used first).

Example
-------
>>> import numpy as np
>>> from shopflow.retrieval.merge import SourceHits
>>> cache = CandidateCache(size=100)
>>> key = cache.key("als", 10, np.array([3, 5]))
>>> cache.get(key) is None
True
>>> cache.put(key, SourceHits("als", np.array([7]), np.array([0.5])))
>>> cache.get(key).items.tolist(), cache.hits, cache.misses
([7], 1, 1)
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict

import numpy as np

from shopflow.retrieval.merge import SourceHits

Key = tuple[str, int, bytes]


class CandidateCache:
    """A thread-safe LRU of ``SourceHits`` (see the module docstring).

    Parameters
    ----------
    size
        Entries kept at most (0: nothing is kept).
    ttl_seconds
        Lifetime of the entries of ``expiring`` sources.
    expiring
        Sources whose answers also depend on what others do (co-visitation).
    """

    def __init__(
        self,
        size: int = 20_000,
        ttl_seconds: float = 10.0,
        expiring: frozenset[str] = frozenset({"covisit"}),
    ) -> None:
        self.size = size
        self.ttl_seconds = ttl_seconds
        self.expiring = expiring
        self._entries: OrderedDict[Key, tuple[float, SourceHits]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(source: str, k: int, history: np.ndarray, weights: np.ndarray | None = None) -> Key:
        """The key of ``source``'s ``k`` candidates for ``history`` (and its ``weights``)."""
        h = hashlib.blake2b(np.ascontiguousarray(history, dtype=np.int64).tobytes(), digest_size=16)
        if weights is not None:
            h.update(np.ascontiguousarray(weights, dtype=np.float64).tobytes())
        return source, int(k), h.digest()

    def get(self, key: Key) -> SourceHits | None:
        """The kept answer under ``key``, or None (absent, or expired)."""
        if self.size <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            may_expire = entry is not None and key[0] in self.expiring
            if may_expire and time.monotonic() - entry[0] > self.ttl_seconds:  # type: ignore[index]
                del self._entries[key]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Key, hits: SourceHits) -> None:
        """Keep ``hits`` under ``key`` (the least recently used entry leaves when full)."""
        if self.size <= 0:
            return
        for arr in (hits.items, hits.scores, hits.evidence):
            if arr is not None:
                arr.flags.writeable = False  # shared by the requests that hit it: never changed
        with self._lock:
            self._entries[key] = (time.monotonic(), hits)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
