"""The data model: :class:`Item`, :class:`User` and :class:`Event` (DESIGN.md §2).

Validation rejects what a shop might get wrong, with messages that name the field and the problem:
missing ids, unknown event types, negative prices, timestamps far in the future, wrong types.

Example
-------
>>> e = Event.model_validate(
...     {"event_id": "e1", "type": "view", "user_id": "u1", "item_id": "i1",
...      "timestamp": 1700000000}
... )
>>> e.type.value, e.timestamp.year
('view', 2023)
>>> parse_events([{"event_id": "e2", "type": "teleport", "user_id": "u1"}]).rejected[0].reason
"type: unknown event type 'teleport'; expected one of: view, click, add_to_cart, ..."
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from shopflow.types import ITEM_EVENT_TYPES, EventType

T = TypeVar("T", bound=BaseModel)

DEFAULT_MAX_FUTURE_SKEW = timedelta(days=1)
DEFAULT_MIN_TIMESTAMP = datetime(1990, 1, 1, tzinfo=UTC)
MAX_ID_LENGTH = 256


def _as_id(value: Any) -> Any:
    """Shop ids are strings; integers are accepted and written as strings, nothing else is."""
    if isinstance(value, bool):
        raise ValueError("must be a string id, not a boolean")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        value = value.strip()
        if not value:
            raise ValueError("must not be empty")
        if len(value) > MAX_ID_LENGTH:
            raise ValueError(f"must be at most {MAX_ID_LENGTH} characters")
        return value
    if value is None:
        raise ValueError("is required")
    raise ValueError(f"must be a string id, not {type(value).__name__}")


Id = Annotated[str, BeforeValidator(_as_id)]
OptionalId = Annotated[str | None, BeforeValidator(lambda v: None if v is None else _as_id(v))]
Scalar = str | int | float | bool
AttrValue = Scalar | list[Scalar]


def _as_utc(value: Any) -> Any:
    """Accept ISO 8601 strings, datetimes and unix seconds; naive times are UTC."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO 8601 time or unix seconds, not a boolean")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number of unix seconds")
        if value > 1e11:
            raise ValueError(
                f"{value} is too large for unix seconds (milliseconds? divide by 1000)"
            )
        return datetime.fromtimestamp(value, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 time") from None
        value = parsed
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    raise ValueError(f"must be an ISO 8601 time or unix seconds, not {type(value).__name__}")


Timestamp = Annotated[datetime, BeforeValidator(_as_utc)]


def _check_time_window(ts: datetime, info: ValidationInfo) -> datetime:
    ctx = info.context or {}
    skew = ctx.get("max_future_skew", DEFAULT_MAX_FUTURE_SKEW)
    now = ctx.get("now") or datetime.now(UTC)
    if ts > now + skew:
        raise ValueError(f"{ts.isoformat()} is in the future (more than {skew} after now)")
    oldest = ctx.get("min_timestamp", DEFAULT_MIN_TIMESTAMP)
    if ts < oldest:
        raise ValueError(f"{ts.isoformat()} is before {oldest.isoformat()}")
    return ts


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class Item(_Strict):
    """A product of the shop's catalogue."""

    item_id: Id
    title: str = ""
    description: str = ""
    brand: str | None = None
    categories: list[str] = Field(default_factory=list, description="Category path, root first.")
    price: float | None = Field(None, ge=0, allow_inf_nan=False)
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    stock: int | None = Field(None, ge=0, description="Units in stock; None when not tracked.")
    created_at: Timestamp | None = None
    attributes: dict[str, AttrValue] = Field(default_factory=dict)
    image_url: str | None = None
    embedding: list[float] | None = None

    @field_validator("categories", mode="before")
    @classmethod
    def _split_path(cls, value: Any) -> Any:
        if isinstance(value, str):  # "Beauty > Skin > Face" or "Beauty/Skin/Face"
            sep = ">" if ">" in value else "/"
            return [part.strip() for part in value.split(sep) if part.strip()]
        return value

    @property
    def in_stock(self) -> bool:
        return self.stock is None or self.stock > 0


class Consent(_Strict):
    """What the shopper agreed to. Without personalisation consent only non-personal lists are
    served."""

    personalization: StrictBool = True
    tracking: StrictBool = True


class User(_Strict):
    """A shopper, known to shopflow only by the shop's id and what the shop chooses to send."""

    user_id: Id
    attributes: dict[str, AttrValue] = Field(default_factory=dict)
    consent: Consent = Field(default_factory=Consent)
    created_at: Timestamp | None = None


class Event(_Strict):
    """One thing a shopper did."""

    event_id: Id
    type: EventType
    user_id: Id
    timestamp: Timestamp
    session_id: OptionalId = None
    item_id: OptionalId = None
    item_ids: list[Id] | None = Field(None, description="Items shown (impression) or searched.")
    query: str | None = Field(None, max_length=1_000)
    value: float | None = Field(None, allow_inf_nan=False, description="Quantity, price or rating.")
    text: str | None = Field(None, max_length=20_000, description="Review text.")
    context: dict[str, Scalar] = Field(default_factory=dict)
    recommendation_id: OptionalId = None

    @field_validator("type", mode="before")
    @classmethod
    def _known_type(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return EventType(value.strip().lower())
            except ValueError:
                known = ", ".join(t.value for t in EventType)
                raise ValueError(
                    f"unknown event type {value!r}; expected one of: {known}"
                ) from None
        return value

    @field_validator("timestamp")
    @classmethod
    def _in_window(cls, value: datetime, info: ValidationInfo) -> datetime:
        return _check_time_window(value, info)

    @model_validator(mode="after")
    def _fields_for_type(self) -> Event:
        if self.type in ITEM_EVENT_TYPES and self.item_id is None:
            raise ValueError(f"item_id: is required for a {self.type.value} event")
        if self.type is EventType.SEARCH and not (self.query and self.query.strip()):
            raise ValueError("query: is required for a search event")
        if self.type is EventType.IMPRESSION and not self.item_ids:
            raise ValueError("item_ids: is required for an impression event")
        if self.type is EventType.RATING and (self.value is None or not 0 <= self.value <= 5):
            raise ValueError("value: a rating event needs a value between 0 and 5")
        if self.type in (EventType.PURCHASE, EventType.ADD_TO_CART) and (
            self.value is not None and self.value < 0
        ):
            raise ValueError("value: quantity must not be negative")
        return self


@dataclass(frozen=True)
class Rejected:
    """One input that failed validation: its position in the input and why."""

    index: int
    reason: str
    line: int | None = None


@dataclass
class Parsed(Generic[T]):
    """Valid records and the rejected ones, in input order."""

    valid: list[T] = field(default_factory=list)
    valid_index: list[int] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


def describe(error: ValidationError) -> str:
    """Turn a pydantic error into ``field: problem; field: problem``."""
    parts = []
    for err in error.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"])
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        if err["type"] == "missing":
            msg = "is required"
        elif err["type"] == "extra_forbidden":
            msg = "is not a known field"
        # Model-level checks already name their field ("item_id: is required ...").
        parts.append(msg if not loc else f"{loc}: {msg}")
    return "; ".join(parts)


def validation_context(
    max_future_skew_seconds: float | None = None,
    min_timestamp: str | datetime | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Context passed to ``model_validate`` to configure the time window checks."""
    ctx: dict[str, Any] = {}
    if max_future_skew_seconds is not None:
        ctx["max_future_skew"] = timedelta(seconds=max_future_skew_seconds)
    if min_timestamp is not None:
        ctx["min_timestamp"] = _as_utc(min_timestamp)
    if now is not None:
        ctx["now"] = now
    return ctx


def _parse(model: type[T], records: Iterable[Any], context: Mapping[str, Any] | None) -> Parsed[T]:
    out: Parsed[T] = Parsed()
    ctx = dict(context or {})
    for i, rec in enumerate(records):
        if isinstance(rec, model):
            out.valid.append(rec)
            out.valid_index.append(i)
            continue
        if not isinstance(rec, Mapping):
            out.rejected.append(Rejected(i, f"must be a JSON object, not {type(rec).__name__}"))
            continue
        try:
            out.valid.append(model.model_validate(rec, context=ctx))
            out.valid_index.append(i)
        except ValidationError as exc:
            out.rejected.append(Rejected(i, describe(exc)))
    return out


def parse_events(records: Iterable[Any], context: Mapping[str, Any] | None = None) -> Parsed[Event]:
    """Validate raw event records, keeping the valid ones and a reason for each rejected one."""
    return _parse(Event, records, context)


def parse_items(records: Iterable[Any]) -> Parsed[Item]:
    """Validate raw item records, keeping the valid ones and a reason for each rejected one."""
    return _parse(Item, records, None)
