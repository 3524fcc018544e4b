"""Contract tests of the event log, run against SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from shopflow.ingest.schema import Event
from shopflow.store.store import Store

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)


def ev(
    i: int,
    user: str = "u1",
    item: str | None = None,
    minutes: float | None = None,
    type_: str = "view",
    **kw: object,
) -> Event:
    return Event(
        event_id=f"e{i}",
        type=type_,
        user_id=user,
        item_id=item if item is not None else f"i{i}",
        timestamp=T0 + timedelta(minutes=i if minutes is None else minutes),
        **kw,
    )


def test_append_counts_and_idempotence(store: Store) -> None:
    first = store.events.append([ev(1), ev(2), ev(3)])
    assert (first.accepted, first.duplicates) == (3, 0)
    assert first.accepted_ids == ["e1", "e2", "e3"]
    again = store.events.append([ev(2), ev(4), ev(4)])  # e2 stored, e4 twice in one batch
    assert (again.accepted, again.duplicates) == (1, 2)
    assert again.accepted_ids == ["e4"]
    assert sorted(again.duplicate_ids) == ["e2", "e4"]
    assert store.events.count() == 4
    assert store.events.contains(["e1", "e4", "e9"]) == {"e1", "e4"}


def test_empty_append_is_a_no_op(store: Store) -> None:
    assert store.events.append([]).accepted == 0
    assert store.events.count() == 0
    assert store.events.to_polars().height == 0


def test_export_is_in_time_order_and_keeps_every_field(store: Store) -> None:
    # Appended out of time order; the export must sort by time, ties in arrival order.
    store.events.append(
        [
            ev(3, minutes=30),
            ev(
                1,
                minutes=10,
                type_="purchase",
                value=2.0,
                session_id="s1",
                context={"device": "mobile", "temp": 21.5},
                recommendation_id="r9",
            ),
            ev(2, minutes=10),
            Event(
                event_id="q1",
                type="search",
                user_id="u2",
                query="red shoes",
                timestamp=T0,
                item_ids=["i5", "i6"],
            ),
        ]
    )
    frame = store.events.to_polars()
    assert frame["event_id"].to_list() == ["q1", "e1", "e2", "e3"]
    row = frame.filter(pl.col("event_id") == "e1").row(0, named=True)
    assert row["type"] == "purchase" and row["value"] == 2.0 and row["session_id"] == "s1"
    assert row["recommendation_id"] == "r9"
    assert row["timestamp"] == T0 + timedelta(minutes=10)
    assert '"device":"mobile"' in row["context"]
    q = frame.filter(pl.col("event_id") == "q1").row(0, named=True)
    assert q["query"] == "red shoes" and q["item_ids"] == ["i5", "i6"] and q["item_id"] is None
    assert frame.schema["timestamp"] == pl.Datetime("us", "UTC")


def test_export_filters_by_time_range_and_type(store: Store) -> None:
    store.events.append([ev(i, type_="view" if i % 2 else "purchase") for i in range(10)])
    window = store.events.to_polars(start=T0 + timedelta(minutes=3), end=T0 + timedelta(minutes=7))
    assert window["event_id"].to_list() == ["e3", "e4", "e5", "e6"]  # end is exclusive
    bought = store.events.to_polars(types=["purchase"])
    assert bought["event_id"].to_list() == ["e0", "e2", "e4", "e6", "e8"]
    batches = list(store.events.iter_batches(batch_size=4))
    assert [b.height for b in batches] == [4, 4, 2]
    assert isinstance(store.events.to_arrow().num_rows, int)


def test_user_events_and_erasure(store: Store) -> None:
    store.events.append([ev(1, user="a"), ev(2, user="b"), ev(3, user="a"), ev(4, user="a")])
    assert [e.event_id for e in store.events.user_events("a")] == ["e1", "e3", "e4"]
    assert [e.event_id for e in store.events.user_events("a", limit=2)] == ["e3", "e4"]
    assert store.events.user_events("a")[0].timestamp == T0 + timedelta(minutes=1)
    assert store.events.delete_user("a") == 3
    assert store.events.count() == 1
    assert store.events.user_events("a") == []
    # After erasure the same event ids can come back (they are not remembered).
    assert store.events.append([ev(1, user="a")]).accepted == 1


def test_timestamps_round_trip_to_the_microsecond(store: Store) -> None:
    ts = datetime(2021, 7, 4, 23, 59, 59, 123456, tzinfo=UTC)
    store.events.append([Event(event_id="x", type="view", user_id="u", item_id="i", timestamp=ts)])
    assert store.events.user_events("u")[0].timestamp == ts
    assert store.events.to_polars()["timestamp"][0] == ts


@pytest.mark.parametrize("n", [2_500])
def test_large_batch_is_one_transaction(store: Store, n: int) -> None:
    result = store.events.append([ev(i, user=f"u{i % 7}") for i in range(n)])
    assert result.accepted == n
    assert store.events.count() == n
