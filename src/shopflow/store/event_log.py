"""The durable, append-only event log.

Appends are idempotent by ``event_id`` and acknowledged only after the transaction commits. Reads
export events in time order as Polars frames (Arrow underneath) for training and evaluation.

Example
-------
>>> from shopflow.store.db import make_engine
>>> log = EventLog(make_engine("sqlite://"))
>>> from shopflow.ingest.schema import Event
>>> e = Event(event_id="e1", type="view", user_id="u", item_id="i", timestamp=1_700_000_000)
>>> log.append([e]).accepted, log.append([e]).duplicates
(1, 1)
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl
from sqlalchemy import Engine, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite

from shopflow.ingest.schema import Event
from shopflow.store.db import events, from_micros, now_micros, to_micros
from shopflow.types import (
    COL_CONTEXT,
    COL_EVENT_ID,
    COL_ITEM,
    COL_ITEMS,
    COL_QUERY,
    COL_RECOMMENDATION,
    COL_SEQ,
    COL_SESSION,
    COL_TEXT,
    COL_TS,
    COL_TYPE,
    COL_USER,
    COL_VALUE,
    EventType,
)

EVENT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    COL_SEQ: pl.Int64,
    COL_EVENT_ID: pl.String,
    COL_TYPE: pl.String,
    COL_USER: pl.String,
    COL_SESSION: pl.String,
    COL_ITEM: pl.String,
    COL_ITEMS: pl.List(pl.String),
    COL_QUERY: pl.String,
    COL_VALUE: pl.Float64,
    COL_TEXT: pl.String,
    COL_TS: pl.Datetime("us", "UTC"),
    COL_CONTEXT: pl.String,
    COL_RECOMMENDATION: pl.String,
}


@dataclass
class AppendResult:
    """What an append did: new events written, and those already in the log (by ``event_id``)."""

    accepted: int = 0
    duplicates: int = 0
    accepted_ids: list[str] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)


def event_to_row(e: Event, ingested_at: int) -> dict[str, Any]:
    return {
        "event_id": e.event_id,
        "type": e.type.value,
        "user_id": e.user_id,
        "session_id": e.session_id,
        "item_id": e.item_id,
        "item_ids": e.item_ids,
        "query": e.query,
        "value": e.value,
        "text": e.text,
        "ts": to_micros(e.timestamp),
        "context": e.context or None,
        "recommendation_id": e.recommendation_id,
        "ingested_at": ingested_at,
    }


def row_to_event(row: Any) -> Event:
    m = row._mapping
    return Event.model_construct(
        event_id=m["event_id"],
        type=EventType(m["type"]),
        user_id=m["user_id"],
        session_id=m["session_id"],
        item_id=m["item_id"],
        item_ids=m["item_ids"],
        query=m["query"],
        value=m["value"],
        text=m["text"],
        timestamp=from_micros(m["ts"]),
        context=m["context"] or {},
        recommendation_id=m["recommendation_id"],
    )


def _rows(batch: Sequence[Event], ingested: int) -> tuple[list[dict[str, Any]], AppendResult]:
    """The rows to insert for ``batch`` (repeated ids within it dropped and counted)."""
    result = AppendResult()
    rows, seen = [], set()
    for e in batch:
        if e.event_id in seen:
            result.duplicate_ids.append(e.event_id)
            continue
        seen.add(e.event_id)
        rows.append(event_to_row(e, ingested))
    return rows, result


class EventLog:
    """Append-only log of :class:`Event`, on SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name

    def _insert(self) -> Any:
        if self._dialect == "sqlite":
            return sqlite.insert(events).on_conflict_do_nothing(index_elements=["event_id"])
        if self._dialect == "postgresql":
            return postgresql.insert(events).on_conflict_do_nothing(index_elements=["event_id"])
        return insert(events)

    def append(self, batch: Sequence[Event]) -> AppendResult:
        """Write ``batch`` in one transaction; return only after it has committed.

        Events whose ``event_id`` is already in the log (or earlier in the batch) are counted as
        duplicates and not written again.
        """
        return self.append_many([batch])[0]

    def append_many(self, batches: Sequence[Sequence[Event]]) -> list[AppendResult]:
        """Write several batches in ONE transaction (one commit, one fsync); one result each.

        The group commit of :class:`shopflow.store.group_commit.GroupCommit`. Batches are inserted
        in order, so an ``event_id`` in two of them is written by the first and is a duplicate of
        the second. Returns only after the commit; on an error nothing of any batch is written.
        """
        ingested = now_micros()
        prepared = [_rows(batch, ingested) for batch in batches]
        if not any(rows for rows, _ in prepared):
            return [result for _, result in prepared]
        stmt = self._insert().returning(events.c.event_id)
        inserted: list[set[str]] = []
        with self.engine.begin() as conn:
            for rows, _ in prepared:
                inserted.append(set(conn.execute(stmt, rows).scalars().all()) if rows else set())
        for (rows, result), done in zip(prepared, inserted, strict=True):
            for r in rows:
                if r["event_id"] in done:
                    result.accepted_ids.append(r["event_id"])
                else:
                    result.duplicate_ids.append(r["event_id"])
            result.accepted = len(result.accepted_ids)
            result.duplicates = len(result.duplicate_ids)
        return [result for _, result in prepared]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(events)).scalar_one())

    def contains(self, event_ids: Sequence[str]) -> set[str]:
        """Which of ``event_ids`` are in the log."""
        found: set[str] = set()
        with self.engine.connect() as conn:
            for i in range(0, len(event_ids), 1000):
                chunk = list(event_ids[i : i + 1000])
                q = select(events.c.event_id).where(events.c.event_id.in_(chunk))
                found.update(conn.execute(q).scalars())
        return found

    def user_events(self, user_id: str, limit: int | None = None) -> list[Event]:
        """A user's events, oldest first (the most recent ``limit`` when given)."""
        q = select(events).where(events.c.user_id == user_id)
        if limit is not None:
            q = q.order_by(events.c.ts.desc(), events.c.seq.desc()).limit(limit)
        else:
            q = q.order_by(events.c.ts, events.c.seq)
        with self.engine.connect() as conn:
            out = [row_to_event(r) for r in conn.execute(q)]
        return out[::-1] if limit is not None else out

    def delete_user(self, user_id: str) -> int:
        """Erase every event of ``user_id``; return how many were removed."""
        with self.engine.begin() as conn:
            return int(conn.execute(delete(events).where(events.c.user_id == user_id)).rowcount)

    def iter_batches(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        types: Sequence[str] | None = None,
        batch_size: int = 100_000,
    ) -> Iterator[pl.DataFrame]:
        """Events with ``start <= timestamp < end`` in time order, in frames of ``batch_size``."""
        q = select(events).order_by(events.c.ts, events.c.seq)
        if start is not None:
            q = q.where(events.c.ts >= to_micros(start))
        if end is not None:
            q = q.where(events.c.ts < to_micros(end))
        if types:
            q = q.where(events.c.type.in_([str(t) for t in types]))
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch_size).execute(q)
            for part in result.partitions():
                yield _rows_to_frame(part)

    def to_polars(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        types: Sequence[str] | None = None,
    ) -> pl.DataFrame:
        """All events in the range, in time order (ties in arrival order), as one Polars frame."""
        frames = list(self.iter_batches(start, end, types))
        if not frames:
            return pl.DataFrame(schema=EVENT_SCHEMA)
        return pl.concat(frames, rechunk=True)

    def to_arrow(self, **kwargs: Any) -> Any:
        """Like :meth:`to_polars`, as a ``pyarrow.Table``."""
        return self.to_polars(**kwargs).to_arrow()


def _rows_to_frame(rows: Sequence[Any]) -> pl.DataFrame:
    import orjson

    cols: dict[str, list[Any]] = {k: [] for k in EVENT_SCHEMA}
    for r in rows:
        m = r._mapping
        cols[COL_SEQ].append(m["seq"])
        cols[COL_EVENT_ID].append(m["event_id"])
        cols[COL_TYPE].append(m["type"])
        cols[COL_USER].append(m["user_id"])
        cols[COL_SESSION].append(m["session_id"])
        cols[COL_ITEM].append(m["item_id"])
        cols[COL_ITEMS].append(m["item_ids"])
        cols[COL_QUERY].append(m["query"])
        cols[COL_VALUE].append(m["value"])
        cols[COL_TEXT].append(m["text"])
        cols[COL_TS].append(m["ts"])
        ctx = m["context"]
        cols[COL_CONTEXT].append(orjson.dumps(ctx).decode() if ctx else None)
        cols[COL_RECOMMENDATION].append(m["recommendation_id"])
    schema = dict(EVENT_SCHEMA)
    schema[COL_TS] = pl.Int64
    frame = pl.DataFrame(cols, schema=schema)
    return frame.with_columns(pl.col(COL_TS).cast(pl.Datetime("us", "UTC")))
