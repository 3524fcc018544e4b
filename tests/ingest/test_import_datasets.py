"""The importers on the real benchmark files: the published counts exactly (skipped if absent)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shopflow.ingest.importers import run_import
from shopflow.store.store import Store
from tests.conftest import dataset_path

pytestmark = [pytest.mark.dataset, pytest.mark.slow]


@pytest.fixture
def fast_store(tmp_path: Path) -> Iterator[Store]:
    """SQLite with synchronous=NORMAL: crash-safe, not power-loss-safe; enough for counting."""
    store = Store.from_url(f"sqlite:///{tmp_path / 'shopflow.db'}", sqlite_synchronous="NORMAL")
    yield store
    store.close()


def test_beauty_gives_the_benchmark_counts_and_reimports_nothing(fast_store: Store) -> None:
    path = dataset_path("amazon_beauty_s3rec") / "Beauty.txt"
    report = run_import("s3rec", path, fast_store, batch_size=20_000)
    assert (report.events_accepted, report.events_duplicate, report.events_rejected) == (
        198_502,
        0,
        0,
    )
    assert (report.items_inserted, report.items_rejected) == (12_101, 0)
    frame = fast_store.events.to_polars()
    assert frame["user_id"].n_unique() == 22_363
    assert frame["item_id"].n_unique() == 12_101
    assert fast_store.catalogue.count() == 12_101
    # first line of Beauty.txt is "1 1 2 3 4 5"; item 1 is ASIN B004756YJA (P5 datamaps)
    assert [e.item_id for e in fast_store.events.user_events("1")] == ["1", "2", "3", "4", "5"]
    assert fast_store.catalogue.get("1").attributes["asin"] == "B004756YJA"
    again = run_import("s3rec", path, fast_store, batch_size=20_000)
    assert (again.events_accepted, again.events_duplicate) == (0, 198_502)
    assert fast_store.events.count() == 198_502


def test_taobao_head_gives_every_event_with_the_four_types(fast_store: Store) -> None:
    path = dataset_path("taobao_userbehavior_head") / "UserBehavior_head.csv"
    report = run_import("taobao", path, fast_store, batch_size=20_000)
    assert (report.events_accepted, report.events_rejected) == (84_287, 0)
    frame = fast_store.events.to_polars()
    counts = dict(frame.group_by("type").len().iter_rows())
    assert counts == {"view": 75_693, "add_to_cart": 4_494, "favorite": 2_351, "purchase": 1_749}
    assert frame["user_id"].n_unique() == 814
    assert fast_store.catalogue.count() == frame["item_id"].n_unique() == 55_233
    assert frame["timestamp"].min().isoformat() == "2017-09-11T08:16:39+00:00"  # kept
