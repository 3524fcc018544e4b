"""The data model rejects what a shop might get wrong, with a message naming the field and
problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from shopflow.ingest.schema import (
    Event,
    Item,
    User,
    describe,
    parse_events,
    parse_items,
    validation_context,
)
from shopflow.types import EventType

GOOD = {
    "event_id": "e1",
    "type": "view",
    "user_id": "u1",
    "item_id": "i1",
    "timestamp": "2024-05-01T10:00:00Z",
}


def reason(record: dict, **ctx: object) -> str:
    parsed = parse_events([record], validation_context(**ctx))  # type: ignore[arg-type]
    assert len(parsed.rejected) == 1, parsed
    return parsed.rejected[0].reason


def test_a_good_event_parses_with_utc_time() -> None:
    e = Event.model_validate(GOOD)
    assert e.type is EventType.VIEW
    assert e.timestamp == datetime(2024, 5, 1, 10, tzinfo=UTC)
    # unix seconds, naive ISO (taken as UTC) and offsets all normalise to UTC
    assert Event.model_validate({**GOOD, "timestamp": 1714557600}).timestamp == e.timestamp
    assert (
        Event.model_validate({**GOOD, "timestamp": "2024-05-01T10:00:00"}).timestamp == e.timestamp
    )
    assert (
        Event.model_validate({**GOOD, "timestamp": "2024-05-01T12:00:00+02:00"}).timestamp
        == e.timestamp
    )
    assert Event.model_validate({**GOOD, "type": " VIEW "}).type is EventType.VIEW
    assert Event.model_validate({**GOOD, "user_id": 42}).user_id == "42"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"event_id": None}, "event_id: is required"),
        ({"event_id": ""}, "event_id: must not be empty"),
        ({"user_id": "   "}, "user_id: must not be empty"),
        ({"user_id": 1.5}, "user_id: must be a string id, not float"),
        ({"user_id": True}, "user_id: must be a string id, not a boolean"),
        ({"user_id": "x" * 300}, "user_id: must be at most 256 characters"),
        ({"type": "teleport"}, "type: unknown event type 'teleport'; expected one of: view,"),
        ({"type": 3}, "type: "),
        ({"timestamp": "yesterday"}, "timestamp: 'yesterday' is not an ISO 8601 time"),
        ({"timestamp": 1714557600000}, "too large for unix seconds (milliseconds?"),
        (
            {"timestamp": "2999-01-01T00:00:00Z"},
            "timestamp: 2999-01-01T00:00:00+00:00 is in the future",
        ),
        ({"timestamp": "1970-01-02T00:00:00Z"}, "is before 1990-01-01"),
        ({"item_id": None}, "item_id: is required for a view event"),
        ({"value": "lots"}, "value: "),
        ({"colour": "red"}, "colour: is not a known field"),
        ({"context": {"nested": {"a": 1}}}, "context.nested"),
    ],
)
def test_bad_events_are_rejected_with_the_field_and_problem(change: dict, expected: str) -> None:
    record = {**GOOD, **change}
    if change.get("event_id") is None and "event_id" in change:
        del record["event_id"]
    if "item_id" in change and change["item_id"] is None:
        del record["item_id"]
    assert expected in reason(record)


def test_type_specific_requirements() -> None:
    assert "query: is required for a search event" in reason(
        {**GOOD, "type": "search", "item_id": None}
    )
    assert "item_ids: is required for an impression event" in reason({**GOOD, "type": "impression"})
    assert "rating event needs a value between 0 and 5" in reason(
        {**GOOD, "type": "rating", "value": 7}
    )
    assert "quantity must not be negative" in reason({**GOOD, "type": "purchase", "value": -1})
    ok = parse_events(
        [
            {**GOOD, "type": "search", "item_id": None, "query": "red shoes"},
            {**GOOD, "event_id": "e2", "type": "rating", "value": 4},
        ]
    )
    assert len(ok.valid) == 2 and not ok.rejected


def test_future_skew_is_configurable() -> None:
    soon = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    assert parse_events([{**GOOD, "timestamp": soon}]).valid  # default tolerance: 1 day
    assert "in the future" in reason({**GOOD, "timestamp": soon}, max_future_skew_seconds=60)


def test_parse_keeps_good_records_beside_bad_ones_with_indices() -> None:
    records = [
        GOOD,
        "not an object",
        {**GOOD, "event_id": "e2", "type": "nope"},
        {**GOOD, "event_id": "e3"},
    ]
    parsed = parse_events(records)
    assert [e.event_id for e in parsed.valid] == ["e1", "e3"]
    assert parsed.valid_index == [0, 3]
    assert [(r.index, r.reason.split(":")[0]) for r in parsed.rejected] == [
        (1, "must be a JSON object, not str"),
        (2, "type"),
    ]


def test_items_validate_prices_stock_currency_and_paths() -> None:
    it = Item.model_validate(
        {"item_id": "s1", "price": "12.5", "categories": "Home > Kitchen > Pans"}
    )
    assert it.price == 12.5 and it.categories == ["Home", "Kitchen", "Pans"]
    assert it.in_stock
    parsed = parse_items(
        [
            {"item_id": "a", "price": -1},
            {"item_id": "b", "price": "cheap"},
            {"item_id": "c", "stock": -3},
            {"item_id": "d", "currency": "euro"},
            {"title": "no id"},
            {"item_id": "e", "price": float("nan")},
        ]
    )
    reasons = [r.reason for r in parsed.rejected]
    assert "price: Input should be greater than or equal to 0" in reasons[0]
    assert reasons[1].startswith("price: ")
    assert reasons[2].startswith("stock: ")
    assert reasons[3].startswith("currency: ")
    assert reasons[4] == "item_id: is required"
    assert reasons[5].startswith("price: ")
    assert not parsed.valid


def test_user_consent_must_be_booleans() -> None:
    with pytest.raises(ValidationError) as info:
        User.model_validate({"user_id": "u", "consent": {"personalization": "maybe"}})
    assert describe(info.value).startswith("consent.personalization: ")
    assert User.model_validate({"user_id": "u"}).consent.personalization is True
