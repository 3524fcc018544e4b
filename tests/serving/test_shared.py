"""What one worker learns reaches the others through the shared online state; impression files
rotate by size.

Workers are simulated in one process by separate serving states (each bundle loaded on its own, so
each has its own co-visitation tables) and separate impression logs over one Redis key prefix —
what separate processes hold. The real two-process setup is ``test_workers.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from shopflow.config import load_settings
from shopflow.ingest.schema import Event
from shopflow.models.bundle import load_bundle
from shopflow.serving.context import RequestContext
from shopflow.serving.impressions import ImpressionLog, impression_files, read_impressions
from shopflow.serving.state import RecommendConfig, ServingState, state_from_bundle
from shopflow.store.online import OnlineState
from shopflow.store.store import Store
from tests.conftest import REDIS_URL, _redis_reason
from tests.serving import recommend_shop as shop

T0 = 1_760_000_000  # after the demo shop's training events, before now


@pytest.fixture
def redis_state() -> Iterator[OnlineState]:
    reason = _redis_reason()
    if reason:
        pytest.skip(reason)
    from shopflow.store.online_redis import RedisState

    state = RedisState(REDIS_URL, prefix=f"sftest:{uuid.uuid4().hex[:8]}:")
    yield state
    state.clear()


class Worker:
    """One worker's serving state and request context over the shared online state."""

    def __init__(self, bundle: Path, online: OnlineState, tmp: Path) -> None:
        self.state: ServingState = state_from_bundle(load_bundle(bundle), RecommendConfig())
        settings = load_settings(data_dir=tmp / uuid.uuid4().hex)
        self.context = RequestContext(Store.from_url("sqlite://"), online, settings,
                                      RecommendConfig())  # fmt: skip
        self.online = online

    def ingest(self, events: list[Event]) -> None:
        self.online.record(events)
        self.context.learn(self.state, events)

    def pair(self, a: str, b: str) -> float:
        ids = self.state.table.ids
        return self.state.sources.covisit.pair_weight(ids.index_of(a), ids.index_of(b))


def unpaired(worker: Worker) -> tuple[str, str]:
    """Two items of the shop with no co-visitation either way."""
    model, ext = worker.state.sources.covisit, worker.state.table.ids.external_ids
    for a in range(len(ext)):
        for b in range(a + 1, len(ext)):
            if model.pair_weight(a, b) == 0 and model.pair_weight(b, a) == 0:
                return ext[a], ext[b]
    raise AssertionError("every pair co-occurs")


@pytest.mark.redis
def test_covisitation_learned_by_one_worker_is_replayed_by_the_others(
    redis_state: OnlineState, tmp_path: Path
) -> None:
    bundle = shop.write(tmp_path / "bundles", models=["covisit", "trending"])
    a, b = Worker(bundle, redis_state, tmp_path), Worker(bundle, redis_state, tmp_path)
    x, y = unpaired(a)
    events = [
        ev for u in range(6) for ev in (
            Event(event_id=f"x{u}", type="view", user_id=f"s{u}", item_id=x, timestamp=T0 + u),
            Event(event_id=f"y{u}", type="view", user_id=f"s{u}", item_id=y, timestamp=T0 + u + 1),
        )
    ]  # fmt: skip
    a.ingest(events)
    learned = a.pair(x, y)
    assert learned > 0 and a.pair(y, x) > 0  # the ingesting worker learned at once
    assert b.pair(x, y) == 0  # the other one not yet ...
    assert b.context.shared.pull(b.state) > 0  # ... until it reads the log
    assert b.pair(x, y) == pytest.approx(learned) and b.pair(y, x) == pytest.approx(a.pair(y, x))
    assert a.context.shared.pull(a.state) == 0  # its own entries are not applied twice
    assert a.pair(x, y) == pytest.approx(learned)
    late = Worker(bundle, redis_state, tmp_path)  # started later: replays the bundle's log
    late.context.shared.pull(late.state)
    assert late.pair(x, y) == pytest.approx(learned)
    # and the replayed pairs change what the other worker recommends: y is now "like" x
    ids = b.state.table.ids
    similar = b.state.sources.similar(ids.index_of(x), 10)[0]
    assert ids.index_of(y) in similar.items.tolist()


def test_without_a_shared_state_nothing_is_published(tmp_path: Path) -> None:
    from shopflow.store.online import MemoryState

    bundle = shop.write(tmp_path / "bundles", models=["covisit"])
    w = Worker(bundle, MemoryState(), tmp_path)
    assert not w.context.shared.active
    x, y = unpaired(w)
    first = Event(event_id="1", type="view", user_id="s", item_id=x, timestamp=T0)
    w.ingest([first, Event(event_id="2", type="view", user_id="s", item_id=y, timestamp=T0 + 1)])
    assert w.pair(x, y) > 0 and w.context.shared.pull(w.state) == 0


def test_impression_files_rotate_by_size_and_keep_the_newest(tmp_path: Path) -> None:
    path = tmp_path / "impressions.jsonl"
    log = ImpressionLog(path, max_bytes=4_000, backups=3)
    rids = [
        log.record("home", "home:personal", "v1", [f"i{j}" for j in range(5)]) for _ in range(400)
    ]
    log.close()
    names = sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock"))
    assert names == ["impressions.jsonl", *(f"impressions.jsonl.{i}" for i in (1, 2, 3))]
    kept = [imp.recommendation_id for imp in read_impressions(path)]
    assert kept == rids[-len(kept) :]  # the newest, in order, none twice, none missing in between
    assert 3 * 4_000 < sum(p.stat().st_size for p in impression_files(path)) < 6 * 4_000
    assert all(p.stat().st_size < 4_000 + 4_000 // 16 + 200 for p in impression_files(path))


def test_two_workers_rotate_one_file_once_and_both_follow(tmp_path: Path) -> None:
    path = tmp_path / "impressions.jsonl"
    one = ImpressionLog(path, max_bytes=3_000, backups=50)
    two = ImpressionLog(path, max_bytes=3_000, backups=50)
    rids = []
    for k in range(300):
        rids.append((one if k % 2 else two).record("home", "s", "v", ["a", "b", "c"]))
    one.close()
    two.close()
    found = [imp.recommendation_id for imp in read_impressions(path)]
    assert sorted(found) == sorted(rids)  # every line in exactly one file
    assert len(impression_files(path)) > 5  # rotated many times, by either worker
    last = {imp.recommendation_id for imp in read_impressions(path, rotated=False)}
    assert rids[-1] in last and rids[-2] in last  # both write to the current file at the end


@pytest.mark.redis
def test_impression_counts_and_clicks_are_shared_between_workers(
    redis_state: OnlineState, tmp_path: Path
) -> None:
    one = ImpressionLog(tmp_path / "a.jsonl", shared=redis_state)
    two = ImpressionLog(tmp_path / "b.jsonl", shared=redis_state)
    rid = one.record("home", "home:personal", "v1", ["i1", "i2"])
    two.record("similar", "similar:item", "v1", ["i3"])
    one.flush()  # the app does this every share_seconds
    click = Event(event_id="c", type="click", user_id="u", item_id="i2", timestamp=T0,
                  recommendation_id=rid)  # fmt: skip
    assert two.attribute([click]) == 1  # the answer was given by the other worker
    two.flush()  # what each worker counted reaches the others within a flush
    stats = one.stats()
    assert stats == two.stats()
    assert stats["home:personal"]["impressions"] == 1 and stats["home:personal"]["click"] == 1
    assert stats["home:personal"]["items_shown"] == 2
    assert stats["similar:item"]["impressions"] == 1
    assert np.isclose(stats["home:personal"]["click_rate"], 1.0)


def test_recommendation_ids_are_distinct_in_threads_and_after_a_fork() -> None:
    """Ids come from a per-thread buffer of os.urandom bytes: no two answers share one, not across
    threads, and not between a worker and a child forked from it."""
    import os
    import re
    import threading

    from shopflow.serving.impressions import new_recommendation_id

    ids: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [new_recommendation_id() for _ in range(700)]  # past a buffer refill
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == len(ids) == 2_800
    assert all(re.fullmatch(r"r-[0-9a-f]{32}", i) for i in ids)
    new_recommendation_id()  # this thread's buffer holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, through the pipe
        os.write(write, new_recommendation_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child != new_recommendation_id() and child not in ids
