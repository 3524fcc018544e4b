"""The candidate cache: the same history gets the same candidates without computing them again;
a changed history, a new bundle or an expired co-visitation entry computes afresh."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from shopflow.retrieval.cache import CandidateCache
from shopflow.retrieval.merge import SourceHits
from shopflow.serving.state import RecommendConfig, state_from_bundle
from tests.serving import recommend_shop as shop


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Any:  # a LoadedBundle
    from shopflow.models.bundle import load_bundle

    return load_bundle(shop.write(tmp_path_factory.mktemp("b"), models=["covisit", "als"]))


def test_a_repeated_history_is_answered_from_the_cache_with_equal_candidates(bundle: Any) -> None:
    cached = state_from_bundle(bundle, RecommendConfig()).sources
    fresh = state_from_bundle(bundle, RecommendConfig(candidate_cache=0)).sources
    history = shop.fitted().histories[0]
    for source in ("covisit_history", "als_history"):
        first = getattr(cached, source)(history, 30)
        again = getattr(cached, source)(history, 30)
        assert again is first  # from the cache
        ref = getattr(fresh, source)(history, 30)
        assert ref is not getattr(fresh, source)(history, 30)  # size 0: nothing kept
        assert first.items.tolist() == ref.items.tolist()
        assert np.allclose(first.scores, ref.scores)
        with pytest.raises(ValueError):
            first.items[0] = 0  # shared between requests: read-only
    assert cached.cache.hits == 2 and cached.cache.misses == 2


def test_a_new_event_or_another_page_size_is_a_new_key(bundle: Any) -> None:
    sources = state_from_bundle(bundle, RecommendConfig()).sources
    history = shop.fitted().histories[1]
    a = sources.als_history(history, 30)
    longer = np.append(history, shop.fitted().histories[2][:1])
    assert sources.als_history(longer, 30) is not a
    assert sources.als_history(history, 40) is not a
    assert sources.als_history(history, 30) is a


def test_covisitation_entries_expire_and_the_least_recent_leave_first() -> None:
    cache = CandidateCache(size=2, ttl_seconds=0.05)
    hits = SourceHits("x", np.array([1]), np.array([1.0]))
    ck, ak = cache.key("covisit", 5, np.array([1, 2])), cache.key("als", 5, np.array([1, 2]))
    cache.put(ck, hits)
    cache.put(ak, hits)
    time.sleep(0.1)
    assert cache.get(ck) is None  # co-visitation learns from others: expired
    assert cache.get(ak) is hits  # a model's answer does not go stale
    cache.put(cache.key("als", 5, np.array([3])), hits)
    cache.put(cache.key("als", 5, np.array([4])), hits)
    assert cache.get(ak) is None and len(cache) == 2  # least recently used left


def test_another_shoppers_event_on_a_history_row_recomputes_at_once(bundle: Any) -> None:
    """Co-visitation entries are kept while their rows are unchanged, and only so long."""
    sources = state_from_bundle(bundle, RecommendConfig()).sources
    fitted = shop.fitted()
    history, other = fitted.histories[0], fitted.histories[3]
    first = sources.covisit_history(history, 30)
    untouched = np.setdiff1d(other, history)
    untouched = untouched[~np.isin(untouched, history)]
    # an event that pairs items outside this history: the entry stays valid
    sources.learn(untouched[:2], np.array(["view", "view"]), int(untouched[2]), "view")
    assert sources.covisit_history(history, 30) is first
    # an event whose new item pairs with this history's last item: computed afresh, and it
    # now scores what the shared pairs say
    new_item = int(untouched[3])
    for _ in range(5):
        sources.learn(history[-1:], np.array(["view"]), new_item, "view")
    again = sources.covisit_history(history, 30)
    assert again is not first
    fresh = state_from_bundle(bundle, RecommendConfig(candidate_cache=0)).sources
    fresh.covisit = sources.covisit  # the same, updated model without a cache
    assert again.items.tolist() == fresh.covisit_history(history, 30).items.tolist()
    assert new_item in again.items.tolist()


def test_row_versions_grow_with_the_table() -> None:
    from shopflow.retrieval.cache import RowVersions

    v = RowVersions(2)
    stamp = v.stamp()
    v.touch(np.array([10]))
    assert v.unchanged(np.array([0, 1, 50]), stamp)  # rows beyond the table: never touched
    assert not v.unchanged(np.array([10]), stamp)
    assert v.unchanged(np.array([10]), v.stamp())


def test_content_lists_are_kept_per_source_set_and_equal_fresh_ones(bundle: Any) -> None:
    cached = state_from_bundle(bundle, RecommendConfig()).sources
    fresh = state_from_bundle(bundle, RecommendConfig(candidate_cache=0)).sources
    assert cached.text is not None
    history = shop.fitted().histories[0]
    weights = np.linspace(1.0, 2.0, len(history))
    first = cached.content_history(history, 20, weights)
    assert len(first) and cached.content_history(history, 20, weights) is first
    assert cached.content_history(history, 20) is not first  # other weights: another key
    ref = fresh.content_history(history, 20, weights)
    assert ref.items.tolist() == first.items.tolist() and np.allclose(ref.scores, first.scores)
    # a set built on this one (an edited catalogue: new text vectors) keeps none of them
    from shopflow.retrieval.sources import SourceSet

    edited = SourceSet(cached.items, bundle.models, cached.text[::-1].copy(), base=cached)
    assert edited.cache is cached.cache  # the models' lists are taken over ...
    assert edited.content_history(history, 20, weights) is not first  # ... not the text's


def test_session_lists_are_kept_while_the_trending_list_is_the_same(bundle: Any) -> None:
    sources = state_from_bundle(bundle, RecommendConfig()).sources
    fresh = state_from_bundle(bundle, RecommendConfig(candidate_cache=0)).sources
    history = shop.fitted().histories[2]
    names = sources.items.ids.external_ids
    trend = [(names[int(i)], 3.0) for i in np.flatnonzero(sources.items.leaf >= 0)[:5]]
    first = sources.session(history, trend, 20)
    assert len(first) and sources.session(history, trend, 20) is first
    again = list(trend)  # an equal list, but another one: the next second's trending
    assert sources.session(history, again, 20) is not first
    busier = [(trend[-1][0], 50.0), *trend[:-1]]
    moved = sources.session(history, busier, 20)
    ref = fresh.session(history, busier, 20)
    assert moved.items.tolist() == ref.items.tolist() and np.allclose(moved.scores, ref.scores)
    # an answer computed for an older list than the current one is never served for it
    key = sources.session_cache.key("session", 20, history)
    sources.session_cache.put(key, first, sources._session_gen - 1)
    assert sources.session(history, busier, 20) is not first
