"""Contract tests of the catalogue and user records, against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from shopflow.ingest.schema import Consent, Item, User
from shopflow.store.store import Store
from tests.store.test_event_log import ev


def item(i: str, **kw: object) -> Item:
    base = {
        "item_id": i,
        "title": f"Item {i}",
        "price": 10.0,
        "stock": 5,
        "categories": ["Home", "Kitchen"],
        "brand": "Acme",
    }
    base.update(kw)
    return Item.model_validate(base)


def test_upsert_insert_update_unchanged(store: Store) -> None:
    r = store.catalogue.upsert([item("a"), item("b")])
    assert (r.inserted, r.updated, r.unchanged) == (2, 0, 0)
    r = store.catalogue.upsert([item("a"), item("b", title="Better b"), item("c")])
    assert (r.inserted, r.updated, r.unchanged) == (1, 1, 1)
    assert store.catalogue.get("b").title == "Better b"
    assert store.catalogue.count() == 3
    # Within one batch the last version of an id wins.
    store.catalogue.upsert([item("d", price=1.0), item("d", price=2.0)])
    assert store.catalogue.get("d").price == 2.0


def test_every_field_round_trips(store: Store) -> None:
    full = Item(
        item_id="sku-1",
        title="Trail shoe",
        description="Light.",
        brand="Peak",
        categories=["Sport", "Running", "Shoes"],
        price=79.5,
        currency="EUR",
        stock=0,
        created_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        attributes={"colour": "red", "sizes": ["41", "42"], "waterproof": True},
        image_url="https://shop.example/i/1.jpg",
        embedding=[0.25, -1.0, 0.5],
    )
    store.catalogue.upsert([full])
    got = store.catalogue.get("sku-1")
    assert got is not None
    assert got.model_dump() == full.model_dump()
    assert not got.in_stock
    assert store.catalogue.get("nope") is None
    assert set(store.catalogue.get_many(["sku-1", "nope"])) == {"sku-1"}


def test_price_and_stock_history(store: Store) -> None:
    store.catalogue.upsert([item("a", price=10.0, stock=5)])
    store.catalogue.upsert([item("a", price=10.0, stock=5, title="renamed")])  # no price change
    store.catalogue.upsert([item("a", price=8.0, stock=5)])
    assert store.catalogue.set_stock("a", 0)
    assert not store.catalogue.set_stock("missing", 1)
    hist = store.catalogue.history("a")
    assert [(h["price"], h["stock"]) for h in hist] == [(10.0, 5), (8.0, 5), (8.0, 0)]
    assert hist[0]["changed_at"] <= hist[-1]["changed_at"]
    assert store.catalogue.delete("a")
    assert store.catalogue.history("a") == []
    assert not store.catalogue.delete("a")


def test_catalogue_frame(store: Store) -> None:
    store.catalogue.upsert([item("b", price=2.0), item("a", price=None, stock=None)])
    frame = store.catalogue.to_polars()
    assert frame["item_id"].to_list() == ["a", "b"]
    assert frame["price"].to_list() == [None, 2.0]
    assert frame["categories"].to_list() == [["Home", "Kitchen"], ["Home", "Kitchen"]]


def test_users_consent_export_and_forget(store: Store) -> None:
    assert store.users.upsert(User(user_id="u1", attributes={"tier": "gold"}))
    assert not store.users.upsert(
        User(
            user_id="u1",
            attributes={"tier": "silver"},
            consent=Consent(personalization=False, tracking=True),
        )
    )
    got = store.users.get("u1")
    assert got is not None and got.attributes == {"tier": "silver"}
    assert got.consent.personalization is False
    store.events.append([ev(1, user="u1"), ev(2, user="u2")])
    exported = store.export_user("u1")
    assert exported["user"]["user_id"] == "u1"
    assert [e["event_id"] for e in exported["events"]] == ["e1"]
    assert store.forget_user("u1") == {"events": 1, "user": True}
    assert store.export_user("u1") == {"user": None, "events": []}
    assert store.events.count() == 1  # u2 untouched
