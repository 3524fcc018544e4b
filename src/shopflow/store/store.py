"""One handle on the durable stores: event log, catalogue and users, sharing one engine.

Example
-------
>>> from shopflow.config import load_settings
>>> store = Store.from_url("sqlite://")
>>> store.events.count(), store.catalogue.count()
(0, 0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from shopflow.config import Settings
from shopflow.store.catalog import Catalogue, UserStore
from shopflow.store.db import make_engine
from shopflow.store.event_log import EventLog


@dataclass
class Store:
    engine: Engine
    events: EventLog
    catalogue: Catalogue
    users: UserStore

    @classmethod
    def from_url(cls, url: str, sqlite_synchronous: str = "FULL") -> Store:
        engine = make_engine(url, sqlite_synchronous=sqlite_synchronous)
        return cls(engine, EventLog(engine), Catalogue(engine), UserStore(engine))

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return cls.from_url(settings.resolved_database_url(), settings.sqlite_synchronous)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def forget_user(self, user_id: str) -> dict[str, Any]:
        """Erase everything held about ``user_id`` in the durable stores (GDPR erasure)."""
        removed_events = self.events.delete_user(user_id)
        removed_user = self.users.delete(user_id)
        return {"events": removed_events, "user": removed_user}

    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything held about ``user_id`` in the durable stores, as JSON-ready data."""
        user = self.users.get(user_id)
        return {
            "user": user.model_dump(mode="json") if user else None,
            "events": [e.model_dump(mode="json") for e in self.events.user_events(user_id)],
        }

    def close(self) -> None:
        self.engine.dispose()
