"""The trending window kept up to date equals summing the window's buckets from scratch."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import UTC, datetime

import pytest

from shopflow.ingest.schema import Event
from shopflow.store.online import MemoryState
from shopflow.store.trend_window import TrendWindow


def _from_scratch(buckets: dict[int, Counter[str]], window: int, n: int) -> list[tuple[str, float]]:
    last = max(buckets)
    total: Counter[str] = Counter()
    for b, c in buckets.items():
        if b > last - window:
            total.update(c)
    ranked = sorted(((k, v) for k, v in total.items() if v > 0), key=lambda kv: (-kv[1], kv[0]))
    return ranked[:n]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_kept_sums_equal_a_full_recount(seed: int) -> None:
    rng = random.Random(seed)
    buckets: dict[int, Counter[str]] = defaultdict(Counter)
    window = TrendWindow(window=4)
    now = 100
    for step in range(3_000):
        if rng.random() < 0.01:
            now += rng.choice([1, 1, 2, 6])  # time moves on, sometimes past the whole window
        bucket = now - rng.choice([0, 0, 0, 1, 2, 3, 5])  # late events too, some out of the window
        item = f"i{rng.randrange(40)}"
        weight = rng.choice([1.0, 1.0, 3.0, 5.0])  # many ties
        buckets[bucket][item] += weight
        window.add(bucket, item, weight, buckets)
        if step % 97 == 0:
            for n in (1, 5, 40, 100):
                got, want = window.top(n), _from_scratch(buckets, 4, n)
                assert [k for k, _ in got] == [k for k, _ in want]
                assert [v for _, v in got] == pytest.approx([v for _, v in want])


def test_memory_state_trending_uses_it_and_survives_pruning() -> None:
    state = MemoryState(bucket_seconds=10, buckets_kept=3)  # fewer kept than the 24 of the window
    t0 = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
    rng = random.Random(3)
    events = [
        Event(
            event_id=f"e{k}",
            type=rng.choice(["view", "purchase"]),
            user_id=f"u{k % 7}",
            item_id=f"i{rng.randrange(12)}",
            timestamp=t0 + 10 * (k // 50),
        )
        for k in range(400)
    ]
    for lo in range(0, 400, 25):
        state.record(events[lo : lo + 25])
        fast = state.trending(n=12)
        slow = _from_scratch(dict(state._trend), 24, 12)
        assert [k for k, _ in fast] == [k for k, _ in slow]
        assert [v for _, v in fast] == pytest.approx([v for _, v in slow])
    state.clear()
    assert state.trending(n=5) == []
