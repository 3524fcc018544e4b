"""The catalogue (items, with price and stock history) and the user records.

Example
-------
>>> from shopflow.store.db import make_engine
>>> cat = Catalogue(make_engine("sqlite://"))
>>> from shopflow.ingest.schema import Item
>>> cat.upsert([Item(item_id="i1", title="Tea", price=4.5, stock=3)]).inserted
1
>>> cat.upsert([Item(item_id="i1", title="Tea", price=3.9, stock=3)]).updated
1
>>> [h["price"] for h in cat.history("i1")]
[4.5, 3.9]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import Engine, delete, func, insert, select, update

from shopflow.ingest.schema import Consent, Item, User
from shopflow.store.db import from_micros, item_history, items, now_micros, to_micros, users

ITEM_FIELDS = (
    "title",
    "description",
    "brand",
    "categories",
    "price",
    "currency",
    "stock",
    "created_at",
    "attributes",
    "image_url",
    "embedding",
)


@dataclass
class UpsertResult:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


def _item_row(item: Item) -> dict[str, Any]:
    emb = None
    if item.embedding is not None:
        emb = np.asarray(item.embedding, dtype=np.float32).tobytes()
    return {
        "item_id": item.item_id,
        "title": item.title,
        "description": item.description,
        "brand": item.brand,
        "categories": list(item.categories),
        "price": item.price,
        "currency": item.currency,
        "stock": item.stock,
        "created_at": to_micros(item.created_at) if item.created_at else None,
        "attributes": dict(item.attributes),
        "image_url": item.image_url,
        "embedding": emb,
    }


def _row_item(m: Any) -> Item:
    emb = m["embedding"]
    return Item.model_construct(
        item_id=m["item_id"],
        title=m["title"],
        description=m["description"],
        brand=m["brand"],
        categories=list(m["categories"] or []),
        price=m["price"],
        currency=m["currency"],
        stock=m["stock"],
        created_at=from_micros(m["created_at"]) if m["created_at"] is not None else None,
        attributes=dict(m["attributes"] or {}),
        image_url=m["image_url"],
        embedding=np.frombuffer(emb, dtype=np.float32).tolist() if emb is not None else None,
    )


class Catalogue:
    """Items of the shop. Upserts keep a history row whenever price or stock changes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(self, batch: Sequence[Item]) -> UpsertResult:
        """Insert new items, update changed ones, in one transaction."""
        result = UpsertResult()
        latest: dict[str, dict[str, Any]] = {}
        for it in batch:  # the last version of an id in the batch wins
            latest[it.item_id] = _item_row(it)
        if not latest:
            return result
        now = now_micros()
        with self.engine.begin() as conn:
            existing: dict[str, Any] = {}
            ids = list(latest)
            for i in range(0, len(ids), 1000):
                q = select(items).where(items.c.item_id.in_(ids[i : i + 1000]))
                existing.update({r.item_id: r._mapping for r in conn.execute(q)})
            new_rows, changed_rows, hist_rows = [], [], []
            for item_id, row in latest.items():
                old = existing.get(item_id)
                if old is None:
                    new_rows.append({**row, "updated_at": now})
                    hist_rows.append(
                        {
                            "item_id": item_id,
                            "changed_at": now,
                            "price": row["price"],
                            "stock": row["stock"],
                        }
                    )
                elif any(old[f] != row[f] for f in ITEM_FIELDS):
                    changed_rows.append({**row, "updated_at": now, "b_item_id": item_id})
                    if old["price"] != row["price"] or old["stock"] != row["stock"]:
                        hist_rows.append(
                            {
                                "item_id": item_id,
                                "changed_at": now,
                                "price": row["price"],
                                "stock": row["stock"],
                            }
                        )
                else:
                    result.unchanged += 1
            if new_rows:
                conn.execute(insert(items), new_rows)
            if changed_rows:
                from sqlalchemy import bindparam

                stmt = (
                    update(items)
                    .where(items.c.item_id == bindparam("b_item_id"))
                    .values({f: bindparam(f) for f in (*ITEM_FIELDS, "updated_at")})
                )
                conn.execute(
                    stmt, [{k: v for k, v in r.items() if k != "item_id"} for r in changed_rows]
                )
            if hist_rows:
                conn.execute(insert(item_history), hist_rows)
        result.inserted = len(new_rows)
        result.updated = len(changed_rows)
        return result

    def set_stock(self, item_id: str, stock: int | None) -> bool:
        """Change one item's stock (kept in the history); False when the item is unknown."""
        current = self.get(item_id)
        if current is None:
            return False
        self.upsert([current.model_copy(update={"stock": stock})])
        return True

    def get(self, item_id: str) -> Item | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(items).where(items.c.item_id == item_id)).first()
        return _row_item(row._mapping) if row else None

    def get_many(self, item_ids: Iterable[str]) -> dict[str, Item]:
        ids = list(dict.fromkeys(item_ids))
        out: dict[str, Item] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 1000):
                q = select(items).where(items.c.item_id.in_(ids[i : i + 1000]))
                out.update({r.item_id: _row_item(r._mapping) for r in conn.execute(q)})
        return out

    def all(self) -> list[Item]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(items).order_by(items.c.item_id))
            return [_row_item(r._mapping) for r in rows]

    def page(self, offset: int = 0, limit: int = 100) -> list[Item]:
        """Items ordered by id: ``limit`` of them after skipping the first ``offset``."""
        q = select(items).order_by(items.c.item_id).offset(offset).limit(limit)
        with self.engine.connect() as conn:
            return [_row_item(r._mapping) for r in conn.execute(q)]

    def delete(self, item_id: str) -> bool:
        with self.engine.begin() as conn:
            conn.execute(delete(item_history).where(item_history.c.item_id == item_id))
            return bool(conn.execute(delete(items).where(items.c.item_id == item_id)).rowcount)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(items)).scalar_one())

    def history(self, item_id: str) -> list[dict[str, Any]]:
        """Price and stock over time, oldest first."""
        q = (
            select(item_history)
            .where(item_history.c.item_id == item_id)
            .order_by(item_history.c.changed_at, item_history.c.id)
        )
        with self.engine.connect() as conn:
            return [
                {"changed_at": from_micros(r.changed_at), "price": r.price, "stock": r.stock}
                for r in conn.execute(q)
            ]

    def to_polars(self) -> pl.DataFrame:
        """The catalogue as a frame (without embeddings), one row per item, ordered by id."""
        q = select(*(c for c in items.c if c.name != "embedding")).order_by(items.c.item_id)
        with self.engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(q)]
        schema = {
            "item_id": pl.String,
            "title": pl.String,
            "description": pl.String,
            "brand": pl.String,
            "categories": pl.List(pl.String),
            "price": pl.Float64,
            "currency": pl.String,
            "stock": pl.Int64,
            "created_at": pl.Int64,
            "updated_at": pl.Int64,
            "attributes": pl.String,
            "image_url": pl.String,
        }
        import orjson

        for r in rows:
            r["attributes"] = orjson.dumps(r["attributes"]).decode()
        frame = (
            pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)
        )
        return frame.with_columns(
            pl.col("created_at").cast(pl.Datetime("us", "UTC")),
            pl.col("updated_at").cast(pl.Datetime("us", "UTC")),
        )


def _row_user(m: Any) -> User:
    return User.model_construct(
        user_id=m["user_id"],
        attributes=dict(m["attributes"] or {}),
        consent=Consent(
            personalization=bool(m["consent_personalization"]),
            tracking=bool(m["consent_tracking"]),
        ),
        created_at=from_micros(m["created_at"]) if m["created_at"] is not None else None,
    )


class UserStore:
    """User records: attributes and consent. Events live in the :class:`EventLog`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def upsert(self, user: User) -> bool:
        """Create or replace ``user``; True when it was new."""
        row = {
            "attributes": dict(user.attributes),
            "consent_personalization": user.consent.personalization,
            "consent_tracking": user.consent.tracking,
            "updated_at": now_micros(),
        }
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(users.c.user_id).where(users.c.user_id == user.user_id)
            ).first()
            if exists:
                conn.execute(update(users).where(users.c.user_id == user.user_id).values(row))
                return False
            created = to_micros(user.created_at) if user.created_at else row["updated_at"]
            conn.execute(insert(users).values(user_id=user.user_id, created_at=created, **row))
            return True

    def get(self, user_id: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.user_id == user_id)).first()
        return _row_user(row._mapping) if row else None

    def delete(self, user_id: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(delete(users).where(users.c.user_id == user_id)).rowcount)

    def consent_changes(self, since: int | None = None) -> list[tuple[str, bool]]:
        """``(user_id, consent to personalisation)`` of the users written at or after
        ``since`` (µs since the epoch); with ``since=None``, of every user who withheld consent.

        One query, however many users: the serving side keeps the set of users without consent
        from it (``serving.consent``) instead of reading each user's record on each request.
        """
        cols = select(users.c.user_id, users.c.consent_personalization)
        query = (
            cols.where(users.c.consent_personalization.is_(False))
            if since is None
            else cols.where(users.c.updated_at >= since)
        )
        with self.engine.connect() as conn:
            return [(str(u), bool(c)) for u, c in conn.execute(query)]

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(users)).scalar_one())
