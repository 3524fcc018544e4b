"""Online state: what the service needs at request time, updated on every accepted event.

Per user, the bounded recent behaviour sequence (and the current session, derived from it); per
item, counters by event type and review totals (count, sentiment sum, positive count, star
ratings); time-bucketed trending scores. :class:`MemoryState` keeps it in-process (the embedded
default); :class:`shopflow.store.online_redis.RedisState` keeps it in Redis so that several API
workers share it. Both pass the same contract tests.

Example
-------
>>> from shopflow.ingest.schema import Event
>>> state = MemoryState(max_sequence=3)
>>> state.record([Event(event_id=f"e{i}", type="view", user_id="u", item_id=f"i{i}",
...                     timestamp=1_700_000_000 + i) for i in range(5)])
>>> [r.item_id for r in state.recent("u")]
['i2', 'i3', 'i4']
"""

from __future__ import annotations

import bisect
import threading
from abc import ABC, abstractmethod
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from shopflow.config import DEFAULT_EVENT_WEIGHTS, Settings
from shopflow.ingest.schema import Event
from shopflow.store.trend_window import TrendWindow


@dataclass(frozen=True, order=True)
class RecentEvent:
    """One event in a user's recent sequence (time in unix seconds)."""

    ts: float
    event_id: str
    type: str
    item_id: str | None = None
    session_id: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class ReviewTotals:
    """Reviews of one item (or of all items): how many, the sum of their sentiment scores in
    [-1, 1], how many scored positive (> 0.05), how many carried stars and their sum."""

    count: int = 0
    score_sum: float = 0.0
    positive: int = 0
    rated: int = 0
    stars_sum: float = 0.0

    def plus(self, score: float, stars: float | None) -> ReviewTotals:
        return ReviewTotals(
            self.count + 1,
            self.score_sum + score,
            self.positive + int(score > POSITIVE_REVIEW),
            self.rated + int(stars is not None),
            self.stars_sum + (stars or 0.0),
        )


POSITIVE_REVIEW = 0.05  # a review scoring above this counts as positive (VADER's convention)
ReviewRow = tuple[str, float, float | None]  # item id, sentiment score, stars (None: no rating)


def to_recent(e: Event) -> RecentEvent:
    return RecentEvent(
        ts=e.timestamp.timestamp(),
        event_id=e.event_id,
        type=e.type.value,
        item_id=e.item_id,
        session_id=e.session_id,
        query=e.query,
    )


def current_session(events: Sequence[RecentEvent], timeout_seconds: float) -> list[RecentEvent]:
    """The trailing run of ``events`` (oldest first) with gaps under the timeout and one session
    id."""
    if not events:
        return []
    out = [events[-1]]
    for prev in reversed(events[:-1]):
        cur = out[-1]
        if cur.ts - prev.ts > timeout_seconds:
            break
        if (
            cur.session_id is not None
            and prev.session_id is not None
            and (cur.session_id != prev.session_id)
        ):
            break
        out.append(prev)
    return out[::-1]


class OnlineState(ABC):
    """The online-state contract. ``record`` is called with each accepted (non-duplicate) batch."""

    def __init__(
        self,
        max_sequence: int = 200,
        session_timeout_seconds: float = 1_800.0,
        bucket_seconds: int = 3_600,
        buckets_kept: int = 48,
        event_weights: Mapping[str, float] | None = None,
    ) -> None:
        self.max_sequence = max_sequence
        self.session_timeout_seconds = session_timeout_seconds
        self.bucket_seconds = bucket_seconds
        self.buckets_kept = buckets_kept
        self.event_weights = dict(event_weights or DEFAULT_EVENT_WEIGHTS)

    @abstractmethod
    def record(self, events: Sequence[Event]) -> None:
        """Add accepted events to the users' sequences, item counters and trending buckets."""

    @abstractmethod
    def recent(self, user_id: str, n: int | None = None) -> list[RecentEvent]:
        """The user's most recent events (at most ``n``), oldest first."""

    @abstractmethod
    def item_counts(self, item_id: str) -> dict[str, int]:
        """How many events of each type the item has had."""

    @abstractmethod
    def trending(self, n: int = 20, window_buckets: int = 24) -> list[tuple[str, float]]:
        """Top items by event-weighted count over the latest ``window_buckets`` time buckets."""

    @abstractmethod
    def add_reviews(self, rows: Sequence[ReviewRow]) -> None:
        """Add scored reviews ``(item_id, score, stars)`` to their items' and the overall totals."""

    @abstractmethod
    def review_totals(self, item_ids: Sequence[str]) -> list[ReviewTotals]:
        """Review totals of each item (zeros for an item without reviews)."""

    @abstractmethod
    def review_overall(self) -> ReviewTotals:
        """Review totals over every item (the prior of each item's mean)."""

    @abstractmethod
    def forget_user(self, user_id: str) -> None:
        """Erase everything held about the user."""

    @abstractmethod
    def clear(self) -> None:
        """Erase all state."""

    def session(self, user_id: str) -> list[RecentEvent]:
        """The user's current session: recent events with no gap over the session timeout."""
        return current_session(self.recent(user_id), self.session_timeout_seconds)

    def weight(self, event_type: str) -> float:
        return self.event_weights.get(event_type, 0.0)

    def bucket(self, ts: float) -> int:
        return int(ts // self.bucket_seconds)

    # -- shared by the workers (``shared``: several processes see one state) --------------------
    # In one process there is nothing to share: these defaults keep nothing. ``RedisState``
    # implements them, so that what one worker learns (co-visitation, impression counts) reaches
    # the others (``serving.shared``, ``serving.impressions``).
    shared: bool = False

    # No-op default: nothing to share in one process; RedisState overrides it.
    def append_log(self, name: str, origin: str, payloads: Sequence[bytes]) -> None:  # noqa: B027
        """Append ``payloads`` from worker ``origin`` to the shared log ``name``."""

    def read_log(
        self, name: str, after: str, count: int = 10_000
    ) -> tuple[list[tuple[str, bytes]], str]:
        """Up to ``count`` ``(origin, payload)`` entries of log ``name`` after cursor ``after``
        (``"0"``: from the start), and the cursor to read on from."""
        return [], after

    # No-op default: nothing to share in one process; RedisState overrides it.
    def add_counts(self, name: str, counts: Mapping[str, Mapping[str, int]]) -> None:  # noqa: B027
        """Add ``{group: {field: n}}`` to the shared counters ``name``."""

    def read_counts(self, name: str) -> dict[str, dict[str, int]]:
        """The shared counters ``name`` as ``{group: {field: n}}``."""
        return {}

    # No-op default: nothing to share in one process; RedisState overrides it.
    def remember(self, values: Mapping[str, str], ttl_seconds: int) -> None:  # noqa: B027
        """Keep each ``{key: value}`` for ``ttl_seconds``."""

    def recall(self, key: str) -> str | None:
        """What :meth:`remember` kept under ``key`` (None: nothing, or expired)."""
        return None


TREND_WINDOW = 24  # buckets of the default trending window (``trending(window_buckets=24)``)


class MemoryState(OnlineState):
    """In-process online state; thread-safe."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self._seq: dict[str, list[RecentEvent]] = defaultdict(list)
        self._seen: dict[str, set[str]] = defaultdict(set)
        self._counts: dict[str, Counter[str]] = defaultdict(Counter)
        self._trend: dict[int, Counter[str]] = defaultdict(Counter)
        self._window = TrendWindow(TREND_WINDOW)  # the default window's sums, kept as they change
        self._reviews: dict[str, ReviewTotals] = {}
        self._reviews_all = ReviewTotals()

    def record(self, events: Sequence[Event]) -> None:
        with self._lock:
            for e in events:
                seen = self._seen[e.user_id]
                if e.event_id in seen:
                    continue
                seq = self._seq[e.user_id]
                rec = to_recent(e)
                bisect.insort(seq, rec)
                seen.add(e.event_id)
                if len(seq) > self.max_sequence:
                    for dropped in seq[: len(seq) - self.max_sequence]:
                        seen.discard(dropped.event_id)
                    del seq[: len(seq) - self.max_sequence]
                if e.item_id is not None:
                    self._counts[e.item_id][e.type.value] += 1
                    w = self.weight(e.type.value)
                    if w > 0:
                        b = self.bucket(rec.ts)
                        self._trend[b][e.item_id] += w
                        self._window.add(b, e.item_id, w, self._trend)
            if len(self._trend) > self.buckets_kept:
                for b in sorted(self._trend)[: len(self._trend) - self.buckets_kept]:
                    self._window.drop(b, self._trend.pop(b))

    def recent(self, user_id: str, n: int | None = None) -> list[RecentEvent]:
        with self._lock:
            seq = list(self._seq.get(user_id, ()))
        return seq if n is None else seq[-n:] if n > 0 else []

    def item_counts(self, item_id: str) -> dict[str, int]:
        with self._lock:
            return dict(self._counts.get(item_id, {}))

    def trending(self, n: int = 20, window_buckets: int = 24) -> list[tuple[str, float]]:
        with self._lock:
            if not self._trend:
                return []
            if window_buckets == self._window.window:  # kept up to date: no pass over buckets
                return self._window.top(n)
            last = max(self._trend)
            total: Counter[str] = Counter()
            for b, counter in self._trend.items():
                if b > last - window_buckets:
                    total.update(counter)
        return sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def add_reviews(self, rows: Sequence[ReviewRow]) -> None:
        with self._lock:
            for item_id, score, stars in rows:
                self._reviews[item_id] = self._reviews.get(item_id, ReviewTotals()).plus(
                    score, stars
                )
                self._reviews_all = self._reviews_all.plus(score, stars)

    def review_totals(self, item_ids: Sequence[str]) -> list[ReviewTotals]:
        with self._lock:
            return [self._reviews.get(i, ReviewTotals()) for i in item_ids]

    def review_overall(self) -> ReviewTotals:
        return self._reviews_all

    def forget_user(self, user_id: str) -> None:
        with self._lock:
            self._seq.pop(user_id, None)
            self._seen.pop(user_id, None)

    def clear(self) -> None:
        with self._lock:
            self._seq.clear()
            self._seen.clear()
            self._counts.clear()
            self._trend.clear()
            self._window = TrendWindow(TREND_WINDOW)
            self._reviews.clear()
            self._reviews_all = ReviewTotals()


def make_online_state(settings: Settings) -> OnlineState:
    """The online state the settings ask for: Redis when ``redis_url`` is set, else in-process."""
    kwargs = {
        "max_sequence": settings.online.max_sequence,
        "session_timeout_seconds": settings.online.session_timeout_seconds,
        "bucket_seconds": settings.online.trending_bucket_seconds,
        "buckets_kept": settings.online.trending_buckets_kept,
        "event_weights": settings.event_weights,
    }
    if settings.redis_url:
        from shopflow.store.online_redis import RedisState

        return RedisState(settings.redis_url, prefix=settings.redis_prefix, **kwargs)  # type: ignore[arg-type]
    return MemoryState(**kwargs)  # type: ignore[arg-type]
