"""Tables and engines of the event log and catalogue (SQLAlchemy 2 Core).

SQLite in WAL mode is the embedded default; PostgreSQL is used when the URL says so. Times are
stored as integer microseconds since the Unix epoch (UTC), which both backends compare and sort
exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
)
from sqlalchemy.engine import make_url

from shopflow.errors import BackendUnavailable, ConfigError

metadata = MetaData()

# BIGINT autoincrement on PostgreSQL, INTEGER PRIMARY KEY (the rowid) on SQLite.
SeqType = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("seq", SeqType, primary_key=True, autoincrement=True),
    Column("event_id", String(256), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("user_id", String(256), nullable=False),
    Column("session_id", String(256)),
    Column("item_id", String(256)),
    Column("item_ids", JSON),
    Column("query", Text),
    Column("value", Float),
    Column("text", Text),
    Column("ts", BigInteger, nullable=False),
    Column("context", JSON),
    Column("recommendation_id", String(256)),
    Column("ingested_at", BigInteger, nullable=False),
    Index("ix_events_ts", "ts"),
    Index("ix_events_user_ts", "user_id", "ts"),
    Index("ix_events_item", "item_id"),
)

items = Table(
    "items",
    metadata,
    Column("item_id", String(256), primary_key=True),
    Column("title", Text, nullable=False, default=""),
    Column("description", Text, nullable=False, default=""),
    Column("brand", String(256)),
    Column("categories", JSON, nullable=False),
    Column("price", Float),
    Column("currency", String(3), nullable=False),
    Column("stock", BigInteger),
    Column("created_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("image_url", Text),
    Column("embedding", LargeBinary),
)

item_history = Table(
    "item_history",
    metadata,
    Column("id", SeqType, primary_key=True, autoincrement=True),
    Column("item_id", String(256), ForeignKey("items.item_id", ondelete="CASCADE"), nullable=False),
    Column("changed_at", BigInteger, nullable=False),
    Column("price", Float),
    Column("stock", BigInteger),
    Index("ix_item_history_item", "item_id", "changed_at"),
)

users = Table(
    "users",
    metadata,
    Column("user_id", String(256), primary_key=True),
    Column("attributes", JSON, nullable=False),
    Column("consent_personalization", Boolean, nullable=False),
    Column("consent_tracking", Boolean, nullable=False),
    Column("created_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
)


def to_micros(ts: datetime) -> int:
    """A timezone-aware time as integer microseconds since the epoch."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    delta = ts - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(us: int) -> datetime:
    """Integer microseconds since the epoch as a UTC datetime."""
    return datetime.fromtimestamp(us / 1_000_000, tz=UTC)


def now_micros() -> int:
    return to_micros(datetime.now(UTC))


def make_engine(url: str, sqlite_synchronous: str = "FULL", **kwargs: Any) -> Engine:
    """Create an engine for ``url`` and the tables it needs.

    SQLite files get WAL journaling, the given ``synchronous`` level, foreign keys and a busy
    timeout so that an importer and the service can share one file.
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if sqlite_synchronous.upper() not in {"OFF", "NORMAL", "FULL", "EXTRA"}:
            raise ConfigError(
                f"sqlite_synchronous={sqlite_synchronous!r}; use OFF, NORMAL, FULL or EXTRA"
            )
        connect_args: dict[str, Any] = {"timeout": 30}
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:  # one in-memory database shared by every thread of the process
            from sqlalchemy.pool import StaticPool

            kwargs.setdefault("poolclass", StaticPool)
            connect_args["check_same_thread"] = False
        engine = create_engine(url, connect_args=connect_args, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous.upper()}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    elif backend == "postgresql":
        if parsed.drivername == "postgresql":  # plain URL: use psycopg 3, which we ship
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        engine = create_engine(url, pool_pre_ping=True, **kwargs)
    else:
        raise ConfigError(
            f"unsupported database URL scheme {parsed.drivername!r}; "
            "use sqlite:///path or postgresql+psycopg://user@host/db"
        )
    try:
        metadata.create_all(engine)
    except Exception as exc:  # the first connection tells whether the backend is there
        raise BackendUnavailable(
            f"cannot reach the database at {parsed.render_as_string(hide_password=True)}: {exc}"
        ) from exc
    return engine
