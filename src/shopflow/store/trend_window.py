"""Trending totals over a sliding window of time buckets, kept up to date as events arrive.

The in-process online state counts each item's weighted events per time bucket (an hour by
default). The trending list sums the latest ``window`` buckets and ranks the items; summing every
bucket's counter and sorting the whole catalogue in Python costs tens of milliseconds on a
catalogue of ten thousand items, paid on the request path whenever the list is read again.
:class:`TrendWindow` keeps the window's sums in a numpy array instead: an event adds its weight, a
bucket leaving the window subtracts its counter once, and the top ``n`` is an ``argpartition``.

Ranking: larger total first, ties by item id (as a full sort would give), items with no weight
left in the window are not listed.

Example
-------
>>> from collections import Counter, defaultdict
>>> buckets, w = defaultdict(Counter), TrendWindow(window=2)
>>> def count(bucket, item, weight):  # every event: its bucket's counter, then the window
...     buckets[bucket][item] += weight
...     w.add(bucket, item, weight, buckets)
>>> count(5, "a", 1.0); count(6, "b", 2.0); count(6, "a", 2.0)
>>> w.top(10)
[('a', 3.0), ('b', 2.0)]
>>> count(8, "c", 1.0)  # buckets 5 and 6 leave the window
>>> w.top(10)
[('c', 1.0)]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

EPS = 1e-9  # totals this small are what subtraction leaves of nothing


class TrendWindow:
    """Per-item sums of the buckets ``b > last - window`` (``last``: the latest bucket seen).

    Create it with the bucket counters (empty) and pass it every event as it is counted.
    """

    def __init__(self, window: int) -> None:
        self.window = window
        self.last: int | None = None
        self._slot: dict[str, int] = {}
        self._names: list[str] = []
        self._totals = np.zeros(256)

    def covers(self, bucket: int) -> bool:
        return self.last is not None and bucket > self.last - self.window

    def add(
        self, bucket: int, item: str, weight: float, buckets: Mapping[int, Counter[str]]
    ) -> None:
        """Count ``weight`` of ``item`` in ``bucket`` (already added to ``buckets[bucket]``)."""
        if self.last is None or bucket > self.last:
            old = self.last
            self.last = bucket
            if old is not None:  # buckets that were in the window and are not any more
                for b, counter in buckets.items():
                    if old - self.window < b <= bucket - self.window:
                        self._sub(counter)
        if self.covers(bucket):
            self._totals[self._index(item)] += weight

    def drop(self, bucket: int, counter: Counter[str]) -> None:
        """``bucket`` is deleted: take its counts out if the window held them."""
        if self.covers(bucket):
            self._sub(counter)

    def top(self, n: int) -> list[tuple[str, float]]:
        """The ``n`` items with the largest totals, ties by item id."""
        m = len(self._names)
        vals = self._totals[:m]
        live = np.flatnonzero(vals > EPS)
        if not len(live) or n <= 0:
            return []
        if len(live) > n:
            kth = np.partition(vals[live], len(live) - n)[len(live) - n]  # the n-th largest
            above = live[vals[live] > kth]
            tied = sorted(self._names[i] for i in live[vals[live] == kth])[: n - len(above)]
            picked = [*above.tolist(), *(self._slot[name] for name in tied)]
        else:
            picked = live.tolist()
        names, totals = self._names, vals
        ranked = sorted(
            ((names[i], float(totals[i])) for i in picked), key=lambda kv: (-kv[1], kv[0])
        )
        return ranked[:n]

    def _index(self, item: str) -> int:
        i = self._slot.get(item)
        if i is None:
            i = self._slot[item] = len(self._names)
            self._names.append(item)
            if i >= len(self._totals):
                self._totals = np.concatenate([self._totals, np.zeros(len(self._totals))])
        return i

    def _sub(self, counter: Counter[str]) -> None:
        for item, x in counter.items():
            i = self._slot.get(item)
            if i is not None:
                self._totals[i] = max(self._totals[i] - x, 0.0)
