"""The shared second half of every scenario: merge → filter → fill → rank → diversify → explain.

:func:`rank_page` takes the candidate sources' hits and returns one page of items, each with its
score, its reasons and what an answer shows of it. When the filters leave fewer candidates than the
page needs, ``fill`` (popularity over the filtered catalogue) supplies more, ranked after every real
candidate, so a page is never short while the catalogue still has items that pass the filters
(``fill=None``: no padding, as in search). ``features`` adds item features of the candidates that
passed the filters (review sentiment) as one more column, which proposes no item of its own.

A returning shopper with nothing new sends the same kept (read-only) source lists again, whose
union ``merge`` keeps; on it :func:`blend` keeps the ranking of each set of rows that pass the
filters and :func:`page_plan` each page's fixed part, so such a request reads only what is live:
stock and presence (which rows pass), prices, review columns and the reasons' sentences.

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
from typing import Any, NamedTuple

import numpy as np

from shopflow.ranking import RankContext, Ranker, order
from shopflow.ranking.explain import ExplainContext, Plan, reason_plan, reasons_of
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


class Blend(NamedTuple):
    """The ranked candidates of one request (see :func:`blend`)."""

    candidates: Candidates  # those that passed the filters
    contributions: np.ndarray  # (C, S) each source's share of each score
    scores: np.ndarray  # (C,)
    ranked: np.ndarray  # (C,) positions, best first
    # a kept blend only: its pages' plans, by (places, share)
    pages: dict[tuple[int, float], PagePlan] | None = None


KEPT_BLENDS = 4  # blends a kept candidate set holds (one per set of rows that passed the filters)


def blend(
    cands: Candidates,
    ok: np.ndarray,
    ranker: Ranker,
    context: RankContext,
    features: Features | None = None,
) -> Blend:
    """The candidates that pass ``ok``, the ranker's (C, S) contributions for them, their scores
    and their order, best first (items only the fill proposed after every real candidate).

    A kept candidate set (``Candidates.derived``: the union of a returning shopper's unchanged
    source lists) with the same rows passing gives the same blend under a ranker that says what its
    blend depends on (``memo_key``): that blend is kept on the set and given again, read-only. With
    a feature column (live review statistics) everything is computed afresh.
    """
    memo_key = getattr(ranker, "memo_key", None)
    derived, key = cands.derived, None
    if derived is not None and memo_key is not None:
        key = (memo_key(context), ok.tobytes())
    done: Blend | None = None
    if derived is not None and key is not None and key in derived:
        sub_kept, *rest = derived[key]  # no set kept: every candidate passed, the set itself
        done = Blend(sub_kept if sub_kept is not None else cands, *rest)
    sub = done.candidates if done is not None else cands.subset(ok)
    extra = features(sub.items) if features is not None and len(sub) else None
    if extra is not None and not len(extra):
        extra = None
    if done is not None and extra is None:
        return done
    # (C, S) of the sources proper, before any feature column (needed when filling only)
    present = sub.present() if FILL in sub.sources else None
    if extra is not None:
        sub, key = with_column(sub, extra), None
    contrib = ranker.contributions(sub, context)  # (C, S)
    scores = contrib.sum(axis=1)
    by = scores
    if present is not None:  # fill-only items go after every real candidate
        only = present[:, sub.sources.index(FILL)] & (present.sum(axis=1) == 1)
        by = np.where(only, scores - 1e6, scores)
    ranked = order(by)
    if derived is None or key is None:
        return Blend(sub, contrib, scores, ranked)
    for arr in (contrib, scores, ranked):
        arr.flags.writeable = False  # shared by the requests that find it
    if len(derived) >= KEPT_BLENDS:
        derived.clear()
    pages: dict[tuple[int, float], PagePlan] = {}
    # kept without the set itself (no reference cycle: an evicted set is freed at once, even
    # when the collector no longer sees it, ``serving.reload.freeze_growth``)
    derived[key] = (None if sub is cands else sub, contrib, scores, ranked, pages)
    return Blend(sub, contrib, scores, ranked, pages)


class PagePlan(NamedTuple):
    """The first ``places`` items of a blend after diversity, with what a page shows of them that
    depends only on the blend and the table (see :func:`page_plan`)."""

    # tuples, not lists: once the collector has seen them it stops tracking them (they hold only
    # numbers and strings), so kept plans add nothing to the collector's later passes
    table: ItemTable
    items: np.ndarray  # (places,) dense item ids
    item_list: tuple[int, ...]
    item_ids: tuple[str, ...]
    scores: tuple[float, ...]  # rounded to 6 places
    titles: tuple[str | None, ...]
    brands: tuple[str | None, ...]
    categories: tuple[str | None, ...]
    reasons: Plan  # each item's sources, strongest first (``explain.reason_plan``)


def page_plan(b: Blend, table: ItemTable, places: int, max_share: float) -> PagePlan:
    """The first ``places`` items of ``b`` after diversity
    (:func:`~shopflow.ranking.rules.diversify_positions`) and what a page shows of them that does
    not change while the table lives: ids, scores, titles, brands, categories (prices are live),
    each item's sources in order. A kept blend keeps its plans: they depend only on its order and
    on the table's categories and brands, fixed for the table's life (an edit builds a new one).
    """
    kept = b.pages.get((places, max_share)) if b.pages is not None else None
    if kept is not None and kept.table is table:
        return kept
    cands, ranked = b.candidates, b.ranked
    rows = ranked[diversify_positions(cands.items[ranked], table, places, max_share)]
    items = cands.items[rows]
    item_list = tuple(items.tolist())
    ids = table.ids.external_ids
    titles, brands, categories = table.labels(items)
    plan = PagePlan(
        table,
        items,
        item_list,
        tuple([ids[i] for i in item_list]),
        tuple(b.scores[rows].round(6).tolist()),
        tuple(titles),
        tuple(brands),
        tuple(categories),
        reason_plan(cands, b.contributions, rows),
    )
    if b.pages is not None:
        items.flags.writeable = False
        if len(b.pages) >= KEPT_BLENDS:
            b.pages.clear()
        b.pages[(places, max_share)] = plan
    return plan


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
    b = blend(cands, ok, ranker, context, features)
    p = page_plan(b, table, need, max_share)
    items = p.item_list[offset:]
    reasons = reasons_of(items, p.reasons[offset:], b.candidates.sources, explain_ctx)
    prices = table.price[p.items[offset:]].tolist()  # live
    return [
        {
            "item_id": item_id,
            "score": score,
            "reasons": why,
            "title": title,
            "brand": brand,
            "category": category,
            "price": None if price != price else price,  # NaN → None
        }
        for item_id, score, why, title, brand, category, price in zip(
            p.item_ids[offset:],
            p.scores[offset:],
            reasons,
            p.titles[offset:],
            p.brands[offset:],
            p.categories[offset:],
            prices,
            strict=True,
        )
    ]
