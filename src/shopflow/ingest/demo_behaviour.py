"""The demo shop's shoppers and what they do: sessions with view → cart → purchase funnels.

Each user has a latent taste (top categories, favourite brands, price sensitivity) that drifts
linearly from ``start`` to ``end`` weights over the period. Session times follow a daily and weekly
rhythm plus holiday spikes. Inside a session the funnel rules are:

* every ``add_to_cart`` of an item follows a ``view`` of it in the same session;
* every ``purchase`` of an item follows an ``add_to_cart`` of it in the same session (checkout);
* carting an anchor item (a phone) often carts one of its linked complements (a case for it);
* ratings and reviews come at the start of a later session, two days or more after the purchase.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from shopflow.ingest.demo_calendar import Holiday, day_weights, holiday_on
from shopflow.ingest.demo_catalogue import SUBCATS, TOPS, Catalogue
from shopflow.ingest.demo_words import (
    AGE_BANDS,
    BRANDS,
    COMPLEMENTS,
    COUNTRIES,
    DEVICES,
    HOUR_WEIGHTS,
    REVIEW_DETAILS,
    REVIEW_OPENERS,
)
from shopflow.ingest.schema import Consent, User

SESSION_GAP = 31 * 60.0  # seconds between sessions: over the 30-minute session timeout
# Accessories (the complement side of a rule) are mostly bought as add-ons, seldom browsed for.
_ADDONS = {c for a, c, _ in COMPLEMENTS if a != c}
INTENT = np.array([0.4 if s.name in _ADDONS else 1.0 for _, s in SUBCATS])
SUBS_OF_TOP = [np.array([i for i, (t, _) in enumerate(SUBCATS) if t == top]) for top in TOPS]
ALL_BRANDS = [b for top in TOPS for b, _ in BRANDS[top]]


@dataclass(frozen=True)
class UserTaste:
    """Ground truth about one user: what they like at the start and at the end of the period."""

    categories_start: dict[str, float]
    categories_end: dict[str, float]
    brands: tuple[str, ...]
    price_sensitivity: float  # 0 ignores price; 2 strongly prefers cheap items
    sessions_per_week: float
    drifts: bool


@dataclass
class BehaviourRates:
    """Funnel probabilities (the defaults give a realistic view ≫ cart ≥ purchase shape)."""

    search: float = 0.3
    views_mean: float = 3.5
    switch_subcategory: float = 0.12
    cart: float = 0.09
    checkout: float = 0.6
    remove: float = 0.08
    favorite: float = 0.03
    rate: float = 0.35
    review_given_rating: float = 0.45
    followup_complement: float = 0.5
    new_arrival_boost: float = 2.5
    holiday_cart_boost: float = 1.3


@dataclass
class _Shopper:
    index: int
    user_id: str
    offset_h: int
    country: str
    created: float
    taste0: np.ndarray  # (n_tops,)
    taste1: np.ndarray  # (n_tops,)
    sub_pref: np.ndarray  # (n_subcats,)
    brands: frozenset[str]
    sensitivity: float
    activity: float
    conversion: float
    device_p: np.ndarray  # (3,)
    pending: list[tuple[float, str, int]] = field(default_factory=list)  # (due, kind, item)
    appeal: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_items,) view weight
    cart_fit: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (n_items,) cart factor

    def prepare(self, cat: Catalogue) -> None:
        """Per-item weights of this shopper: popularity, price fit, favourite brands."""
        fav = np.isin(
            cat.brand_idx,
            [cat.brand_names.index(b) for b in sorted(self.brands) if b in cat.brand_names],
        )
        price_fit = cat.rel_price ** (-self.sensitivity)
        self.appeal = cat.popularity * price_fit * np.where(fav, 3.0, 1.0)
        self.cart_fit = np.clip(np.sqrt(price_fit), 0.3, 2.0) * np.where(fav, 1.5, 1.0)


def draw(rng: np.random.Generator, weights: np.ndarray) -> int:
    """Index drawn with probability proportional to ``weights`` (faster than ``rng.choice(p=)``)."""
    cum = weights.cumsum()
    return min(int(cum.searchsorted(rng.random() * cum[-1], side="right")), len(cum) - 1)


# A raw event before it becomes an Event: (ts, user index, order, type, item, session, extra)
Raw = tuple[float, int, int, str, int, str, dict]


def make_users(
    rng: np.random.Generator,
    n_users: int,
    start: datetime,
    end: datetime,
    new_share: float,
    id_prefix: str = "u",
) -> tuple[list[User], list[_Shopper], dict[str, UserTaste]]:
    """Draw ``n_users`` users with latent tastes; ``new_share`` of them sign up in the period."""
    codes = [c for c, _, _ in COUNTRIES]
    shares = np.array([s for _, s, _ in COUNTRIES])
    users, shoppers, tastes = [], [], {}
    period = (end - start).total_seconds()
    for k in range(n_users):
        uid = f"{id_prefix}{k:04d}"
        c = int(rng.choice(len(codes), p=shares / shares.sum()))
        is_new = rng.random() < new_share
        created = start.timestamp() + (
            rng.random() * 0.8 * period if is_new else -rng.random() * 730 * 86_400.0 - 3_600.0
        )
        taste0 = rng.dirichlet(np.full(len(TOPS), 0.4))
        drifts = bool(rng.random() < 0.4)
        taste1 = rng.dirichlet(np.full(len(TOPS), 0.4)) if drifts else taste0
        brands = frozenset(rng.choice(ALL_BRANDS, size=3, replace=False).tolist())
        sens = float(rng.lognormal(-0.2, 0.5))
        activity = float(rng.lognormal(np.log(0.9), 0.7))
        device_p = rng.dirichlet(np.array([6.0, 3.0, 1.0]))
        shoppers.append(
            _Shopper(
                index=k,
                user_id=uid,
                offset_h=COUNTRIES[c][2],
                country=codes[c],
                created=created,
                taste0=taste0,
                taste1=taste1,
                sub_pref=INTENT * rng.lognormal(0.0, 0.6, size=len(SUBCATS)),
                brands=brands,
                sensitivity=sens,
                activity=activity,
                conversion=float(rng.lognormal(0.0, 0.4)),
                device_p=device_p,
            )
        )
        consent = Consent(personalization=bool(rng.random() > 0.02), tracking=True)
        users.append(
            User(
                user_id=uid,
                consent=consent,
                created_at=datetime.fromtimestamp(round(created), tz=UTC),
                attributes={"country": codes[c], "age_band": AGE_BANDS[int(rng.integers(5))]},
            )
        )
        tastes[uid] = UserTaste(
            categories_start=dict(zip(TOPS, taste0.round(4).tolist(), strict=True)),
            categories_end=dict(zip(TOPS, taste1.round(4).tolist(), strict=True)),
            brands=tuple(sorted(brands)),
            price_sensitivity=round(sens, 4),
            sessions_per_week=round(activity, 4),
            drifts=drifts,
        )
    return users, shoppers, tastes


class Simulator:
    """Plays every shopper's sessions over the period and collects raw events."""

    def __init__(
        self,
        rng: np.random.Generator,
        cat: Catalogue,
        start: datetime,
        days: int,
        holidays: list[Holiday],
        rates: BehaviourRates | None = None,
    ) -> None:
        self.rng, self.cat, self.holidays = rng, cat, holidays
        self.rates = rates or BehaviourRates()
        self.start, self.days = start.timestamp(), days
        self.end = self.start + days * 86_400.0
        self.start_day: date = start.date()
        self.day_w = day_weights(self.start_day, days, holidays)
        self.hour_p = np.array(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS)
        self.sub_words = [s.nouns for _, s in SUBCATS]

    # -- time ---------------------------------------------------------------------------------
    def session_starts(self, s: _Shopper) -> list[float]:
        first_day = max(0, int((s.created - self.start) // 86_400))
        w = self.day_w[first_day:]
        if len(w) == 0:
            return []
        n = int(self.rng.poisson(s.activity * w.sum() / 7.0))
        days = first_day + self.rng.choice(len(w), size=n, p=w / w.sum())
        hours = self.rng.choice(24, size=n, p=self.hour_p)
        secs = (
            self.start
            + days * 86_400.0
            + (hours - s.offset_h) * 3_600.0
            + self.rng.integers(0, 3_600, size=n)
        )
        return sorted(float(t) for t in secs if max(s.created, self.start) < t < self.end)

    def _holiday(self, t: float) -> Holiday | None:
        day = self.start_day + timedelta(days=int((t - self.start) // 86_400))
        return holiday_on(day, self.holidays)

    # -- choices ------------------------------------------------------------------------------
    def _subcategory(self, s: _Shopper, t: float, holiday: Holiday | None) -> int:
        f = min(1.0, max(0.0, (t - self.start) / (self.end - self.start)))
        taste = (1 - f) * s.taste0 + f * s.taste1 + 0.01
        if holiday is not None:
            boost = [
                holiday.boost if (not holiday.categories or top in holiday.categories) else 1.0
                for top in TOPS
            ]
            taste = taste * np.array(boost)
        subs = SUBS_OF_TOP[draw(self.rng, taste)]
        return int(subs[draw(self.rng, s.sub_pref[subs])])

    def _item(self, s: _Shopper, sub: int, t: float, match: np.ndarray | None = None) -> int:
        """An item of ``sub`` created by ``t``; ``match`` weights the subcategory's items."""
        c = self.cat
        n = int(c.sub_created[sub].searchsorted(t, side="right"))  # items are oldest first
        if n == 0:
            return -1
        cands = c.by_sub[sub][:n]
        w = s.appeal[cands]
        fresh = int(c.sub_created[sub].searchsorted(t - 14 * 86_400.0, side="right"))
        if fresh < n:
            w[fresh:] *= self.rates.new_arrival_boost
        if match is not None:
            w *= match[:n]
        return int(cands[draw(self.rng, w)])

    def _match(self, sub: int, query: str) -> np.ndarray:
        """Weights of the subcategory's items for ``query``: 4 when a title shares a word."""
        masks = self.cat.sub_words[sub]
        hit = np.zeros(len(self.cat.by_sub[sub]), dtype=bool)
        for word in query.split():
            if word in masks:
                hit |= masks[word]
        return np.where(hit, 4.0, 1.0)

    def _query(self, sub: int, item: int) -> str:
        noun = self.sub_words[sub][int(self.rng.integers(len(self.sub_words[sub])))].lower()
        kind = int(self.rng.integers(4))
        if kind == 0:
            return noun
        if kind == 1:
            return f"{self.cat.brand[item].lower()} {noun}"
        if kind == 2:
            return f"{self.cat.adjective[item].lower()} {noun}"
        return f"{self.cat.material[item].lower()} {noun}"

    def _cart_p(self, s: _Shopper, item: int, holiday: Holiday | None) -> float:
        p = self.rates.cart * s.conversion * float(s.cart_fit[item])
        p *= self.rates.holiday_cart_boost if holiday is not None else 1.0
        return min(p, 0.6)

    def _review(self, rating: int, item: int) -> str:
        mood = "positive" if rating >= 4 else "neutral" if rating == 3 else "negative"
        noun = SUBCATS[int(self.cat.sub[item])][1].nouns[0].lower()
        opener = REVIEW_OPENERS[mood][int(self.rng.integers(len(REVIEW_OPENERS[mood])))]
        detail = REVIEW_DETAILS[mood][int(self.rng.integers(len(REVIEW_DETAILS[mood])))]
        return f"{opener.format(noun=noun)} {detail}"

    # -- sessions -----------------------------------------------------------------------------
    def run_user(self, s: _Shopper) -> list[Raw]:
        s.prepare(self.cat)
        out: list[Raw] = []
        t_free = -np.inf
        for k, t0 in enumerate(self.session_starts(s)):
            t = max(t0, t_free + SESSION_GAP)
            if t >= self.end:
                break
            t_free = self._session(s, f"{s.user_id}-s{k:03d}", t, out)
        s.appeal = s.cart_fit = np.zeros(0)  # free the per-item arrays
        return [e for e in out if e[0] < self.end]

    def _session(self, s: _Shopper, sid: str, t: float, out: list[Raw]) -> float:
        """Play one session starting at ``t``; append its events to ``out``; return its end."""
        rng, r, c = self.rng, self.rates, self.cat
        device = DEVICES[draw(rng, s.device_p)]
        holiday = self._holiday(t)
        extra = {"device": device}

        def emit(kind: str, item: int = -1, **more: object) -> None:
            nonlocal t
            out.append((t, s.index, len(out), kind, item, sid, {**extra, **more}))
            t += 5.0 + float(rng.exponential(40.0))

        due = sorted(p for p in s.pending if p[0] <= t)
        s.pending = [p for p in s.pending if p[0] > t]
        followups = []
        for _, kind, item in due:
            if kind == "rate":
                rating = min(5, max(1, round(1 + 4 * c.quality[item] + rng.normal(0, 0.8))))
                emit("rating", item, value=float(rating))
                if rng.random() < r.review_given_rating:
                    emit("review", item, text=self._review(rating, item))
            elif c.created[item] <= t:  # a complement to come back for, if it exists by now
                followups.append(item)

        cart: list[int] = []
        if followups:  # come back for the complement of an earlier purchase
            item = followups[0]
            emit("view", item)
            if c.in_stock[item] and rng.random() < 0.8:
                emit("add_to_cart", item, value=1.0)
                cart.append(item)
        sub = self._subcategory(s, t, holiday)
        match: np.ndarray | None = None
        if rng.random() < r.search:
            target = self._item(s, sub, t)
            if target >= 0:
                q = self._query(sub, target)
                emit("search", query=q)
                match = self._match(sub, q)
        n_views = int(rng.geometric(1.0 / r.views_mean))
        for _ in range(n_views):
            if rng.random() < r.switch_subcategory:
                sub, match = self._subcategory(s, t, holiday), None
            item = self._item(s, sub, t, match)
            if item < 0:
                continue
            emit("view", item)
            if rng.random() < r.favorite:
                emit("favorite", item)
            if (
                c.in_stock[item]
                and item not in cart
                and rng.random() < self._cart_p(s, item, holiday)
            ):
                emit("add_to_cart", item, value=1.0)
                cart.append(item)
                self._complements(item, t, cart, emit)
        if cart and rng.random() < r.checkout:
            t += float(rng.uniform(30, 300))
            kept = []
            for item in cart:
                if rng.random() < r.remove:
                    emit("remove_from_cart", item, value=1.0)
                else:
                    kept.append(item)
            for item in kept:
                emit("purchase", item, value=float(1 + (rng.random() < 0.1)))
                self._after_purchase(s, item, t, cart)
        return t

    def _complements(self, item: int, t: float, cart: list[int], emit: Callable[..., None]) -> None:
        c, rng = self.cat, self.rng
        for link in c.links.get(item, ()):
            if rng.random() >= link.prob:
                continue
            ok = (c.created[link.items] <= t) & c.in_stock[link.items]
            if not ok.any():
                continue
            w = link.weights * ok
            comp = int(link.items[draw(rng, w)])
            if comp in cart:
                continue
            emit("view", comp)
            if rng.random() < 0.9:
                emit("add_to_cart", comp, value=1.0)
                cart.append(comp)

    def _after_purchase(self, s: _Shopper, item: int, t: float, cart: list[int]) -> None:
        rng, r = self.rng, self.rates
        if rng.random() < r.rate:
            s.pending.append((t + float(rng.uniform(2, 12)) * 86_400.0, "rate", item))
        for link in self.cat.links.get(item, ()):
            if any(int(x) in cart for x in link.items):
                continue
            if rng.random() < link.prob * r.followup_complement:
                comp = int(link.items[draw(rng, link.weights)])
                s.pending.append((t + float(rng.uniform(0.5, 10)) * 86_400.0, "complement", comp))
