"""A returning shopper's page from kept candidate lists: the blend and the page plan are kept on
the kept candidate set and given again, and the page still follows everything live (stock, price,
filters, blocked items, an edited catalogue, review columns) exactly as a page computed afresh."""

from __future__ import annotations

import gc
import weakref
from typing import Any

import numpy as np
import pytest

from shopflow.ranking import BlendRanker, RankContext
from shopflow.ranking import rules as rules_module
from shopflow.ranking.explain import ExplainContext, explain, explain_dicts
from shopflow.ranking.pipeline import blend, page_plan, rank_page
from shopflow.ranking.rules import Filters, allowed
from shopflow.retrieval import merge as merge_module
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.merge import SourceHits, merge
from shopflow.store.idmap import IdMap

N = 12
CTX = RankContext("home", {"covisit": 1.0, "als": 0.6, "trending": 0.2})


def _table(titles: list[str] | None = None) -> ItemTable:
    return ItemTable.build(
        IdMap([f"i{j}" for j in range(N)]),
        titles=titles or [f"Item {j}" for j in range(N)],
        paths=[["Shop", f"Leaf {j % 3}"] for j in range(N)],
        brands=[f"Brand {j % 4}" for j in range(N)],
        price=[float(j + 1) for j in range(N)],
        stock=[5] * N,
    )


def _lists(kept: bool) -> list[SourceHits]:
    """Three source lists; ``kept`` ones read-only, as the candidate cache hands them out."""
    rng = np.random.default_rng(7)
    out = []
    for name in ("covisit", "als", "trending"):
        items = rng.permutation(N)[:8]
        h = SourceHits(name, items, np.sort(rng.random(8))[::-1], np.full(8, 11))
        if kept:
            for arr in (h.items, h.scores, h.evidence):
                arr.flags.writeable = False  # type: ignore[union-attr]
        out.append(h)
    return out


def _page(hits: list[SourceHits], t: ItemTable, **kw: Any) -> list[dict[str, Any]]:
    args: dict[str, Any] = {"filters": Filters(), "blocked": None, "n": 6, "offset": 0}
    args.update(kw)
    return rank_page(
        hits, t, None, args["filters"], args["blocked"], args["n"], args["offset"],
        BlendRanker(), CTX, ExplainContext(t, "home"), max_share=0.5,
        features=args.get("features"),
    )  # fmt: skip


def test_a_kept_set_keeps_its_blend_and_page_and_answers_as_a_fresh_one() -> None:
    t, kept = _table(), _lists(kept=True)
    first = _page(kept, t, blocked=np.array([3]))
    cands = merge(kept)
    assert cands.derived  # the blend (and its page) are kept on the set
    ((key, kept_blend),) = cands.derived.items()
    sub, contrib, _, _, pages = kept_blend
    assert pages and not contrib.flags.writeable and sub is not cands  # item 3 did not pass
    again = _page(kept, t, blocked=np.array([3]))
    assert merge(kept).derived[key] is kept_blend and len(cands.derived) == 1  # given again

    fresh = _page(_lists(kept=False), t, blocked=np.array([3]))
    assert first == again == fresh
    assert "i3" not in [p["item_id"] for p in first]
    # another page of the same blend, and another blocked set (another blend)
    assert _page(kept, t, blocked=np.array([3]), offset=6) == _page(
        _lists(kept=False), t, blocked=np.array([3]), offset=6
    )
    _page(kept, t, blocked=np.array([3, 4]))
    assert len(cands.derived) == 2


def test_a_kept_set_is_freed_by_reference_counting_alone() -> None:
    """A set whose every candidate passed is its own blend's candidates: kept without a reference
    cycle, an evicted set is freed at once, even where the collector no longer looks (frozen)."""
    t, kept = _table(), _lists(kept=True)
    cands = merge(kept)
    assert allowed(cands.items, t, Filters()).all()
    page = _page(kept, t)
    ((_, kept_blend),) = cands.derived.items()
    assert kept_blend[0] is None and page == _page(kept, t)  # the set itself, given back
    ref = weakref.ref(cands)
    del cands, kept_blend
    merge_module._MEMO.clear()
    gc.disable()
    try:
        assert ref() is None
    finally:
        gc.enable()


def test_a_kept_page_follows_live_stock_price_and_filters() -> None:
    t, kept = _table(), _lists(kept=True)
    first = _page(kept, t)
    top = t.ids.index_of(first[0]["item_id"])
    t.price[top] = 99.5  # live, in place
    assert _page(kept, t)[0]["price"] == 99.5
    t.stock[top] = 0  # sold out: gone at once
    page = _page(kept, t)
    assert first[0]["item_id"] not in [p["item_id"] for p in page]
    assert page == _page(_lists(kept=False), t)
    leaf = _page(kept, t, filters=Filters(category="Leaf 1"))
    assert leaf and all(p["category"] == "Leaf 1" for p in leaf)
    assert leaf == _page(_lists(kept=False), t, filters=Filters(category="Leaf 1"))


def test_an_edited_catalogue_builds_the_page_plan_again() -> None:
    t, kept = _table(), _lists(kept=True)
    first = _page(kept, t)
    edited = _table([f"New title {j}" for j in range(N)])  # an edit builds a new table
    page = _page(kept, edited)
    assert [p["item_id"] for p in page] == [p["item_id"] for p in first]
    assert all(p["title"].startswith("New title") for p in page)
    cands = merge(kept)
    b = blend(cands, allowed(cands.items, edited, Filters()), BlendRanker(), CTX)
    assert page_plan(b, edited, 6, 0.5).table is edited


def test_a_review_column_is_computed_afresh_and_never_kept() -> None:
    t, kept = _table(), _lists(kept=True)
    calls = []

    def reviews(items: np.ndarray) -> SourceHits:
        calls.append(len(items))
        return SourceHits("sentiment", items[:2], np.array([1.0, 0.5]))

    ranker_ctx = RankContext("home", {**CTX.weights, "sentiment": 5.0})
    cands = merge(kept)
    ok = allowed(cands.items, t, Filters())
    one = blend(cands, ok, BlendRanker(), ranker_ctx, reviews)
    two = blend(cands, ok, BlendRanker(), ranker_ctx, reviews)
    assert one is not two and "sentiment" in one.candidates.sources and len(calls) == 2
    assert not cands.derived  # nothing kept: the column is live
    np.testing.assert_array_equal(one.ranked, two.ranked)


def test_blocked_items_outside_the_catalogue_are_ignored_by_mask_and_by_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    t, items = _table(), np.arange(N)
    blocked = np.array([-1, 2, 5, N + 40])
    by_mask = allowed(items, t, Filters(in_stock=False), blocked)
    monkeypatch.setattr(rules_module, "MASK_ITEMS", 0)  # a catalogue too large for a mask
    by_set = allowed(items, t, Filters(in_stock=False), blocked)
    assert by_mask.tolist() == by_set.tolist() == [j not in (2, 5) for j in range(N)]


def test_reasons_as_dicts_are_the_reasons_an_answer_shows() -> None:
    t, kept = _table(), _lists(kept=False)
    cands = merge(kept)
    contrib = BlendRanker().contributions(cands, CTX)
    as_dicts = explain_dicts(cands, contrib, ExplainContext(t, "home"))
    reasons = explain(cands, contrib, ExplainContext(t, "home"))
    assert as_dicts == [[r.as_dict() for r in item] for item in reasons]
    assert all("weight" in r["evidence"] for item in as_dicts for r in item)
