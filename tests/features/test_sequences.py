from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shopflow.features.sequences import from_events
from shopflow.ingest.schema import Event
from shopflow.store.idmap import IdMap
from shopflow.store.store import Store

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def test_from_events_groups_by_user_in_time_order(sqlite_store: Store) -> None:
    def ev(i: int, user: str, item: str, minute: int, type_: str = "view") -> Event:
        return Event(
            event_id=f"e{i}",
            type=type_,
            user_id=user,
            item_id=item,
            timestamp=T0 + timedelta(minutes=minute),
        )

    sqlite_store.events.append(
        [
            ev(1, "u2", "x", 5),
            ev(2, "u1", "y", 3),
            ev(3, "u1", "x", 1),
            ev(4, "u1", "z", 9, "remove_from_cart"),  # not an interest signal: dropped
            Event(event_id="s", type="search", user_id="u1", query="q", timestamp=T0),
            ev(5, "u2", "w", 7, "purchase"),
        ]
    )
    data = from_events(sqlite_store.events.to_polars(), items=IdMap(["w"]))
    assert data.users.external_ids == ("u1", "u2")
    assert data.items.external_ids[0] == "w"  # the given map keeps its places
    seqs = {
        data.users.external_ids[u]: data.items.to_external(s) for u, s in enumerate(data.sequences)
    }
    assert seqs == {"u1": ["x", "y"], "u2": ["x", "w"]}
    assert data.event_types is not None and list(data.event_types[1]) == ["view", "purchase"]
    assert data.timestamps is not None
    assert data.timestamps[0][1] - data.timestamps[0][0] == 120.0
    assert data.n_interactions == 4
