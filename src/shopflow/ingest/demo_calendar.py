"""The demo shop's retail calendar: holidays and sales that raise activity and boost categories.

Dates follow fixed rules for any year (Black Friday is the day after the fourth Thursday of
November), so a demo period anywhere in the year meets the holidays that fall inside it.

Example
-------
>>> from datetime import date
>>> [h.name for h in holidays_between(date(2026, 9, 1), date(2026, 11, 1))]
['Labor Day weekend', 'Autumn Deal Days', 'Halloween']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np

from shopflow.ingest.demo_words import WEEKDAY_WEIGHTS


@dataclass(frozen=True)
class Holiday:
    """A retail event: days ``start..end`` (inclusive) with more sessions and favoured categories.

    ``activity`` multiplies the number of sessions on each of its days; ``categories`` (top
    categories, empty for all) are ``boost`` times likelier to be what a session is about.
    """

    name: str
    start: date
    end: date
    activity: float
    categories: tuple[str, ...] = ()
    boost: float = 1.0

    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The ``n``-th ``weekday`` (Monday 0) of a month."""
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _calendar(year: int) -> list[Holiday]:
    labor_day = _nth_weekday(year, 9, 0, 1)
    deal_days = _nth_weekday(year, 10, 1, 2)
    thanksgiving = _nth_weekday(year, 11, 3, 4)
    mothers_day = _nth_weekday(year, 5, 6, 2)
    d = date
    return [
        Holiday("Valentine's Day", d(year, 2, 10), d(year, 2, 14), 1.5, ("Beauty", "Fashion"), 3.0),
        Holiday(
            "Mother's Day",
            mothers_day - timedelta(days=4),
            mothers_day,
            1.5,
            ("Beauty", "Home & Kitchen"),
            3.0,
        ),
        Holiday("Summer Sale", d(year, 7, 14), d(year, 7, 15), 2.2, ("Electronics",), 2.0),
        Holiday(
            "Labor Day weekend",
            labor_day - timedelta(days=2),
            labor_day,
            1.8,
            ("Home & Kitchen", "Sports & Outdoors"),
            3.0,
        ),
        Holiday(
            "Autumn Deal Days",
            deal_days,
            deal_days + timedelta(days=1),
            2.5,
            ("Electronics", "Cameras & Photo"),
            3.0,
        ),
        Holiday("Halloween", d(year, 10, 28), d(year, 10, 31), 1.8, ("Toys & Games",), 4.0),
        Holiday(
            "Singles' Day", d(year, 11, 11), d(year, 11, 11), 2.0, ("Fashion", "Electronics"), 2.0
        ),
        Holiday(
            "Black Friday to Cyber Monday",
            thanksgiving + timedelta(days=1),
            thanksgiving + timedelta(days=4),
            3.0,
            (),
            1.0,
        ),
        Holiday(
            "Gift season",
            d(year, 12, 5),
            d(year, 12, 23),
            1.6,
            ("Toys & Games", "Beauty", "Electronics"),
            2.5,
        ),
        Holiday("Boxing Day", d(year, 12, 26), d(year, 12, 26), 2.0, ("Fashion",), 2.0),
    ]


def holidays_between(start: date, end: date) -> list[Holiday]:
    """Holidays with at least one day in ``[start, end)``, clipped to it, in date order."""
    out = []
    for year in range(start.year, end.year + 1):
        for h in _calendar(year):
            first, last = max(h.start, start), min(h.end, end - timedelta(days=1))
            if first <= last:
                out.append(Holiday(h.name, first, last, h.activity, h.categories, h.boost))
    return sorted(out, key=lambda h: h.start)


def day_weights(start: date, n_days: int, holidays: list[Holiday]) -> np.ndarray:
    """Relative number of sessions on each day: weekly rhythm times holiday activity."""
    w = np.array(
        [WEEKDAY_WEIGHTS[(start + timedelta(days=i)).weekday()] for i in range(n_days)], dtype=float
    )
    for h in holidays:
        for day in h.days():
            w[(day - start).days] *= h.activity
    return w


def holiday_on(day: date, holidays: list[Holiday]) -> Holiday | None:
    for h in holidays:
        if h.start <= day <= h.end:
            return h
    return None
