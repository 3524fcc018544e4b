"""Merge the hits of several candidate sources into one candidate set that keeps their provenance.

Each source answers a :class:`SourceHits` (item indices, scores, and for each item the item that led
to it, such as the history item a co-visitation neighbour came from). :func:`merge` takes the union
of the items and keeps, per candidate and per source, the score, the rank within that source and the
evidence, so that the ranker can blend them and the explainer can say which source put the item
there and why.

Example
-------
>>> import numpy as np
>>> a = SourceHits("covisit", np.array([5, 7]), np.array([2.0, 1.0]), np.array([1, 1]))
>>> b = SourceHits("trending", np.array([7, 9]), np.array([9.0, 3.0]))
>>> c = merge([a, b])
>>> c.items.tolist(), c.sources
([5, 7, 9], ['covisit', 'trending'])
>>> c.scores[:, 0].tolist()[:2], c.evidence[:, 0].tolist()
([2.0, 1.0], [1, 1, -1])
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class SourceHits:
    """What one candidate source proposes: items best first, their scores and evidence items."""

    name: str
    items: np.ndarray  # int64 dense item indices
    scores: np.ndarray  # float, larger is better
    evidence: np.ndarray | None = None  # int64 dense index of the item that led here, -1 none

    def __post_init__(self) -> None:
        self.items = np.asarray(self.items, dtype=np.int64)
        self.scores = np.asarray(self.scores, dtype=np.float64)
        if self.evidence is not None:
            self.evidence = np.asarray(self.evidence, dtype=np.int64)
        n = len(self.items)
        if len(self.scores) != n or (self.evidence is not None and len(self.evidence) != n):
            raise ValueError(f"source {self.name}: items, scores and evidence differ in length")
        # two reductions say whether anything must go (a sum is finite iff every score is, short
        # of an overflow, which only sends it to the exact check below)
        if not n or (self.items.min() >= 0 and math.isfinite(self.scores.sum())):
            return
        keep = (self.items >= 0) & np.isfinite(self.scores)
        if not keep.all():
            self.items, self.scores = self.items[keep], self.scores[keep]
            if self.evidence is not None:
                self.evidence = self.evidence[keep]

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class Candidates:
    """The union of the sources' items, with one column per source (NaN / -1 where absent)."""

    items: np.ndarray  # (C,) int64
    sources: list[str]  # (S,)
    scores: np.ndarray  # (C, S) float64 source score, NaN when the source did not propose it
    ranks: np.ndarray  # (C, S) int64 0-based rank within the source, -1 when absent
    evidence: np.ndarray  # (C, S) int64 evidence item, -1 when none
    # a kept (read-only, shared) set only: what was derived from it and depends on nothing live,
    # such as the ranker's blend (``ranking.pipeline``); None where the set is this request's own
    derived: dict[Any, Any] | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.items)

    def present(self) -> np.ndarray:
        """(C, S) bool: which source proposed which candidate."""
        return self.ranks >= 0

    def subset(self, rows: np.ndarray) -> Candidates:
        """The candidates at positions ``rows`` (a boolean mask or indices)."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            if rows.all():  # the usual case: every candidate passed the filters
                return self
            rows = np.flatnonzero(rows)
        return Candidates(
            self.items.take(rows),
            self.sources,
            self.scores.take(rows, axis=0),
            self.ranks.take(rows, axis=0),
            self.evidence.take(rows, axis=0),
        )


def merge(hits: Sequence[SourceHits]) -> Candidates:
    """Union of the hits; the first appearance of an item fixes its position (sources in order).

    Two hit lists with the same source name are merged into one column: an item in both keeps its
    best score (the first on a tie), with that list's rank and evidence.

    Lists that are kept and shared (read-only: the candidate cache's, the second's trending) recur
    together when a shopper comes back with the same history; their union is then kept too
    (:data:`MEMO_SIZE` of them) and given again, read-only, instead of being built again.
    """
    names = list(dict.fromkeys(h.name for h in hits))
    full = [h for h in hits if len(h)]
    kept = bool(full) and not any(h.items.flags.writeable for h in full)
    if kept:
        key = (tuple(names), tuple(map(id, full)))
        with _MEMO_LOCK:
            entry = _MEMO.get(key)
            if entry is not None and all(a is b for a, b in zip(entry[0], full, strict=True)):
                _MEMO.move_to_end(key)
                return entry[1]
    cands = _union(names, full)
    if kept:
        for arr in (cands.items, cands.scores, cands.ranks, cands.evidence):
            arr.flags.writeable = False
        cands.derived = {}
        with _MEMO_LOCK:  # the entry holds the lists, so their ids cannot be reused meanwhile
            _MEMO[key] = (tuple(full), cands)
            if len(_MEMO) > MEMO_SIZE:
                _MEMO.popitem(last=False)
    return cands


MEMO_SIZE = 2_048  # about 20 KB each at the default pool size
_MEMO: OrderedDict[tuple[Any, ...], tuple[tuple[SourceHits, ...], Candidates]] = OrderedDict()
_MEMO_LOCK = threading.Lock()


def _union(names: list[str], full: list[SourceHits]) -> Candidates:
    """:func:`merge` of the non-empty lists ``full`` into the columns ``names``."""
    if not full:
        empty = np.empty((0, len(names)))
        return Candidates(
            np.empty(0, np.int64), names, empty, empty.astype(np.int64), empty.astype(np.int64)
        )
    # a page merges a few hundred hits: a dict gives the first-seen union and each hit's row in
    # one pass, cheaper than the dozen array calls of a sort-based union at this size
    row_of: dict[int, int] = {}
    rows_list: list[int] = []
    repeated = len({h.name for h in full}) < len(full)  # two lists feed one column
    add = row_of.setdefault
    for h in full:
        items = h.items.tolist()
        rows_here = [add(item, len(row_of)) for item in items]
        rows_list += rows_here
        repeated = repeated or len(set(rows_here)) < len(rows_here)  # an item twice in a list
    col_of = {name: c for c, name in enumerate(names)}
    lens = [len(h) for h in full]
    c, s = len(row_of), len(names)
    rows = np.array(rows_list, dtype=np.int64)
    cols = np.repeat(np.array([col_of[h.name] for h in full], dtype=np.int64), lens)
    allscores = np.concatenate([h.scores for h in full])
    rank = np.concatenate([_ranks(n) for n in lens])
    ev = np.concatenate([h.evidence if h.evidence is not None else _none(len(h)) for h in full])
    cell = cols * c + rows  # column-major: a source's scores lie together (fast reductions)
    if repeated:  # an item twice in one column: keep its best score (the first on a tie)
        order = np.lexsort((np.arange(len(cell)), -allscores, cell))
        keep = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
        cell, allscores, rank, ev = (a[keep] for a in (cell, allscores, rank, ev))
    scores = np.full(c * s, np.nan)
    ranks = np.full(c * s, -1, dtype=np.int64)
    evidence = np.full(c * s, -1, dtype=np.int64)
    scores[cell] = allscores
    ranks[cell] = rank
    evidence[cell] = ev
    items = np.fromiter(row_of, dtype=np.int64, count=c)  # dicts keep insertion order
    return Candidates(  # (C, S) views of (S, C) arrays
        items, names, scores.reshape(s, c).T, ranks.reshape(s, c).T, evidence.reshape(s, c).T
    )


_NONE = np.full(1024, -1, dtype=np.int64)
_RANKS = np.arange(1024, dtype=np.int64)


def _ranks(n: int) -> np.ndarray:
    """0 .. n-1 (ranks within one hit list), without a new array for the usual sizes."""
    return _RANKS[:n] if n <= len(_RANKS) else np.arange(n, dtype=np.int64)


def _none(n: int) -> np.ndarray:
    """``n`` times -1 (no evidence), without a new array for the usual sizes."""
    return _NONE[:n] if n <= len(_NONE) else np.full(n, -1, dtype=np.int64)


def aggregate(
    items: Sequence[np.ndarray], scores: Sequence[np.ndarray], evidence: Sequence[int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum the scores that several lists give each item, keeping the evidence of the largest part.

    ``items[j]`` and ``scores[j]`` are the hits led to by evidence item ``evidence[j]``. Returns the
    items (best total first; ties by lower index), their totals and their evidence.

    >>> ids, tot, ev = aggregate([np.array([1, 2]), np.array([2, 3])],
    ...                          [np.array([1.0, 0.5]), np.array([2.0, 0.1])], [10, 20])
    >>> ids.tolist(), tot.tolist(), ev.tolist()
    ([2, 1, 3], [2.5, 1.0, 0.1], [20, 10, 20])
    """
    if not items or not sum(len(i) for i in items):
        return np.empty(0, np.int64), np.empty(0), np.empty(0, np.int64)
    it = np.concatenate([np.asarray(i, np.int64) for i in items])
    sc = np.concatenate([np.asarray(s, np.float64) for s in scores])
    ev = np.concatenate(
        [np.full(len(i), e, np.int64) for i, e in zip(items, evidence, strict=True)]
    )
    uniq, inv = np.unique(it, return_inverse=True)
    total = np.bincount(inv, weights=sc, minlength=len(uniq))
    # evidence: the part with the largest score for each item (stable: first list wins ties)
    order = np.lexsort((-sc, inv))
    firsts = order[np.r_[0, np.flatnonzero(np.diff(inv[order])) + 1]]
    best_ev = np.empty(len(uniq), np.int64)
    best_ev[inv[firsts]] = ev[firsts]
    rank = np.lexsort((uniq, -total))
    return uniq[rank], total[rank], best_ev[rank]
