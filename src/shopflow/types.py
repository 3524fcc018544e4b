"""Shared vocabulary: event types, column names and small aliases used across layers."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeAlias

ItemId: TypeAlias = str
UserId: TypeAlias = str
EventId: TypeAlias = str


class EventType(StrEnum):
    """What a shopper did. Weights per type live in the settings (``EventWeights``)."""

    VIEW = "view"
    CLICK = "click"
    ADD_TO_CART = "add_to_cart"
    REMOVE_FROM_CART = "remove_from_cart"
    PURCHASE = "purchase"
    SEARCH = "search"
    FAVORITE = "favorite"
    RATING = "rating"
    REVIEW = "review"
    IMPRESSION = "impression"


# Event types that must name one item.
ITEM_EVENT_TYPES: frozenset[EventType] = frozenset(
    {
        EventType.VIEW,
        EventType.CLICK,
        EventType.ADD_TO_CART,
        EventType.REMOVE_FROM_CART,
        EventType.PURCHASE,
        EventType.FAVORITE,
        EventType.RATING,
        EventType.REVIEW,
    }
)
# Event types that express interest in an item (they enter a user's behaviour sequence).
POSITIVE_EVENT_TYPES: frozenset[EventType] = ITEM_EVENT_TYPES - {EventType.REMOVE_FROM_CART}

# Column names of the columnar (Arrow / Polars) exports. One place, so that training and serving
# agree.
COL_SEQ = "seq"
COL_EVENT_ID = "event_id"
COL_TYPE = "type"
COL_USER = "user_id"
COL_SESSION = "session_id"
COL_ITEM = "item_id"
COL_ITEMS = "item_ids"
COL_QUERY = "query"
COL_VALUE = "value"
COL_TEXT = "text"
COL_TS = "timestamp"
COL_CONTEXT = "context"
COL_RECOMMENDATION = "recommendation_id"
