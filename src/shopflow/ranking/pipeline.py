"""The shared second half of every scenario: merge → filter → fill → rank → diversify → explain.

:func:`rank_page` takes the candidate sources' hits and returns one page of items, each with its
score, its reasons and what an answer shows of it. When the filters leave fewer candidates than the
page needs, ``fill`` (popularity over the filtered catalogue) supplies more, ranked after every real
candidate, so a page is never short while the catalogue still has items that pass the filters
(``fill=None``: no padding, as in search).

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
from shopflow.ranking.rules import Filters, allowed, diversify
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.merge import SourceHits, merge

FILL = "popular"
Fill = Callable[[int, np.ndarray], SourceHits]  # (how many, allowed-items mask) → hits


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
    contrib = ranker.contributions(cands, context)  # (C, S)
    scores = contrib.sum(axis=1)
    present = cands.present()
    key = scores
    if FILL in cands.sources:  # fill-only items go after every real candidate
        only = present[:, cands.sources.index(FILL)] & (present.sum(axis=1) == 1)
        key = np.where(only, scores - 1e6, scores)
    picked = diversify(cands.items[order(key)], table, need, max_share)[offset:]
    row_of = {int(c): r for r, c in enumerate(cands.items)}
    rows = np.array([row_of[int(i)] for i in picked], dtype=np.int64)
    reasons = explain(cands, contrib, explain_ctx, rows)
    out = []
    for r, why in zip(rows.tolist(), reasons, strict=True):
        i = int(cands.items[r])
        out.append(
            {
                "item_id": table.ids.external_ids[i],
                "score": round(float(scores[r]), 6),
                "reasons": [x.as_dict() for x in why],
                **table.describe(i),
            }
        )
    return out
