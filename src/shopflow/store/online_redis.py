"""Online state in Redis, shared by every API worker (same contract as :class:`MemoryState`).

Keys (all under ``prefix``): ``u:{user}`` a sorted set of the user's recent events scored by time;
``c:{item}`` a hash of counts by event type; ``t:{bucket}`` a sorted set of weighted item counts per
time bucket, with ``tb`` the sorted set of buckets that exist; ``r:{item}`` and ``rall`` hashes of
review totals (``n`` count, ``s`` sentiment sum, ``p`` positive, ``r`` rated, ``t`` stars sum);
``log:{name}`` streams of what workers learned (``o`` origin, ``p`` payload), ``n:{name}`` hashes of
shared counters (field ``group<US>field``), ``m:{key}`` short-lived values (``remember``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import redis

from shopflow.errors import BackendUnavailable
from shopflow.ingest.schema import Event
from shopflow.store.online import (
    POSITIVE_REVIEW,
    OnlineState,
    RecentEvent,
    ReviewRow,
    ReviewTotals,
    to_recent,
)

_REVIEW_FIELDS = ("n", "s", "p", "r", "t")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _totals(values: Sequence[Any]) -> ReviewTotals:
    n, s, p, r, t = (float(v) if v is not None else 0.0 for v in values)
    return ReviewTotals(int(n), s, int(p), int(r), t)


class RedisState(OnlineState):
    def __init__(self, url: str, prefix: str = "shopflow:", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_connect_timeout=5)
        try:
            self.client.ping()
        except redis.RedisError as exc:
            raise BackendUnavailable(f"cannot reach Redis at {url}: {exc}") from exc

    def _k(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def record(self, events: Sequence[Event]) -> None:
        if not events:
            return
        pipe = self.client.pipeline(transaction=True)
        users: set[str] = set()
        buckets: set[int] = set()
        for e in events:
            rec = to_recent(e)
            member = orjson.dumps([rec.event_id, rec.type, rec.item_id, rec.session_id, rec.query])
            ukey = self._k("u", e.user_id)
            pipe.zadd(ukey, {member: rec.ts}, nx=True)
            users.add(ukey)
            if e.item_id is not None:
                pipe.hincrby(self._k("c", e.item_id), e.type.value, 1)
                w = self.weight(e.type.value)
                if w > 0:
                    b = self.bucket(rec.ts)
                    pipe.zincrby(self._k("t", str(b)), w, e.item_id)
                    buckets.add(b)
        for ukey in users:
            pipe.zremrangebyrank(ukey, 0, -self.max_sequence - 1)
        if buckets:
            pipe.zadd(self._k("tb"), {str(b): b for b in buckets})
        pipe.execute()
        self._prune_buckets()

    def _prune_buckets(self) -> None:
        extra = self.client.zcard(self._k("tb")) - self.buckets_kept
        if extra > 0:
            old = self.client.zrange(self._k("tb"), 0, extra - 1)
            pipe = self.client.pipeline(transaction=True)
            for b in old:
                pipe.delete(self._k("t", b.decode()))
            pipe.zrem(self._k("tb"), *old)
            pipe.execute()

    def recent(self, user_id: str, n: int | None = None) -> list[RecentEvent]:
        if n is not None and n <= 0:
            return []
        start = 0 if n is None else -n
        rows = self.client.zrange(self._k("u", user_id), start, -1, withscores=True)
        out = []
        for member, ts in rows:
            event_id, typ, item_id, session_id, query = orjson.loads(member)
            out.append(RecentEvent(ts, event_id, typ, item_id, session_id, query))
        out.sort()
        return out

    def item_counts(self, item_id: str) -> dict[str, int]:
        raw = self.client.hgetall(self._k("c", item_id))
        return {k.decode(): int(v) for k, v in raw.items()}

    def trending(self, n: int = 20, window_buckets: int = 24) -> list[tuple[str, float]]:
        latest = self.client.zrange(self._k("tb"), -1, -1, withscores=True)
        if not latest:
            return []
        last = int(latest[0][1])
        keys = [
            self._k("t", b.decode())
            for b in self.client.zrangebyscore(self._k("tb"), last - window_buckets + 1, last)
        ]
        rows = self.client.zunion(keys, withscores=True)
        scored = [(m.decode(), float(s)) for m, s in rows]
        return sorted(scored, key=lambda kv: (-kv[1], kv[0]))[:n]

    def add_reviews(self, rows: Sequence[ReviewRow]) -> None:
        if not rows:
            return
        pipe = self.client.pipeline(transaction=True)
        for item_id, score, stars in rows:
            for key in (self._k("r", item_id), self._k("rall")):
                pipe.hincrby(key, "n", 1)
                pipe.hincrbyfloat(key, "s", float(score))
                if score > POSITIVE_REVIEW:
                    pipe.hincrby(key, "p", 1)
                if stars is not None:
                    pipe.hincrby(key, "r", 1)
                    pipe.hincrbyfloat(key, "t", float(stars))
        pipe.execute()

    def review_totals(self, item_ids: Sequence[str]) -> list[ReviewTotals]:
        if not item_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for item_id in item_ids:
            pipe.hmget(self._k("r", item_id), _REVIEW_FIELDS)
        return [_totals(values) for values in pipe.execute()]

    def review_overall(self) -> ReviewTotals:
        return _totals(self.client.hmget(self._k("rall"), _REVIEW_FIELDS))

    # -- shared by the workers ---------------------------------------------------------------------
    shared = True
    LOG_MAXLEN = 500_000  # entries a shared log keeps (the oldest are trimmed, approximately)

    def append_log(self, name: str, origin: str, payloads: Sequence[bytes]) -> None:
        if not payloads:
            return
        pipe = self.client.pipeline(transaction=False)
        key = self._k("log", name)
        for p in payloads:
            pipe.xadd(key, {"o": origin, "p": p}, maxlen=self.LOG_MAXLEN, approximate=True)
        pipe.execute()

    def read_log(
        self, name: str, after: str, count: int = 10_000
    ) -> tuple[list[tuple[str, bytes]], str]:
        start = "-" if after in ("0", "0-0") else f"({after}"
        rows: Any = self.client.xrange(self._k("log", name), min=start, max="+", count=count)
        if not rows:
            return [], after
        out = [(_text(fields[b"o"]), bytes(fields[b"p"])) for _, fields in rows]
        return out, _text(rows[-1][0])

    def add_counts(self, name: str, counts: Mapping[str, Mapping[str, int]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for group, fields in counts.items():
            for field, n in fields.items():
                if n:
                    pipe.hincrby(self._k("n", name), f"{group}\x1f{field}", int(n))
        pipe.execute()

    def read_counts(self, name: str) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        raw: Any = self.client.hgetall(self._k("n", name))
        for key, n in raw.items():
            group, _, field = _text(key).partition("\x1f")
            out.setdefault(group, {})[field] = int(n)
        return out

    def remember(self, values: Mapping[str, str], ttl_seconds: int) -> None:
        if not values:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, value in values.items():
            pipe.set(self._k("m", key), value, ex=ttl_seconds)
        pipe.execute()

    def recall(self, key: str) -> str | None:
        raw: Any = self.client.get(self._k("m", key))
        return None if raw is None else _text(raw)

    def forget_user(self, user_id: str) -> None:
        self.client.delete(self._k("u", user_id))

    def clear(self) -> None:
        cursor = 0
        while True:
            cursor, keys = self.client.scan(cursor, match=self.prefix + "*", count=1000)
            if keys:
                self.client.delete(*keys)
            if cursor == 0:
                break
