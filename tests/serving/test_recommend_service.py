"""The recommend service without HTTP: the pipeline's parts on hand-computed cases, then every
scenario on a real bundle (fitted on a small demo shop, written and loaded from disk)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest

from shopflow.config import Settings, load_settings
from shopflow.errors import NotFound, ValidationFailed
from shopflow.ingest.schema import Consent, Event, Item, User
from shopflow.ranking import BlendRanker, RankContext
from shopflow.ranking.explain import ExplainContext, explain
from shopflow.ranking.rules import Filters, allowed, diversify
from shopflow.retrieval.items import ItemTable
from shopflow.retrieval.merge import SourceHits, aggregate, merge
from shopflow.serving.recommend import RecommendService
from shopflow.store.idmap import IdMap
from shopflow.store.online import MemoryState
from shopflow.store.store import Store
from tests.serving import recommend_shop as shop

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


# -- the pipeline's parts, by hand -----------------------------------------------------------------
def _table() -> ItemTable:
    #        a        b        c        d        e
    return ItemTable.build(
        IdMap(list("abcde")),
        titles=["Tea A", "Tea B", "Mug", "Pot", "Cup"],
        paths=[["Food", "Tea"], ["Food", "Tea"], ["Home", "Mugs"], ["Home", "Pots"], ["Home"]],
        brands=["Leafy", "Leafy", "Clay", None, "Clay"],
        price=[4.0, 12.0, 8.0, None, 3.0],
        stock=[5, 0, None, 2, 1],
        created_at=[1.0, 2.0, 3.0, 4.0, 5.0],
    )


def test_merge_keeps_every_source_score_rank_and_evidence() -> None:
    c = merge(
        [
            SourceHits("covisit", np.array([3, 1]), np.array([0.9, 0.4]), np.array([0, 2])),
            SourceHits("trending", np.array([1, 4]), np.array([7.0, 5.0])),
        ]
    )
    assert c.items.tolist() == [3, 1, 4]
    assert c.sources == ["covisit", "trending"]
    np.testing.assert_array_equal(c.ranks, [[0, -1], [1, 0], [-1, 1]])
    np.testing.assert_array_equal(c.evidence, [[0, -1], [2, -1], [-1, -1]])
    assert np.isnan(c.scores[0, 1]) and c.scores[1, 1] == 7.0


def test_merge_of_two_lists_with_one_name_keeps_each_items_best_score() -> None:
    c = merge(
        [
            SourceHits("sequential", np.array([5, 6]), np.array([0.2, 0.9]), np.array([1, 1])),
            SourceHits("trending", np.array([6]), np.array([3.0])),
            SourceHits(
                "sequential", np.array([6, 7, 5]), np.array([0.5, 0.4, 0.2]), np.array([2, 2, 2])
            ),
        ]
    )
    assert c.items.tolist() == [5, 6, 7] and c.sources == ["sequential", "trending"]
    # 5: tie 0.2 / 0.2, the first list's; 6: 0.9 beats 0.5; 7 only in the second list
    assert c.scores[:, 0].tolist() == [0.2, 0.9, 0.4]
    assert c.ranks[:, 0].tolist() == [0, 1, 1] and c.evidence[:, 0].tolist() == [1, 1, 2]
    one = merge([SourceHits("covisit", np.array([4, 4, 2]), np.array([1.0, 3.0, 2.0]))])
    assert one.items.tolist() == [4, 2] and one.scores[:, 0].tolist() == [3.0, 2.0]
    assert one.ranks[:, 0].tolist() == [1, 2]


def test_the_union_of_kept_lists_is_kept_and_of_fresh_lists_built_again() -> None:
    def kept(name: str, items: list[int]) -> SourceHits:
        h = SourceHits(name, np.array(items), np.linspace(1.0, 0.5, len(items)))
        h.items.flags.writeable = h.scores.flags.writeable = False  # as the candidate cache does
        return h

    a, b = kept("covisit", [3, 1]), kept("trending", [1, 4])
    first = merge([a, SourceHits("content", np.empty(0), np.empty(0)), b])
    again = merge([a, SourceHits("content", np.empty(0), np.empty(0)), b])
    assert again is first and not first.scores.flags.writeable
    assert merge([a, b]) is not first  # other columns
    b2 = kept("trending", [1, 4])  # equal but another list (the next second's trending)
    assert merge([a, SourceHits("content", np.empty(0), np.empty(0)), b2]) is not first
    fresh = SourceHits("covisit", np.array([3, 1]), np.array([1.0, 0.5]))  # writable: one-off
    one, two = merge([fresh, b]), merge([fresh, b])
    assert one is not two and one.items.tolist() == two.items.tolist() == [3, 1, 4]


def test_aggregate_sums_parts_and_keeps_the_strongest_evidence() -> None:
    items, total, ev = aggregate(
        [np.array([5, 6]), np.array([6, 7])], [np.array([1.0, 0.2]), np.array([0.5, 0.1])], [10, 11]
    )
    assert items.tolist() == [5, 6, 7]
    np.testing.assert_allclose(total, [1.0, 0.7, 0.1])
    assert ev.tolist() == [10, 11, 11]


def test_blend_scales_each_source_then_weighs_and_sums() -> None:
    c = merge(
        [
            SourceHits("a", np.array([0, 1, 2]), np.array([4.0, 2.0, 1.0])),  # / 4
            SourceHits("b", np.array([2, 3]), np.array([-1.0, 3.0])),  # min-max (a negative)
        ]
    )
    ctx = RankContext("home", {"a": 1.0, "b": 0.5})
    # a: 1, 0.5, 0.25; b: item 2 → 0, item 3 → 1
    np.testing.assert_allclose(BlendRanker().score(c, ctx), [1.0, 0.5, 0.25, 0.5])
    contrib = BlendRanker().contributions(c, ctx)
    np.testing.assert_allclose(contrib[3], [0.0, 0.5])


def test_filters_stock_price_category_brand_exclude_and_blocked() -> None:
    t = _table()
    every = np.arange(5)
    assert allowed(every, t, Filters()).tolist() == [True, False, True, True, True]  # b sold out
    assert allowed(every, t, Filters(in_stock=False)).tolist() == [True] * 5
    assert allowed(every, t, Filters(category="home")).tolist() == [False, False, True, True, True]
    assert allowed(every, t, Filters(category="Tea")).tolist() == [True, False, False, False, False]
    assert allowed(every, t, Filters(brand="clay")).tolist() == [False, False, True, False, True]
    # d has no price: a price filter drops it
    assert allowed(every, t, Filters(min_price=3.5, max_price=8)).tolist() == [
        True, False, True, False, False,
    ]  # fmt: skip
    got = allowed(every, t, Filters(exclude=frozenset({"a", "zz"})), blocked=np.array([4]))
    assert got.tolist() == [False, False, True, True, False]
    assert Filters(brand="nobody").item_mask(t).sum() == 0


def test_a_price_range_upside_down_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed, match="min_price: 9 is above max_price 2; swap them"):
        Filters(min_price=9, max_price=2)


def test_diversify_caps_each_leaf_category_and_brand() -> None:
    t = ItemTable.build(
        IdMap([f"i{i}" for i in range(6)]),
        paths=[["X"], ["X"], ["X"], ["Y"], ["Y"], ["Z"]],
        brands=["p", "q", "r", "p", "p", "s"],
    )
    # n=4, share 0.5 → at most 2 per category and per brand
    # 0 X/p, 1 X/q, 2 X (cap) deferred, 3 Y/p, 4 Y/p: brand p at cap → deferred, 5 Z/s
    assert diversify(np.arange(6), t, n=4, max_share=0.5).tolist() == [0, 1, 3, 5]
    assert diversify(np.arange(6), t, n=6, max_share=0.3).tolist() == [0, 1, 3, 5, 2, 4]
    assert diversify(np.arange(6), t, n=3, max_share=1.0).tolist() == [0, 1, 2]


def test_explain_names_the_source_and_its_evidence() -> None:
    t = _table()
    c = merge(
        [
            SourceHits("covisit", np.array([2]), np.array([1.0]), np.array([0])),
            SourceHits("trending", np.array([2, 3]), np.array([1.0, 0.5])),
            SourceHits("new_arrivals", np.array([4]), np.array([1.0])),
            SourceHits("bought_together", np.array([1]), np.array([1.0]), np.array([3])),
        ]
    )
    contrib = BlendRanker().contributions(c, RankContext("home", {"covisit": 1.0}))
    ctx = ExplainContext(t, "home", liked_brands={int(t.brand[0])}, liked_leaves=set())
    reasons = explain(c, contrib, ctx)
    by_item = {t.ids.external_ids[int(i)]: r for i, r in zip(c.items, reasons, strict=True)}
    assert [(r.kind, r.text) for r in by_item["c"]] == [
        ("because_you_viewed", "Because you viewed Tea A"),
        ("trending", "Trending in Mugs"),
    ]
    assert by_item["c"][0].evidence["item_id"] == "a"
    assert by_item["d"][0].text == "Trending in Pots"
    assert by_item["e"][0].kind == "new_arrival"  # Clay is not a liked brand
    assert by_item["b"][0].text == "Bought together with Pot"
    ctx.liked_brands = {int(t.brand[4])}
    assert explain(c, contrib, ctx)[2][0].text == "New from Clay, a brand you like"


def test_reasons_kept_across_requests_follow_the_scenario_and_never_the_request() -> None:
    t = _table()
    hits = [
        SourceHits("covisit", np.array([2, 3]), np.array([1.0, 0.5]), np.array([0, 0])),
        SourceHits("searched", np.array([4]), np.array([1.0]), np.array([0])),
    ]
    c = merge(hits)
    contrib = BlendRanker().contributions(c, RankContext("home", {}))
    cache: dict = {}
    home = ExplainContext(t, "home", searches=["tea"], cache=cache)
    first = explain(c, contrib, home)
    assert [r[0].text for r in first] == ["Because you viewed Tea A"] * 2 + [
        "Because you searched for “tea”"
    ]
    assert cache and all(key[0] == "covisit" for key in cache)  # the query is not kept
    again = explain(c, contrib, ExplainContext(t, "home", searches=["mugs"], cache=cache))
    assert [r[0].text for r in again][:2] == ["Because you viewed Tea A"] * 2
    assert again[2][0].text == "Because you searched for “mugs”"
    # the same evidence on an item page is another reason, from the same cache
    similar = explain(c, contrib, ExplainContext(t, "similar", cache=cache))
    assert similar[0][0].text == "Often viewed with Tea A"
    assert [r[0].text for r in first] == [r[0].text for r in explain(c, contrib, home)]


# -- every scenario on a real bundle ---------------------------------------------------------------
@pytest.fixture(scope="module")
def bundle_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundles")
    shop.write(root)
    return root


@pytest.fixture
def service(tmp_path: Path, bundle_root: Path) -> Iterator[RecommendService]:
    store = shop.new_store(tmp_path)
    settings = load_settings(data_dir=tmp_path / "data")
    from shopflow.store.bundles import BundleStore

    svc = RecommendService(
        store, MemoryState(), settings, bundles=BundleStore(bundle_root), encoder=shop.HashEncoder()
    )
    svc.start()
    shop.with_sasrec(svc)
    yield svc
    svc.close()
    store.close()


def _record(svc: RecommendService, events: list[Event]) -> None:
    svc.online.record(events)
    svc.on_events(events)


def _view(user: str, item: str, i: int, kind: str = "view") -> Event:
    return Event(
        event_id=f"{user}-{i}",
        type=kind,
        user_id=user,
        item_id=item,
        timestamp=NOW.timestamp() + i,
    )


def test_a_user_seen_only_in_training_has_the_bundle_history_then_online_events_join_it(
    service: RecommendService,
) -> None:
    user = shop.user_with_history(12)
    st = service.state
    trained = st.bundle.history(user)
    u = service.context.user(st, user)
    cap = service.config.max_history
    assert u.personal and not u.session_only and u.mode == "personal"
    assert u.history.tolist() == trained[-cap:].tolist() and u.weights.tolist() == [1.0] * len(
        u.history
    )
    assert not len(u.purchased) and u.queries == ()
    with pytest.raises(ValueError):  # the view shares the bundle's array: it must be read-only
        u.history[0] = 0
    item = st.table.ids.external_ids[int(trained[0])]
    later = st.cutoff + 60 if st.cutoff is not None else NOW.timestamp()
    buy = Event(event_id="b1", type="purchase", user_id=user, item_id=item, timestamp=later)
    _record(service, [buy])
    v = service.context.user(st, user)
    assert v.history.tolist() == [*trained.tolist(), int(trained[0])][-cap:]
    assert v.purchased.tolist() == [int(trained[0])] and v.weights[-1] > 1.0
    stranger = service.context.user(st, "never-seen")
    assert stranger.mode == "cold" and stranger.session_only


def test_an_unchanged_trending_list_stays_the_same_object_and_an_event_renews_it(
    service: RecommendService,
) -> None:
    """What is derived from the trending list (its hits, their unions with kept candidate lists)
    is kept while the list is the same object: re-reading an unchanged list must not renew it."""
    service.config.trending_seconds = 0.0  # re-read at every request
    item = service.state.table.ids.external_ids[3]
    _record(service, [_view("t-1", item, 1)])
    first = service.context.trending()
    assert first and service.context.trending() is first
    _record(service, [_view("t-2", item, 2)])
    renewed = service.context.trending()
    assert renewed is not first and dict(renewed)[item] > dict(first)[item]


def test_the_bundle_is_loaded_with_every_source(service: RecommendService) -> None:
    assert service.model_version is not None
    assert set(service.state.sources.available()) >= {
        "sequential", "covisit", "bought_together", "als", "content", "trending", "new_arrivals",
    }  # fmt: skip


def test_served_sources_agree_with_the_models_they_wrap(service: RecommendService) -> None:
    src = service.state.sources
    history = service.state.bundle.history(shop.user_with_history())
    # the fold-in solved in the service equals implicit's own (model.score)
    np.testing.assert_allclose(
        src.als_scores(history), src.als.score([history])[0], rtol=1e-3, atol=1e-4
    )
    # the sequential source (one forward pass, then exact search) ranks as the model does
    ids, _ = src.sasrec.recommend([history], k=15)
    assert src.sequential(history, 15).items.tolist() == ids[0].tolist()
    hits = src.sequential(history, 15)
    assert set(hits.evidence.tolist()) <= set(history.tolist())


def test_home_for_a_user_with_history_is_personal_and_explained(service: RecommendService) -> None:
    user = shop.user_with_history()
    history = set(service.state.bundle.history(user).tolist())
    rec = service.home(user, n=10)
    assert rec.strategy == "home:personal"
    assert rec.model_version == service.model_version
    assert len(rec.items) == 10 and len(set(rec.item_ids)) == 10
    idx = service.state.table.ids.to_index(rec.item_ids)
    assert not history & set(idx.tolist())  # what the user already has is not offered again
    scores = [it["score"] for it in rec.items]
    assert scores[0] > 0
    names = service.state.table.ids.external_ids
    for it in rec.items:
        assert it["reasons"], it
        for r in it["reasons"]:
            if r["kind"] == "because_you_viewed":  # the evidence is an item of the history
                assert service.state.table.ids.index_of(r["evidence"]["item_id"]) in history
                assert r["text"] == f"Because you viewed {r['evidence']['title']}"
    assert any(r["kind"] == "because_you_viewed" for it in rec.items for r in it["reasons"])
    assert all(n in names for n in rec.item_ids)


def test_a_cold_user_gets_trending_and_a_non_consenting_user_non_personal_lists(
    service: RecommendService,
) -> None:
    trending = service.trending(n=8)
    cold = service.home("nobody-knows-me", n=8)
    assert cold.strategy == "home:trending"
    assert cold.item_ids == trending.item_ids
    user = shop.user_with_history()
    service.store.users.upsert(User(user_id=user, consent=Consent(personalization=False)))
    service.on_user(user)
    rec = service.home(user, n=8)
    assert rec.strategy == "home:non_personal"
    assert rec.item_ids == trending.item_ids
    kinds = {r["kind"] for it in rec.items for r in it["reasons"]}
    assert kinds <= {"trending", "popular"}
    assert service.new_arrivals(user, n=5).strategy == "new_arrivals:non_personal"


def test_similar_and_complementary_exclude_the_item_and_cite_it(service: RecommendService) -> None:
    covisit = service.state.sources.covisit
    table = service.state.table
    anchor = next(
        i for i in range(len(table)) if len(covisit.complementary(i, 5)[0][covisit.complementary(
            i, 5)[0] >= 0]) >= 3 and table.in_stock()[i]
    )  # fmt: skip
    item_id = table.ids.external_ids[anchor]
    sim = service.similar(item_id, n=6)
    assert sim.strategy == "similar:item"
    assert item_id not in sim.item_ids and len(sim.items) == 6
    first = sim.items[0]["reasons"][0]
    assert first["kind"] in {"similar", "viewed_together"}
    assert first["evidence"]["item_id"] == item_id
    comp = service.complementary(item_id, n=6)
    assert comp.strategy == "complementary:bought_together"
    assert item_id not in comp.item_ids
    bought = [it for it in comp.items if it["reasons"][0]["kind"] == "bought_together"]
    assert bought and all(it["reasons"][0]["evidence"]["item_id"] == item_id for it in bought)
    # the best bought-together partner in stock comes first
    ids, _ = covisit.complementary(anchor, 20)
    in_stock = [int(i) for i in ids if i >= 0 and table.in_stock()[i]]
    assert comp.items[0]["item_id"] == table.ids.external_ids[in_stock[0]]
    with pytest.raises(NotFound, match="not in the catalogue"):
        service.similar("no-such-item")


def test_cart_completes_the_cart_and_never_offers_its_items(service: RecommendService) -> None:
    table = service.state.table
    covisit = service.state.sources.covisit
    cart = [
        table.ids.external_ids[i]
        for i in range(len(table))
        if (covisit.complementary(i, 3)[0] >= 0).sum() >= 2
    ][:2]
    rec = service.cart(cart, n=10)
    assert rec.strategy == "cart:bought_together"
    assert not set(cart) & set(rec.item_ids)
    cited = {
        r["evidence"]["item_id"]
        for it in rec.items
        for r in it["reasons"]
        if r["kind"] == "bought_together"
    }
    assert cited and cited <= set(cart)
    with pytest.raises(NotFound):
        service.cart([cart[0], "ghost"])
    with pytest.raises(ValidationFailed):
        service.cart([])


def test_new_arrivals_are_new_and_favour_the_brands_a_user_likes(
    service: RecommendService,
) -> None:
    st = service.state
    pool = set(st.sources.new_pool.tolist())
    assert pool and len(pool) < len(st.table)
    user = "brand-fan"
    brand_items = [i for i in pool if st.table.brand[i] >= 0]
    brand = int(st.table.brand[brand_items[0]])
    same_brand = [i for i in range(len(st.table)) if st.table.brand[i] == brand and i not in pool]
    _record(service, [_view(user, st.table.ids.external_ids[i], k) for k, i in
                      enumerate(same_brand[:3])])  # fmt: skip
    rec = service.new_arrivals(user, n=5)
    assert rec.strategy == "new_arrivals:personal"
    assert set(st.table.ids.to_index(rec.item_ids).tolist()) <= pool
    first = rec.items[0]
    assert first["brand"] == st.table.brand_names[brand]
    assert first["reasons"][0] == {
        "kind": "new_from_brand",
        "text": f"New from {first['brand']}, a brand you like",
        "evidence": first["reasons"][0]["evidence"],
    }
    assert service.new_arrivals(None, n=5).strategy == "new_arrivals:newest"


def test_trending_per_category_and_filters(service: RecommendService) -> None:
    st = service.state
    leaf = st.table.leaf_name(0)
    rec = service.trending(category=leaf, n=4)
    assert rec.items and all(it["category"] == leaf for it in rec.items)
    assert all(r["text"] == f"Trending in {leaf}" for it in rec.items for r in it["reasons"][:1])
    cheap = service.trending(n=10, filters=Filters(max_price=20.0))
    assert all(it["price"] is not None and it["price"] <= 20.0 for it in cheap.items)
    sold_out = {st.table.ids.external_ids[i] for i in np.flatnonzero(st.table.stock == 0)}
    assert sold_out, "the demo shop has sold-out items"
    assert not sold_out & set(service.trending(n=100).item_ids)
    assert sold_out & set(service.trending(n=100, filters=Filters(in_stock=False)).item_ids)
    brand = st.table.brand_names[int(st.table.brand[0])]
    assert {it["brand"] for it in service.trending(n=5, filters=Filters(brand=brand)).items} == {
        brand
    }


def test_paging_gives_consecutive_disjoint_pages(service: RecommendService) -> None:
    user = shop.user_with_history()
    whole = service.home(user, n=12).item_ids
    first, second = service.home(user, n=6).item_ids, service.home(user, n=6, offset=6).item_ids
    assert first == whole[:6]
    assert not set(first) & set(second)
    with pytest.raises(ValidationFailed, match="n: must be between 1 and 100"):
        service.home(user, n=101)


def test_search_finds_the_words_and_is_personalised(service: RecommendService) -> None:
    rec = service.search("board game", n=5)
    assert rec.strategy == "search:hybrid"
    for it in rec.items:
        assert "board" in f"{it['title']} {it['category']}".lower()
        assert it["reasons"][0]["kind"] == "matches_query"
    user = shop.user_with_history()
    personal = service.search("board game", user_id=user, n=5)
    assert personal.strategy == "search:hybrid+personal"
    brand = rec.items[0]["brand"]
    only = service.search("board game", n=5, filters=Filters(brand=brand))
    assert only.items and {it["brand"] for it in only.items} == {brand}
    assert service.search("zzqx unknown words", n=5).items == [] or service.encoder is not None
    service.encoder = None
    assert service.search("board game", n=5).strategy == "search:lexical"


def test_a_bundle_without_models_still_answers_with_session_and_trending(
    tmp_path: Path,
) -> None:
    from shopflow.store.bundles import BundleStore

    root = tmp_path / "bundles"
    shop.write(root, models=["trending"], vectors=False)
    store = shop.new_store(tmp_path)
    svc = RecommendService(store, MemoryState(), _settings(tmp_path), bundles=BundleStore(root))
    svc.start()
    table = svc.state.table
    clicked = table.ids.external_ids[7]
    _record(svc, [_view("newcomer", clicked, 0)])
    rec = svc.home("newcomer", n=5)
    assert rec.strategy == "home:session"
    leaf = table.leaf_name(7)
    assert [it["category"] for it in rec.items[:3]] == [leaf] * 3
    assert rec.items[0]["reasons"][0]["evidence"]["item_id"] == clicked
    assert svc.similar(clicked, n=3).strategy == "similar:category"
    assert len(svc.complementary(clicked, n=3).items) == 3
    svc.close()
    store.close()


def test_without_any_bundle_the_catalogue_answers(tmp_path: Path) -> None:
    store = shop.new_store(tmp_path)
    svc = RecommendService(store, MemoryState(), _settings(tmp_path))
    svc.start()
    assert svc.model_version is None and len(svc.state.table) == len(shop.fitted().shop.items)
    assert len(svc.home("anyone", n=5).items) == 5
    item = shop.fitted().shop.items[3].item_id
    _record(svc, [_view("anyone", item, 0)])
    assert svc.home("anyone", n=5).strategy == "home:session"
    svc.close()
    store.close()


def test_a_catalogue_without_any_text_answers_an_empty_search(tmp_path: Path) -> None:
    store = Store.from_url(f"sqlite:///{tmp_path / 'bare.db'}")
    store.catalogue.upsert([Item(item_id=f"sku{i}") for i in range(4)])  # ids only (like S3-Rec)
    svc = RecommendService(store, MemoryState(), _settings(tmp_path))
    svc.start()
    assert svc.search("anything", n=5).items == []
    assert len(svc.home("someone", n=3).items) == 3
    svc.close()
    store.close()


def test_impressions_are_logged_without_personal_data_and_attributed(
    service: RecommendService,
) -> None:
    user = shop.user_with_history()
    rec = service.home(user, n=3)
    path = service.impressions.path
    assert path is not None
    lines = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    line = next(x for x in lines if x["recommendation_id"] == rec.recommendation_id)
    assert line["items"] == rec.item_ids and line["strategy"] == "home:personal"
    assert user not in path.read_text()
    click = _view(user, rec.item_ids[0], 99, kind="click").model_copy(
        update={"recommendation_id": rec.recommendation_id}
    )
    _record(service, [click])
    stats = service.impressions.stats()["home:personal"]
    assert stats["click"] == 1 and stats["click_on_shown"] == 1 and stats["impressions"] >= 1


def test_stock_changes_take_effect_at_once(service: RecommendService) -> None:
    top = service.trending(n=1).items[0]["item_id"]
    item = service.store.catalogue.get(top)
    assert item is not None
    service.on_items([item.model_copy(update={"stock": 0})])
    assert top not in service.trending(n=20).item_ids
    service.on_items([item.model_copy(update={"stock": 5})])
    assert service.trending(n=1).item_ids == [top]


def test_a_returning_shoppers_feed_follows_stock_price_and_edits_at_once(
    service: RecommendService,
) -> None:
    """The second feed of an unchanged history comes from kept candidates, blend and page; what
    is live (stock, price, an edited title) must still show in it at once."""
    user = shop.user_with_history()
    first = service.home(user, n=10)
    assert service.home(user, n=10).items == first.items
    top = service.store.catalogue.get(first.item_ids[0])
    second = service.store.catalogue.get(first.item_ids[1])
    assert top is not None and second is not None
    service.on_items([second.model_copy(update={"price": 123.25})])
    again = service.home(user, n=10)
    assert again.items[1]["item_id"] == second.item_id and again.items[1]["price"] == 123.25
    service.on_items([top.model_copy(update={"stock": 0})])
    assert top.item_id not in service.home(user, n=10).item_ids
    service.on_items([second.model_copy(update={"title": "Renamed mug", "price": 123.25})])
    renamed = {it["item_id"]: it for it in service.home(user, n=10).items}
    assert renamed[second.item_id]["title"] == "Renamed mug"


def _settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")
