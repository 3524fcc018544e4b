"""Request and response bodies of the HTTP API, apart from the storage models in ``ingest.schema``.

Each response model has a ``build`` constructor from what the services return, so that the
routes stay one line per step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shopflow.ingest.schema import Event, Item, Rejected, User
from shopflow.serving.ingest_service import IngestReport, ItemBatchReport
from shopflow.store.online import RecentEvent

EVENT_EXAMPLE: dict[str, Any] = {
    "event_id": "e-1001",
    "type": "view",
    "user_id": "u-42",
    "item_id": "sku-7",
    "session_id": "s-9",
    "timestamp": "2024-05-01T12:00:00Z",
}
ITEM_EXAMPLE: dict[str, Any] = {
    "title": "Green tea, 100 g",
    "brand": "Leafy",
    "categories": ["Food", "Tea"],
    "price": 4.5,
    "currency": "EUR",
    "stock": 12,
}
USER_EXAMPLE: dict[str, Any] = {
    "attributes": {"country": "DE"},
    "consent": {"personalization": True, "tracking": True},
}


class ErrorBody(BaseModel):
    """Every error answer: what went wrong, in words that say what to change."""

    detail: str
    status: int


class RejectedOut(BaseModel):
    index: int = Field(description="Position of the record in the request (0-based).")
    reason: str = Field(description="`field: problem; ...`")

    @classmethod
    def build(cls, r: Rejected) -> RejectedOut:
        return cls(index=r.index, reason=r.reason)


class IngestResponse(BaseModel):
    """Answer to ``POST /v1/events``; sent only after the accepted events are durable."""

    accepted: int
    duplicates: int
    rejected: list[RejectedOut]
    accepted_ids: list[str]
    duplicate_ids: list[str]
    online_updated: bool = Field(
        description="False when the online state could not be updated (the events are stored)."
    )
    detail: str | None = Field(None, description="Set when every event was rejected (422).")

    @classmethod
    def build(cls, r: IngestReport) -> IngestResponse:
        detail = None
        if r.rejected and not r.accepted and not r.duplicates:
            detail = f"all {len(r.rejected)} events were rejected; see `rejected` for the reasons"
        return cls(
            accepted=r.accepted,
            duplicates=r.duplicates,
            rejected=[RejectedOut.build(x) for x in r.rejected],
            accepted_ids=r.accepted_ids,
            duplicate_ids=r.duplicate_ids,
            online_updated=r.online_updated,
            detail=detail,
        )


class ItemOut(BaseModel):
    item_id: str
    title: str
    description: str
    brand: str | None
    categories: list[str]
    price: float | None
    currency: str
    stock: int | None
    in_stock: bool
    created_at: datetime | None
    attributes: dict[str, Any]
    image_url: str | None
    has_embedding: bool

    @classmethod
    def build(cls, item: Item) -> ItemOut:
        return cls(
            item_id=item.item_id,
            title=item.title,
            description=item.description,
            brand=item.brand,
            categories=list(item.categories),
            price=item.price,
            currency=item.currency,
            stock=item.stock,
            in_stock=item.in_stock,
            created_at=item.created_at,
            attributes=dict(item.attributes),
            image_url=item.image_url,
            has_embedding=item.embedding is not None,
        )


class ItemWriteResponse(BaseModel):
    result: str = Field(description="inserted, updated or unchanged")
    item: ItemOut


class ItemBatchResponse(BaseModel):
    inserted: int
    updated: int
    unchanged: int
    rejected: list[RejectedOut]
    detail: str | None = None

    @classmethod
    def build(cls, r: ItemBatchReport) -> ItemBatchResponse:
        detail = None
        if r.rejected and r.received == len(r.rejected):
            detail = f"all {len(r.rejected)} items were rejected; see `rejected` for the reasons"
        return cls(
            inserted=r.inserted,
            updated=r.updated,
            unchanged=r.unchanged,
            rejected=[RejectedOut.build(x) for x in r.rejected],
            detail=detail,
        )


class ItemPage(BaseModel):
    total: int
    offset: int
    limit: int
    items: list[ItemOut]


class PricePoint(BaseModel):
    changed_at: datetime
    price: float | None
    stock: int | None


class ItemHistory(BaseModel):
    item_id: str
    history: list[PricePoint]


class DeletedItem(BaseModel):
    item_id: str
    deleted: bool


class ConsentOut(BaseModel):
    personalization: bool
    tracking: bool


class UserOut(BaseModel):
    user_id: str
    attributes: dict[str, Any]
    consent: ConsentOut
    created_at: datetime | None

    @classmethod
    def build(cls, user: User) -> UserOut:
        return cls(
            user_id=user.user_id,
            attributes=dict(user.attributes),
            consent=ConsentOut(
                personalization=user.consent.personalization, tracking=user.consent.tracking
            ),
            created_at=user.created_at,
        )


class UserWriteResponse(BaseModel):
    created: bool
    user: UserOut


class RemovedCounts(BaseModel):
    user: bool = Field(description="Whether a user record was removed.")
    events: int = Field(description="Events removed from the event log.")
    online_events: int = Field(description="Events removed from the online state.")


class DeletedUser(BaseModel):
    user_id: str
    removed: RemovedCounts


class RecentEventOut(BaseModel):
    event_id: str
    type: str
    item_id: str | None
    session_id: str | None
    query: str | None
    timestamp: datetime

    @classmethod
    def from_online(cls, r: RecentEvent) -> RecentEventOut:
        return cls(
            event_id=r.event_id,
            type=r.type,
            item_id=r.item_id,
            session_id=r.session_id,
            query=r.query,
            timestamp=datetime.fromtimestamp(r.ts, tz=UTC),
        )

    @classmethod
    def from_event(cls, e: Event) -> RecentEventOut:
        return cls(
            event_id=e.event_id,
            type=str(e.type),
            item_id=e.item_id,
            session_id=e.session_id,
            query=e.query,
            timestamp=e.timestamp,
        )


class UserEvents(BaseModel):
    user_id: str
    source: str = Field(description="online (the live state) or store (the event log)")
    events: list[RecentEventOut] = Field(description="Oldest first.")


class UserExport(BaseModel):
    """Everything shopflow holds about one user."""

    user_id: str
    user: dict[str, Any] | None = Field(description="The user record, or null.")
    events: list[dict[str, Any]] = Field(description="Every event in the log, oldest first.")
    online: list[RecentEventOut] = Field(description="The recent sequence in the online state.")


# -- recommendations (serving/routes/recommendations.py, serving/routes/admin.py) ------------------
class ReasonOut(BaseModel):
    kind: str = Field(
        description="because_you_viewed, similar, viewed_together, bought_together, trending, "
        "popular, new_from_brand, new_in_category, new_arrival or matches_query."
    )
    text: str = Field(description="A sentence a shopper can read.")
    evidence: dict[str, Any] = Field(
        description="What the reason rests on: the source, the item it came from, the category..."
    )


class RecommendedItemOut(BaseModel):
    item_id: str
    score: float = Field(description="Blended score (larger is better; comparable within a list).")
    reasons: list[ReasonOut] = Field(description="At least one, strongest first.")
    title: str | None = None
    brand: str | None = None
    category: str | None = Field(None, description="Leaf category.")
    price: float | None = None


class RecommendationsOut(BaseModel):
    """Every recommendation answer. Send `recommendation_id` back with the events it leads to."""

    recommendation_id: str
    scenario: str
    strategy: str = Field(
        description="`scenario:mode`, e.g. home:personal, home:session, home:trending (cold user), "
        "home:non_personal (no personalisation consent), similar:item, cart:bought_together."
    )
    model_version: str | None = Field(description="Bundle version; null when no bundle is loaded.")
    items: list[RecommendedItemOut]


class CartRequest(BaseModel):
    """``POST /v1/recommendations/cart``."""

    model_config = ConfigDict(extra="forbid")

    item_ids: list[str] = Field(min_length=1, max_length=200, description="Items in the cart.")
    user_id: str | None = Field(None, description="The shopper, for personalisation.")
    n: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000)
    category: str | None = None
    brand: str | None = None
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    in_stock: bool = True
    exclude: list[str] = Field(default_factory=list)


class ReloadOut(BaseModel):
    version: str | None = Field(description="The bundle now in force.")
    previous: str | None = Field(description="The bundle before the reload.")
    seconds: float = Field(description="Time to load and swap.")
