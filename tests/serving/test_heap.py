"""A swapped-in state is kept out of the garbage collector's full passes, and never leaks."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopflow.config import load_settings
from shopflow.serving.recommend import RecommendService
from shopflow.serving.state import RecommendConfig
from shopflow.store.bundles import BundleStore
from shopflow.store.online import MemoryState
from tests.serving import recommend_shop as shop


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RecommendService]:
    root = tmp_path / "bundles"
    shop.write(root)
    store = shop.new_store(tmp_path)
    svc = RecommendService(
        store, MemoryState(), load_settings(data_dir=tmp_path / "data"), bundles=BundleStore(root)
    )
    svc.start()
    yield svc
    svc.close()
    store.close()
    gc.unfreeze()


def _tracked(obj: object) -> bool:
    """Whether the collector's generations (not the frozen, permanent one) hold ``obj``."""
    return any(o is obj for o in gc.get_objects())


def test_the_loaded_state_is_frozen_out_of_full_collections(service: RecommendService) -> None:
    ids = service.state.table.ids.external_ids  # a big, long-lived list of the bundle
    assert gc.get_freeze_count() > 0
    assert not _tracked(ids)
    fresh: list[str] = ["allocated by a request"]
    assert _tracked(fresh)  # what requests allocate is collected as usual


def test_a_reload_frees_the_replaced_state(service: RecommendService) -> None:
    old = weakref.ref(service.state)
    service.reload()
    assert old() is None  # unfrozen, collected: freezing never pins a replaced bundle
    assert not _tracked(service.state.table.ids.external_ids)


def test_freezing_can_be_turned_off(tmp_path: Path) -> None:
    gc.unfreeze()
    root = tmp_path / "bundles"
    shop.write(root)
    store = shop.new_store(tmp_path)
    svc = RecommendService(
        store,
        MemoryState(),
        load_settings(data_dir=tmp_path / "data"),
        bundles=BundleStore(root),
        config=RecommendConfig(freeze_heap=False),
    )
    try:
        svc.start()
        assert gc.get_freeze_count() == 0
    finally:
        svc.close()
        store.close()


def test_long_lived_growth_is_frozen_once_it_is_large() -> None:
    from shopflow.serving.reload import freeze_growth

    gc.collect()
    gc.freeze()
    try:
        assert freeze_growth(threshold=50_000) == 0  # nothing gathered since the freeze
        kept = [[i] for i in range(60_000)]  # an online state that grew (lists: always tracked)
        gc.collect()  # now in the oldest generation
        assert _tracked(kept[0])
        assert freeze_growth(threshold=50_000) >= 60_000
        assert not _tracked(kept[0]) and not _tracked(kept)
        assert freeze_growth(threshold=50_000) == 0
    finally:
        gc.unfreeze()


class _Node:
    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle() -> weakref.ref[_Node]:
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    return weakref.ref(a)


def test_the_pacer_collects_young_cycles_freezes_survivors_and_settles_frozen_cycles() -> None:
    import asyncio

    from shopflow.serving.reload import pace_collector

    async def run(seconds: float, **kw: float) -> None:
        task = asyncio.create_task(pace_collector(0.01, 3, **kw))
        await asyncio.sleep(seconds)
        task.cancel()

    gc.collect()
    gc.freeze()
    gc.disable()  # only the pacer collects
    try:
        young = _cycle()
        kept = [["a survivor"]]
        asyncio.run(run(0.2, settle_seconds=3600))
        assert young() is None  # garbage cycles younger than a freeze are collected
        assert not _tracked(kept[0])  # what survived is frozen: full passes no longer walk it
        holder = [_Node()]
        holder[0].other = _Node()
        holder[0].other.other = holder[0]  # a cycle, alive while ``holder`` holds it
        frozen = weakref.ref(holder[0])
        asyncio.run(run(0.1, settle_seconds=3600))
        assert not _tracked(holder[0])  # frozen while alive ...
        holder.clear()  # ... then garbage: the frozen generation is never walked
        asyncio.run(run(0.1, settle_seconds=3600))
        assert frozen() is not None
        asyncio.run(run(0.1, settle_seconds=0.0))
        assert frozen() is None  # the settle collects the whole heap
    finally:
        gc.enable()
        gc.unfreeze()
