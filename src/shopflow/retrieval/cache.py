"""The candidates of a history, kept for when the same history asks again.

A history-based source (the sequential model, ALS, co-visitation) gives the same candidates for the
same history under the same models: a shopper who opens the home feed twice without doing anything
in between costs the full computation twice. :class:`CandidateCache` keeps the latest answers of
each source, keyed by the source, the number asked and the exact history (dense item ids, and
their weights where the source uses them). A new event changes the history and so the key: the
next answer is computed afresh, never served stale. The cache belongs to one
:class:`~shopflow.retrieval.sources.SourceSet`, so a new model bundle starts empty.

Co-visitation also learns from *other* shoppers' events. An entry of it is served only while the
rows it was computed from are unchanged: :class:`RowVersions` stamps every co-visitation row an
online event touches, and an entry whose history has a row stamped after it is computed afresh
(``get(key, valid=...)``), so others' pairs reach a returning shopper's list at once. What is not
tracked per row (the popularity normalisation of the candidates, which every event moves a little)
is bounded by ``ttl_seconds``. Entries of the model-only sources never go stale and leave only when
the cache is full (least recently used first).

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
from collections.abc import Callable

import numpy as np

from shopflow.retrieval.merge import SourceHits

Key = tuple[str, int, bytes]


class RowVersions:
    """The last change of each row of an online-updated table, as a counter (thread-safe).

    >>> v = RowVersions(4)
    >>> stamp = v.stamp()
    >>> v.unchanged(np.array([1, 2]), stamp)
    True
    >>> v.touch(np.array([2, 6]))  # row 6: the table grew
    >>> v.unchanged(np.array([1, 2]), stamp), v.unchanged(np.array([0, 1]), stamp)
    (False, True)
    """

    def __init__(self, n_rows: int) -> None:
        self._rows = np.zeros(max(n_rows, 1), dtype=np.int64)
        self._clock = 0
        self._lock = threading.Lock()

    def stamp(self) -> int:
        """The current version: take it *before* reading the rows an answer is computed from."""
        return self._clock

    def touch(self, rows: np.ndarray) -> None:
        """Rows ``rows`` changed now."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows):
            return
        with self._lock:
            top = int(rows.max()) + 1
            if top > len(self._rows):
                grown = np.zeros(max(top, 2 * len(self._rows)), dtype=np.int64)
                grown[: len(self._rows)] = self._rows
                self._rows = grown
            self._clock += 1
            self._rows[rows] = self._clock

    def unchanged(self, rows: np.ndarray, stamp: int) -> bool:
        """Whether none of ``rows`` changed after ``stamp`` was taken."""
        if stamp >= self._clock:  # nothing changed since: no need to look at the rows
            return True
        table = self._rows
        rows = np.asarray(rows, dtype=np.int64)
        rows = rows[rows < len(table)]
        return not len(rows) or int(table[rows].max()) <= stamp


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
        self._entries: OrderedDict[Key, tuple[float, SourceHits, int]] = OrderedDict()
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

    def get(self, key: Key, valid: Callable[[int], bool] | None = None) -> SourceHits | None:
        """The kept answer under ``key``, or None (absent, expired, or ``valid(stamp)`` False)."""
        if self.size <= 0:
            return None
        with self._lock:
            entry = self._entries.get(key)
            may_expire = entry is not None and key[0] in self.expiring
            if may_expire and time.monotonic() - entry[0] > self.ttl_seconds:  # type: ignore[index]
                del self._entries[key]
                entry = None
            if entry is not None and valid is not None and not valid(entry[2]):
                del self._entries[key]
                entry = None
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[1]

    def put(self, key: Key, hits: SourceHits, stamp: int = 0) -> None:
        """Keep ``hits`` under ``key`` (the least recently used entry leaves when full), with the
        ``stamp`` (e.g. :meth:`RowVersions.stamp`) that ``get(key, valid)`` checks."""
        if self.size <= 0:
            return
        for arr in (hits.items, hits.scores, hits.evidence):
            if arr is not None:
                arr.flags.writeable = False  # shared by the requests that hit it: never changed
        with self._lock:
            self._entries[key] = (time.monotonic(), hits, stamp)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
