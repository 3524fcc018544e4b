"""Framework-free orchestration of writes: validate → durable append → online state update.

The HTTP routes are thin wrappers around :class:`IngestService`; tests (and a future broker
consumer) can call it directly. It raises :mod:`shopflow.errors` exceptions, which the app maps to
status codes.

Example
-------
>>> from shopflow.config import IngestSettings
>>> from shopflow.store.online import MemoryState
>>> from shopflow.store.store import Store
>>> service = IngestService(Store.from_url("sqlite://"), MemoryState(), IngestSettings())
>>> ev = {"event_id": "e1", "type": "view", "user_id": "u1", "item_id": "i1",
...       "timestamp": 1_700_000_000}
>>> report = service.ingest_events([ev, {"event_id": "e2", "type": "teleport"}])
>>> report.accepted, report.accepted_ids, [r.index for r in report.rejected]
(1, ['e1'], [1])
>>> service.ingest_events([ev]).duplicates
1
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from shopflow.config import IngestSettings
from shopflow.errors import ShopflowError, ValidationFailed
from shopflow.ingest.schema import (
    Event,
    Item,
    Rejected,
    User,
    describe,
    parse_events,
    parse_items,
    validation_context,
)
from shopflow.serving.metrics import observe_ingest
from shopflow.store.catalog import UpsertResult
from shopflow.store.group_commit import GroupCommit
from shopflow.store.online import OnlineState
from shopflow.store.store import Store

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


class BadRequest(ShopflowError):
    """The request as a whole cannot be used: wrong JSON shape, or ids that contradict."""


class BatchTooLarge(ShopflowError):
    """A batch holds more records than ``settings.ingest.max_batch_size``."""

    def __init__(self, size: int, limit: int, what: str) -> None:
        self.size = size
        self.limit = limit
        super().__init__(
            f"batch of {size} {what} is over the limit of {limit} per request "
            "(setting ingest.max_batch_size, env SHOPFLOW_INGEST__MAX_BATCH_SIZE); "
            "split it into smaller batches"
        )


@dataclass
class IngestReport:
    """What one events batch did. ``online_updated`` is False when the online state failed."""

    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    accepted_ids: list[str] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)
    online_updated: bool = True


@dataclass
class ItemBatchReport:
    """What one catalogue batch did."""

    received: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def _kind(value: Any) -> str:
    names = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    if isinstance(value, bytes | bytearray):
        return "non-JSON body"
    return names.get(type(value), "number" if isinstance(value, int | float) else "value")


def unwrap_batch(payload: Any, key: str) -> list[Any]:
    """The records of a batch body: a JSON array, or an object ``{key: [...]}``.

    Raises
    ------
    BadRequest
        When the body is neither, with what was sent instead.
    """
    if isinstance(payload, list):
        return payload
    if isinstance(payload, bytes | bytearray):
        raise BadRequest(
            "the body is not JSON: send a JSON array with Content-Type: application/json"
        )
    if isinstance(payload, Mapping):
        if key not in payload:
            raise BadRequest(
                f'expected a JSON array of {key} or an object {{"{key}": [...]}}; '
                f"the object has no {key!r} key"
            )
        inner = payload[key]
        if not isinstance(inner, list):
            raise BadRequest(f"{key!r} must be a JSON array, not {_kind(inner)}")
        return inner
    raise BadRequest(
        f'expected a JSON array of {key} or an object {{"{key}": [...]}}, not {_kind(payload)}'
    )


def validate_one(model: type[M], body: Any, id_field: str, path_id: str) -> M:
    """Validate a single-record body (``PUT``); its id may be left out but must match the path.

    Raises
    ------
    BadRequest
        When the body is not a JSON object or names another id than the path.
    ValidationFailed
        When the record breaks the schema (message: ``field: problem; ...``).
    """
    if isinstance(body, bytes | bytearray):
        raise BadRequest(
            "the body is not JSON: send a JSON object with Content-Type: application/json"
        )
    if not isinstance(body, Mapping):
        raise BadRequest(f"the body must be a JSON object, not {_kind(body)}")
    data = dict(body)
    data.setdefault(id_field, path_id)
    try:
        record = model.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed([("", describe(exc))]) from None
    if id_field in body and getattr(record, id_field) != path_id:
        raise BadRequest(
            f"{id_field} in the body ({getattr(record, id_field)!r}) does not match the path "
            f"({path_id!r}); leave it out or make them equal"
        )
    return record


class IngestListener(Protocol):
    """Told about every accepted write (the recommend service learns from it)."""

    def on_events(self, events: Sequence[Event]) -> None: ...

    def on_items(self, items: Sequence[Item]) -> None: ...

    def on_user(self, user_id: str) -> None: ...


class IngestService:
    """Writes into the store and the online state, in that order.

    Parameters
    ----------
    store
        The durable event log, catalogue and users.
    online_state
        Per-user recent sequences and counters, updated after each committed append.
    limits
        Batch size and timestamp window (``settings.ingest``).
    listener
        Told about accepted events (after the online state), items and user changes.

    Event batches that arrive together (several requests in flight) are committed in one
    transaction by a :class:`~shopflow.store.group_commit.GroupCommit` writer: one fsync for all
    of them, and each request still answers only after its own events are durable.
    """

    def __init__(
        self,
        store: Store,
        online_state: OnlineState,
        limits: IngestSettings,
        listener: IngestListener | None = None,
    ) -> None:
        self.store = store
        self.online = online_state
        self.limits = limits
        self.listener = listener
        self.writer = GroupCommit(store.events)

    def close(self) -> None:
        """Write the batches still waiting and stop the writer thread."""
        self.writer.close()

    def _notify(self, method: str, arg: Any) -> None:
        """Pass a write on to the listener; its failure never fails the (durable) write."""
        if self.listener is None:
            return
        try:
            getattr(self.listener, method)(arg)
        except Exception:
            log.exception("listener failed", extra={"method": method})

    def _check_size(self, records: Sequence[Any], what: str) -> None:
        if len(records) > self.limits.max_batch_size:
            raise BatchTooLarge(len(records), self.limits.max_batch_size, what)

    def ingest_events(self, records: Sequence[Any], now: datetime | None = None) -> IngestReport:
        """Validate ``records``, append the valid ones durably, then update the online state.

        Valid events are kept when others are rejected; events already in the log (by ``event_id``)
        are counted as duplicates and not written again. Returns only after the append committed.

        Raises
        ------
        BatchTooLarge
            When ``records`` is over ``max_batch_size``; nothing is written.
        """
        self._check_size(records, "events")
        t0 = time.perf_counter()
        ctx = validation_context(
            max_future_skew_seconds=self.limits.max_future_skew_seconds,
            min_timestamp=self.limits.min_timestamp,
            now=now,
        )
        parsed = parse_events(records, ctx)
        t1 = time.perf_counter()
        result = self.writer.append(parsed.valid)
        t2 = time.perf_counter()
        report = IngestReport(
            received=len(records),
            accepted=result.accepted,
            duplicates=result.duplicates,
            rejected=parsed.rejected,
            accepted_ids=result.accepted_ids,
            duplicate_ids=result.duplicate_ids,
        )
        first: dict[str, Event] = {}
        for e in parsed.valid:  # the log keeps the first of repeated ids in a batch
            first.setdefault(e.event_id, e)
        fresh = [first[i] for i in result.accepted_ids]
        try:
            self.online.record(fresh)
        except Exception:  # the events are durable; say so and keep answering
            report.online_updated = False
            log.exception("online state update failed", extra={"events": len(fresh)})
        self._notify("on_events", fresh)
        t3 = time.perf_counter()
        log.info(
            "events ingested",
            extra={
                "received": report.received,
                "accepted": report.accepted,
                "duplicates": report.duplicates,
                "rejected": len(report.rejected),
                "validate_ms": round((t1 - t0) * 1000, 2),
                "append_ms": round((t2 - t1) * 1000, 2),
                "online_ms": round((t3 - t2) * 1000, 2),
            },
        )
        observe_ingest(report.accepted, report.duplicates, len(report.rejected))
        return report

    def upsert_items(self, records: Sequence[Any]) -> ItemBatchReport:
        """Validate catalogue records and upsert the valid ones in one transaction.

        Raises
        ------
        BatchTooLarge
            When ``records`` is over ``max_batch_size``; nothing is written.
        """
        self._check_size(records, "items")
        t0 = time.perf_counter()
        parsed = parse_items(records)
        result = self.store.catalogue.upsert(parsed.valid)
        self._notify("on_items", parsed.valid)
        report = ItemBatchReport(
            received=len(records),
            inserted=result.inserted,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=parsed.rejected,
        )
        log.info(
            "items upserted",
            extra={
                "received": report.received,
                "inserted": report.inserted,
                "updated": report.updated,
                "unchanged": report.unchanged,
                "rejected": len(report.rejected),
                "upsert_ms": round((time.perf_counter() - t0) * 1000, 2),
            },
        )
        return report

    def put_item(self, item_id: str, body: Any) -> tuple[Item, UpsertResult]:
        """Create or replace one item from a ``PUT`` body."""
        item = validate_one(Item, body, "item_id", item_id)
        result = self.store.catalogue.upsert([item])
        self._notify("on_items", [item])
        return item, result

    def put_user(self, user_id: str, body: Any) -> tuple[User, bool]:
        """Create or replace one user from a ``PUT`` body; True when the user is new."""
        user = validate_one(User, body, "user_id", user_id)
        created = self.store.users.upsert(user)
        self._notify("on_user", user_id)
        return user, created

    def forget_user(self, user_id: str) -> dict[str, Any]:
        """Erase the user's events, record and online state; return what was removed."""
        online_events = len(self.online.recent(user_id))
        removed = self.store.forget_user(user_id)
        self.online.forget_user(user_id)
        self._notify("on_user", user_id)
        log.info(
            "user erased",
            extra={
                "events": removed["events"],
                "record": bool(removed["user"]),
                "online_events": online_events,
            },
        )
        return {
            "user": bool(removed["user"]),
            "events": int(removed["events"]),
            "online_events": online_events,
        }
