"""A synthetic but realistic demo shop, deterministic by seed, for ``make run``, tests and docs.

The shop has a category tree (7 top categories, 31 subcategories, readable names), brands per
category, log-normal prices per subcategory, readable titles and descriptions, stock (some items
sold out) and new arrivals during the period. Its shoppers have latent tastes that drift, browse in
sessions with view → add_to_cart → purchase funnels, search with queries built from item words,
favourite, rate and review (review text agrees with the rating), buy complementary products together
(phone → case, camera → memory card → tripod) and shop more on holidays, on weekends and in the
evening. The ground truth (tastes, complement pairs, holidays) comes with the data, for tests.

Same seed, same shop: identical items, users and events, event ids and timestamps included. The
wall clock is never read: the period is a configuration value that ends on 2026-11-01 by default.

Example
-------
>>> shop = generate(DemoConfig(seed=1, n_users=50, n_items=150, days=14))
>>> shop == generate(DemoConfig(seed=1, n_users=50, n_items=150, days=14))
True
>>> {e.type.value for e in shop.events} >= {"view", "add_to_cart", "purchase", "search"}
True
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from shopflow.ingest.demo_behaviour import BehaviourRates, Simulator, UserTaste, make_users
from shopflow.ingest.demo_calendar import Holiday, holidays_between
from shopflow.ingest.demo_catalogue import build_catalogue
from shopflow.ingest.demo_words import COMPLEMENTS
from shopflow.ingest.schema import Event, Item, User
from shopflow.types import EventType

log = logging.getLogger(__name__)

DEFAULT_END = date(2026, 11, 1)
Progress = Callable[[int], None]


@dataclass(frozen=True)
class DemoConfig:
    """Size and shape of the demo shop.

    Attributes
    ----------
    seed : int
        Everything is drawn from ``numpy.random.default_rng(seed)``.
    n_users, n_items : int
        Shoppers and catalogue size (each of the 31 subcategories gets at least 3 items).
    days : int
        Length of the simulated period.
    end : date
        First day after the period (exclusive, midnight UTC). Used when ``start`` is None.
    start : date or None
        First day of the period; ``None`` means ``end - days``.
    new_item_share, new_user_share : float
        Items that arrive and users that sign up during the period.
    out_of_stock_share : float
        Items with zero stock (viewable, never carted).
    rates : BehaviourRates
        Funnel probabilities of the sessions.
    """

    seed: int = 7
    n_users: int = 1_000
    n_items: int = 2_000
    days: int = 61
    end: date = DEFAULT_END
    start: date | None = None
    new_item_share: float = 0.15
    new_user_share: float = 0.15
    out_of_stock_share: float = 0.08
    rates: BehaviourRates = field(default_factory=BehaviourRates)

    @property
    def period(self) -> tuple[datetime, datetime]:
        """``(start, end)`` of the period as UTC datetimes; events fall in ``[start, end)``."""
        first = self.start or self.end - timedelta(days=self.days)
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        return start, start + timedelta(days=self.days)

    def check(self) -> None:
        """Raise ``ValueError`` with what to change when a value cannot make a shop."""
        if self.n_users < 1 or self.n_items < 1 or self.days < 1:
            raise ValueError("n_users, n_items and days must be at least 1")
        for name in ("new_item_share", "new_user_share", "out_of_stock_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")


@dataclass
class DemoShop:
    """A generated shop: the data and the ground truth it was drawn from."""

    config: DemoConfig
    items: list[Item]
    users: list[User]
    events: list[Event]  # in time order; ids numbered in that order
    tastes: dict[str, UserTaste]  # user id -> latent taste
    complements: list[tuple[str, str]]  # (anchor item id, complement item id)
    complement_categories: list[tuple[str, str, float]]  # (anchor, complement subcategory, prob)
    holidays: list[Holiday]

    @property
    def start(self) -> datetime:
        return self.config.period[0]

    @property
    def end(self) -> datetime:
        return self.config.period[1]

    def new_arrivals(self) -> list[Item]:
        """Items created during the period."""
        return [it for it in self.items if it.created_at and it.created_at >= self.start]

    def holiday_dates(self) -> list[date]:
        return [d for h in self.holidays for d in h.days()]

    def summary(self) -> dict[str, Any]:
        """Counts for reports: items, users, events by type, first and last event time."""
        by_type = Counter(e.type.value for e in self.events)
        return {
            "items": len(self.items),
            "users": len(self.users),
            "events": len(self.events),
            "events_by_type": dict(sorted(by_type.items(), key=lambda kv: -kv[1])),
            "first_event": self.events[0].timestamp if self.events else None,
            "last_event": self.events[-1].timestamp if self.events else None,
            "new_arrivals": len(self.new_arrivals()),
            "holidays": [(h.name, h.start, h.end) for h in self.holidays],
        }


def generate(config: DemoConfig | None = None) -> DemoShop:
    """Generate the demo shop described by ``config`` (defaults: about 2,000 items, 1,000 users).

    Parameters
    ----------
    config : DemoConfig, optional
        Size, period and seed; the same config always gives the same shop.

    Returns
    -------
    DemoShop
        Items, users, time-ordered events and the ground truth behind them.
    """
    config = config or DemoConfig()
    config.check()
    rng = np.random.default_rng(config.seed)
    start, end = config.period
    holidays = holidays_between(start.date(), end.date())
    cat = build_catalogue(
        rng, config.n_items, start, end, config.new_item_share, config.out_of_stock_share
    )
    users, shoppers, tastes = make_users(rng, config.n_users, start, end, config.new_user_share)
    sim = Simulator(rng, cat, start, config.days, holidays, config.rates)
    raw = [e for s in shoppers for e in sim.run_user(s)]
    raw.sort(key=lambda r: (r[0], r[1], r[2]))
    countries = [u.attributes["country"] for u in users]
    events: list[Event] = []
    types = {t.value: t for t in EventType}
    for k, (ts, u, _, kind, item, sid, extra) in enumerate(raw):
        # Built without re-validation (every value is typed here); the tests validate each event.
        events.append(
            Event.model_construct(
                event_id=f"demo{config.seed}-{k:07d}",
                type=types[kind],
                user_id=users[u].user_id,
                timestamp=datetime.fromtimestamp(round(ts), tz=UTC),
                session_id=sid,
                item_id=cat.items[item].item_id if item >= 0 else None,
                item_ids=None,
                query=extra.get("query"),
                value=extra.get("value"),
                text=extra.get("text"),
                context={"device": extra["device"], "country": countries[u]},
                recommendation_id=None,
            )
        )
    log.debug("demo shop: %d items, %d users, %d events", len(cat.items), len(users), len(events))
    return DemoShop(
        config=config,
        items=cat.items,
        users=users,
        events=events,
        tastes=tastes,
        complements=cat.complement_pairs(),
        complement_categories=list(COMPLEMENTS),
        holidays=holidays,
    )


@dataclass
class LoadReport:
    """What :func:`load_into` wrote: new and updated items, new users, new and duplicate events."""

    items_inserted: int = 0
    items_updated: int = 0
    users_inserted: int = 0
    events_accepted: int = 0
    events_duplicate: int = 0


def load_into(
    store: Any,
    shop: DemoShop,
    online_state: Any | None = None,
    progress: Progress | None = None,
    batch_size: int = 5_000,
) -> LoadReport:
    """Write ``shop`` into ``store``: upsert items and users, append events in batches.

    Loading the same shop twice adds nothing (ids are stable). Accepted events are recorded into
    ``online_state`` when given, so that the service answers from them at once.

    Parameters
    ----------
    store : shopflow.store.store.Store
        Event log, catalogue and users.
    shop : DemoShop
        What :func:`generate` returned.
    online_state : shopflow.store.online.OnlineState, optional
        Receives every accepted (non-duplicate) event batch.
    progress : callable, optional
        Called with the number of records (items, users or events) handled after each batch; the
        total is ``len(shop.items) + len(shop.users) + len(shop.events)``.
    batch_size : int
        Events per committed transaction.
    """
    report = LoadReport()
    tick = progress or (lambda n: None)
    for i in range(0, len(shop.items), 1_000):
        part = shop.items[i : i + 1_000]
        res = store.catalogue.upsert(part)
        report.items_inserted += res.inserted
        report.items_updated += res.updated
        tick(len(part))
    for i, user in enumerate(shop.users):
        report.users_inserted += bool(store.users.upsert(user))
        if (i + 1) % 100 == 0 or i + 1 == len(shop.users):
            tick(100 if (i + 1) % 100 == 0 else (i + 1) % 100)
    for i in range(0, len(shop.events), batch_size):
        batch = shop.events[i : i + batch_size]
        res = store.events.append(batch)
        report.events_accepted += res.accepted
        report.events_duplicate += res.duplicates
        if online_state is not None and res.accepted:
            accepted = set(res.accepted_ids)
            online_state.record([e for e in batch if e.event_id in accepted])
        tick(len(batch))
    return report


def write_jsonl(shop: DemoShop, folder: str | Path) -> dict[str, Path]:
    """Write ``items.jsonl``, ``users.jsonl`` and ``events.jsonl`` (one JSON object a line) to
    ``folder``, creating it; return the paths by name."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, records in (("items", shop.items), ("users", shop.users), ("events", shop.events)):
        path = out / f"{name}.jsonl"
        with open(path, "wb") as fh:
            for rec in records:
                fh.write(orjson.dumps(rec.model_dump(mode="json", exclude_none=True)))
                fh.write(b"\n")
        paths[name] = path
    return paths
