"""A reason for every recommended item: kind, a sentence a shopper can read, and the evidence.

The reasons come from provenance, not from guesses: the sources that proposed the item, ordered by
their share of its blended score, and the evidence item each source recorded (the history item a
neighbour came from, the cart item it is bought with). Kinds:

``because_you_viewed`` ("Because you viewed *Y*"), ``similar`` ("Similar to *X*"),
``viewed_together`` ("Often viewed with *X*"), ``bought_together`` ("Bought together with *X*"),
``trending`` ("Trending in *Z*"), ``new_from_brand`` ("New from *B*, a brand you like"),
``new_in_category``, ``new_arrival``, ``matches_query`` ("Matches “*q*”"), ``searched_for``
("Because you searched for “*q*”"), ``buyers_praise`` ("Buyers praise it — 4.5/5 from 230
reviews", only with strong evidence: ``serving.reviews``), ``popular``.

Example
-------
>>> import numpy as np
>>> from shopflow.retrieval.items import ItemTable
>>> from shopflow.retrieval.merge import SourceHits, merge
>>> from shopflow.store.idmap import IdMap
>>> t = ItemTable.build(IdMap(["a", "b"]), titles=["Green tea", "Teapot"], paths=[["Tea"], ["Tea"]])
>>> c = merge([SourceHits("bought_together", np.array([1]), np.array([1.0]), np.array([0]))])
>>> r = explain(c, np.ones((1, 1)), ExplainContext(t, "complementary"))[0][0]
>>> r.kind, r.text, r.evidence["item_id"]
('bought_together', 'Bought together with Green tea', 'a')
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import numpy as np

from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.merge import Candidates

ITEM_SCENARIOS = frozenset({"similar"})  # scenarios whose evidence item is the anchor, not history
# sources whose reason is about the item itself (its category, brand, reviews, the query's words);
# every other source's reason depends only on its evidence item, so one request builds it once
ITEM_BOUND = frozenset({"trending", "popular", "new_arrivals", "sentiment", "search", "dense"})
_WORD = re.compile(r"\w+")
# evidence-bound, but the evidence indexes this request's own data (its queries)
PER_REQUEST = frozenset({"searched"})


class Reason(NamedTuple):
    """Why an item is on the list (a named tuple: a page builds dozens, so cheap to make)."""

    kind: str
    text: str
    evidence: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "text": self.text, "evidence": self.evidence}


_MISSING = Reason("", "", {})  # not in the cache (None is a cached "no reason")


@dataclass
class ExplainContext:
    """What the sentences may mention: the catalogue, the scenario and the user's tastes."""

    table: ItemTable
    scenario: str
    query: str | None = None
    category: str | None = None  # the category the request asked for (trending in Z)
    liked_brands: set[int] = field(default_factory=set)
    liked_leaves: set[int] = field(default_factory=set)
    review_reason: Callable[[int], Reason | None] | None = None  # item → "buyers praise it"
    searches: list[str] = field(default_factory=list)  # recent queries, by evidence index
    # reasons that depend only on the source, the evidence item and the kind of scenario, kept
    # across requests on the same table (its titles never change: edits make a new table)
    cache: dict[tuple[Any, ...], Reason | None] | None = None


def explain(
    candidates: Candidates,
    contributions: np.ndarray,
    ctx: ExplainContext,
    rows: np.ndarray | None = None,
    max_reasons: int = 2,
) -> list[list[Reason]]:
    """Reasons for the candidates at ``rows`` (default all), strongest source first.

    ``contributions`` is the ranker's (C, S) share of each source in each score. Every item gets at
    least one reason (``popular`` when no source left evidence), at most ``max_reasons`` of
    different kinds. Each reason's evidence carries the source's ``weight`` in the score.
    """
    return [
        [Reason(r["kind"], r["text"], r["evidence"]) for r in reasons]
        for reasons in explain_dicts(candidates, contributions, ctx, rows, max_reasons)
    ]


def explain_dicts(
    candidates: Candidates,
    contributions: np.ndarray,
    ctx: ExplainContext,
    rows: np.ndarray | None = None,
    max_reasons: int = 2,
) -> list[list[dict[str, Any]]]:
    """:func:`explain`, each reason already the ``{"kind", "text", "evidence"}`` an answer shows
    (what a page needs: no reason is built twice)."""
    rows = np.arange(len(candidates)) if rows is None else np.asarray(rows, dtype=np.int64)
    plan = reason_plan(candidates, contributions, rows)
    items = candidates.items[rows].tolist()
    return reasons_of(items, plan, candidates.sources, ctx, max_reasons)


# per item: (source column, evidence item, weight), strongest first; tuples of numbers, which the
# collector stops tracking once it has seen them (plans are kept: ``ranking.pipeline.page_plan``)
Plan = tuple[tuple[tuple[int, int, float], ...], ...]


def reason_plan(candidates: Candidates, contributions: np.ndarray, rows: np.ndarray) -> Plan:
    """Per row of ``rows``: the sources that proposed it, strongest first, each with its evidence
    item and its weight in the score (rounded to 4 places). It depends only on the candidates and
    the blend, so a page kept with a kept blend keeps it too (``ranking.pipeline.page_plan``)."""
    # the rows' numbers as Python lists once: per-element numpy indexing costs more than the loop
    contrib = contributions[rows]
    present = candidates.ranks[rows] >= 0
    # each row's sources, strongest first; absent ones sort last and are cut off by ``counts``
    orders = np.argsort(np.where(present, -contrib, np.inf), axis=1, kind="stable").tolist()
    counts = present.sum(axis=1).tolist()
    evidence_of = candidates.evidence[rows].tolist()
    weights = contrib.round(4).tolist()
    return tuple(
        [
            tuple([(s, ev[s], w[s]) for s in o[:c]])
            for o, c, ev, w in zip(orders, counts, evidence_of, weights, strict=True)
        ]
    )


def reasons_of(
    items: Sequence[int],
    plan: Plan,
    sources: Sequence[str],
    ctx: ExplainContext,
    max_reasons: int = 2,
) -> list[list[dict[str, Any]]]:
    """The reasons of ``items`` from their :func:`reason_plan` (see :func:`explain`)."""
    bound = [s in ITEM_BOUND for s in sources]
    popular = [s in ("trending", "popular") for s in sources]
    # the same "because of" item recurs within a page and across pages (``ctx.cache``, when
    # given), the same "trending in" category within a page; other reasons are about the item
    page: dict[tuple[Any, ...], Reason | None] = {}
    kept = ctx.cache if ctx.cache is not None else page
    item_scenario = ctx.scenario in ITEM_SCENARIOS
    out: list[list[dict[str, Any]]] = []
    for item, parts in zip(items, plan, strict=True):
        reasons: list[dict[str, Any]] = []
        kinds: list[str] = []
        for s, ev, weight in parts:
            store: dict[tuple[Any, ...], Reason | None] | None = None
            if not bound[s]:  # depends only on the source, its evidence item and the scenario
                store = page if sources[s] in PER_REQUEST else kept
                key: tuple[Any, ...] = (sources[s], ev, item_scenario)
            elif popular[s]:  # depends only on the source and where the item is
                store, key = page, (sources[s], _where(item, ctx))
            if store is None:
                reason = _reason(sources[s], item, ev, ctx)
            else:
                reason = store.get(key, _MISSING)
                if reason is _MISSING:
                    reason = store[key] = _reason(sources[s], item, ev, ctx)
            if reason is None or reason.kind in kinds:
                continue
            kinds.append(reason.kind)
            evidence = reason.evidence.copy()
            evidence["weight"] = weight
            reasons.append({"kind": reason.kind, "text": reason.text, "evidence": evidence})
            if len(reasons) >= max_reasons:
                break
        out.append(reasons or [_popular(item, ctx, "popular").as_dict()])
    return out


def _item_ev(source: str, j: int, ctx: ExplainContext) -> dict[str, Any]:
    return {"source": source, "item_id": ctx.table.ids.external_ids[j], "title": _title(j, ctx)}


def _title(j: int, ctx: ExplainContext) -> str:
    return ctx.table.titles[j] or ctx.table.ids.external_ids[j]


def _reason(source: str, item: int, ev: int, ctx: ExplainContext) -> Reason | None:
    t = ctx.table
    if source in ("trending", "popular"):
        return _popular(item, ctx, source)
    if source == "new_arrivals":
        return _new(item, ctx)
    if source == "sentiment":
        return ctx.review_reason(item) if ctx.review_reason is not None else None
    if source == "searched":
        query = ctx.searches[ev] if 0 <= ev < len(ctx.searches) else None
        if query is None:
            return None
        text = f"Because you searched for “{query}”"
        return Reason("searched_for", text, {"source": source, "query": query})
    if source in ("search", "dense"):
        words = {w.lower() for w in _WORD.findall(ctx.query or "")}
        text = " ".join(filter(None, (t.titles[item], t.brand_name(item), *t.paths[item])))
        matched = sorted(words & {w.lower() for w in _WORD.findall(text)})
        return Reason(
            "matches_query",
            f"Matches “{ctx.query}”",
            {"source": source, "query": ctx.query, "matched": matched},
        )
    if ev < 0:
        return None
    title = _title(ev, ctx)
    if source == "bought_together":
        return Reason("bought_together", f"Bought together with {title}", _item_ev(source, ev, ctx))
    if source in ("viewed_together",) or (source == "covisit" and ctx.scenario in ITEM_SCENARIOS):
        return Reason("viewed_together", f"Often viewed with {title}", _item_ev(source, ev, ctx))
    if ctx.scenario in ITEM_SCENARIOS or source == "content":
        return Reason("similar", f"Similar to {title}", _item_ev(source, ev, ctx))
    return Reason("because_you_viewed", f"Because you viewed {title}", _item_ev(source, ev, ctx))


def _where(item: int, ctx: ExplainContext) -> str:
    """Where a trending or popular item is: the requested category, else its own ("" if none)."""
    t = ctx.table
    return ctx.category or t.leaf_name(item) or t.top_name(item) or ""


def _popular(item: int, ctx: ExplainContext, source: str) -> Reason:
    where = _where(item, ctx) or None
    kind = "trending" if source == "trending" else "popular"
    verb = "Trending" if kind == "trending" else "Popular"
    text = f"{verb} in {where}" if where else f"{verb} right now"
    return Reason(kind, text, {"source": source, "category": where})


def _new(item: int, ctx: ExplainContext) -> Reason:
    t = ctx.table
    created = float(t.created_at[item])
    ev: dict[str, Any] = {
        "source": "new_arrivals",
        "created_at": None
        if np.isnan(created)
        else datetime.fromtimestamp(created, tz=UTC).isoformat(),
    }
    brand, leaf = int(t.brand[item]), int(t.leaf[item])
    if brand >= 0 and brand in ctx.liked_brands:
        name = t.brand_names[brand]
        return Reason("new_from_brand", f"New from {name}, a brand you like", {**ev, "brand": name})
    if leaf >= 0 and leaf in ctx.liked_leaves:
        name = t.category_names[leaf]
        return Reason(
            "new_in_category", f"New in {name}, which you browse", {**ev, "category": name}
        )
    where = t.leaf_name(item)
    return Reason("new_arrival", f"New in {where}" if where else "New arrival", ev)
