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

from collections.abc import Sequence
from dataclasses import dataclass

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
        lengths = {len(self.items), len(self.scores)}
        if self.evidence is not None:
            lengths.add(len(self.evidence))
        if len(lengths) != 1:
            raise ValueError(f"source {self.name}: items, scores and evidence differ in length")
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

    def __len__(self) -> int:
        return len(self.items)

    def present(self) -> np.ndarray:
        """(C, S) bool: which source proposed which candidate."""
        return self.ranks >= 0

    def subset(self, rows: np.ndarray) -> Candidates:
        """The candidates at positions ``rows`` (a boolean mask or indices)."""
        return Candidates(
            self.items[rows], self.sources, self.scores[rows], self.ranks[rows], self.evidence[rows]
        )


def merge(hits: Sequence[SourceHits]) -> Candidates:
    """Union of the hits; the first appearance of an item fixes its position (sources in order).

    Two hit lists with the same source name are merged into one column: an item in both keeps its
    best score (the first on a tie), with that list's rank and evidence.
    """
    names: list[str] = []
    for h in hits:
        if h.name not in names:
            names.append(h.name)
    parts = [h.items for h in hits if len(h)]
    if not parts:
        empty = np.empty((0, len(names)))
        return Candidates(
            np.empty(0, np.int64), names, empty, empty.astype(np.int64), empty.astype(np.int64)
        )
    full = [h for h in hits if len(h)]  # every hit list in one set of arrays: few numpy calls
    lens = [len(h) for h in full]
    allitems = np.concatenate(parts)
    allscores = np.concatenate([h.scores for h in full])
    cols = np.repeat(np.array([names.index(h.name) for h in full], dtype=np.int64), lens)
    rank = np.concatenate([np.arange(n, dtype=np.int64) for n in lens])
    ev = np.concatenate(
        [h.evidence if h.evidence is not None else np.full(len(h), -1, np.int64) for h in full]
    )
    uniq, first, inv = np.unique(allitems, return_index=True, return_inverse=True)
    seen_order = np.argsort(first, kind="stable")
    items = uniq[seen_order]  # first-seen order
    pos = np.empty(len(uniq), dtype=np.int64)  # row of each of the sorted ``uniq``
    pos[seen_order] = np.arange(len(uniq))
    rows = pos[inv]
    c, s = len(items), len(names)
    cell = rows * s + cols
    if np.bincount(cell, minlength=c * s).max() > 1:  # an item twice in one column
        order = np.lexsort((np.arange(len(cell)), -allscores, cell))  # best first, then first
        keep = order[np.r_[True, cell[order][1:] != cell[order][:-1]]]
        rows, cols, allscores, rank, ev = (a[keep] for a in (rows, cols, allscores, rank, ev))
    scores = np.full((c, s), np.nan)
    ranks = np.full((c, s), -1, dtype=np.int64)
    evidence = np.full((c, s), -1, dtype=np.int64)
    scores[rows, cols] = allscores
    ranks[rows, cols] = rank
    evidence[rows, cols] = ev
    return Candidates(items, names, scores, ranks, evidence)


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
