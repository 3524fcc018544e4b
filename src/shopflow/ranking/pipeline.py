"""The shared second half of every scenario: merge → filter → fill → rank → diversify → explain.

:func:`rank_page` takes the candidate sources' hits and returns one page of items, each with its
score, its reasons and what an answer shows of it. When the filters leave fewer candidates than the
page needs, ``fill`` (popularity over the filtered catalogue) supplies more, ranked after every real
candidate, so a page is never short while the catalogue still has items that pass the filters
(``fill=None``: no padding, as in search). ``features`` adds item features of the candidates that
passed the filters (review sentiment) as one more column, which proposes no item of its own.

Example
-------
>>> import numpy as np
>>> from shopflow.ranking import BlendRanker, RankContext
>>> from shopflow.ranking.explain import ExplainContext
>>> from shopflow.ranking.rules import Filters
>>> from shopflow.retrieval.items import ItemTable
>>> from shopflow.retrieval.merge import SourceHits
>>> from shopflow.store.idmap import IdMap
>>> t = ItemTable.build(IdMap(list("abc")), titles=["A", "B", "C"])
>>> fill = lambda k, mask: SourceHits("popular", np.flatnonzero(mask)[:k], np.ones(k))
>>> page = rank_page([SourceHits("covisit", np.array([2]), np.array([1.0]), np.array([0]))], t,
...                  fill, Filters(), None, n=2, offset=0, ranker=BlendRanker(),
...                  context=RankContext("home", {"covisit": 1.0}),
...                  explain_ctx=ExplainContext(t, "home"), max_share=1.0)
>>> [(p["item_id"], p["reasons"][0]["kind"]) for p in page]
[('c', 'because_you_viewed'), ('a', 'popular')]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shopflow.ranking import RankContext, Ranker, order
from shopflow.ranking.explain import ExplainContext, explain
from shopflow.ranking.rules import Filters, allowed, diversify_positions
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.merge import Candidates, SourceHits, merge

FILL = "popular"
Fill = Callable[[int, np.ndarray], SourceHits]  # (how many, allowed-items mask) → hits
Features = Callable[[np.ndarray], SourceHits | None]  # candidate items → a feature column


def with_column(cands: Candidates, hits: SourceHits) -> Candidates:
    """``cands`` with one more column from ``hits`` (items that are not candidates are ignored).

    >>> c = merge([SourceHits("a", np.array([4, 2]), np.array([1.0, 0.5]))])
    >>> w = with_column(c, SourceHits("f", np.array([2, 9]), np.array([0.3, 1.0])))
    >>> w.sources, w.scores[:, 1].tolist(), w.ranks[:, 1].tolist()
    (['a', 'f'], [nan, 0.3], [-1, 0])
    """
    row_of = {int(i): r for r, i in enumerate(cands.items)}
    col = np.full(len(cands), np.nan)
    rank = np.full(len(cands), -1, dtype=np.int64)
    for j, (item, score) in enumerate(zip(hits.items.tolist(), hits.scores.tolist(), strict=True)):
        r = row_of.get(item)
        if r is not None:
            col[r], rank[r] = score, j
    ev = np.full((len(cands), 1), -1, dtype=np.int64)
    return Candidates(
        cands.items,
        [*cands.sources, hits.name],
        np.column_stack([cands.scores, col]),
        np.column_stack([cands.ranks, rank]),
        np.column_stack([cands.evidence, ev]),
    )


def rank_page(
    hits: Sequence[SourceHits],
    table: ItemTable,
    fill: Fill | None,
    filters: Filters,
    blocked: np.ndarray | None,
    n: int,
    offset: int,
    ranker: Ranker,
    context: RankContext,
    explain_ctx: ExplainContext,
    max_share: float,
    features: Features | None = None,
) -> list[dict[str, Any]]:
    """Items ``offset .. offset + n`` of the ranked, filtered, diversified candidates.

    Each item is ``{"item_id", "score", "reasons", "title", "brand", "category", "price"}``.
    """
    need = offset + n
    cands = merge(hits)
    ok = allowed(cands.items, table, filters, blocked)
    if fill is not None and int(ok.sum()) < need:  # fill from what the filters allow
        mask = filters.item_mask(table)
        if blocked is not None and len(blocked):
            mask[np.asarray(blocked, dtype=np.int64)] = False
        mask[cands.items[ok]] = False
        cands = merge([*hits, fill(need - int(ok.sum()), mask)])
        ok = allowed(cands.items, table, filters, blocked)
    cands = cands.subset(ok)
    # (C, S) of the sources proper, before any feature column (needed when filling only)
    present = cands.present() if FILL in cands.sources else None
    extra = features(cands.items) if features is not None and len(cands) else None
    if extra is not None and len(extra):
        cands = with_column(cands, extra)
    contrib = ranker.contributions(cands, context)  # (C, S)
    scores = contrib.sum(axis=1)
    key = scores
    if present is not None:  # fill-only items go after every real candidate
        only = present[:, cands.sources.index(FILL)] & (present.sum(axis=1) == 1)
        key = np.where(only, scores - 1e6, scores)
    ranked = order(key)
    rows = ranked[diversify_positions(cands.items[ranked], table, need, max_share)[offset:]]
    reasons = explain(cands, contrib, explain_ctx, rows)
    items = cands.items[rows]
    ids = table.ids.external_ids
    return [
        {
            "item_id": ids[i],
            "score": score,
            "reasons": [{"kind": k, "text": t, "evidence": e} for k, t, e in why],
            **described,
        }
        for i, score, why, described in zip(
            items.tolist(),
            np.round(scores[rows], 6).tolist(),
            reasons,
            table.describe_many(items),
            strict=True,
        )
    ]
