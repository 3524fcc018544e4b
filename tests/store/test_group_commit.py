"""Group commit: concurrent batches share a transaction, each is acknowledged only once durable.

The contract of :meth:`EventLog.append` holds for every caller of :class:`GroupCommit`: its result
names exactly the events it wrote (each id accepted by exactly one caller), each batch is whole or
absent, and nothing acknowledged is lost when the process is killed (SIGKILL, as in
``test_durability``). On both backends.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from shopflow.ingest.schema import Event
from shopflow.store.db import events
from shopflow.store.group_commit import GroupCommit
from shopflow.store.store import Store


def batch(prefix: str, ids: range, user: str = "u") -> list[Event]:
    return [
        Event(event_id=f"{prefix}{i}", type="view", user_id=user, item_id=f"i{i}",
              timestamp=1_700_000_000 + i)
        for i in ids
    ]  # fmt: skip


def stored_ids(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(events.c.event_id)).scalars())


def test_concurrent_overlapping_batches_are_written_exactly_once(store: Store) -> None:
    """16 threads × 10 batches of 50, each batch overlapping its neighbours by half."""
    writer = GroupCommit(store.events)
    batches = [batch("e", range(25 * b, 25 * b + 50)) for b in range(160)]
    try:
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(writer.append, batches))
    finally:
        writer.close()
    expected = {e.event_id for b in batches for e in b}
    ids = stored_ids(store)
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    accepted = [i for r in results for i in r.accepted_ids]
    assert len(accepted) == len(set(accepted)) == len(expected)  # each id acked by one caller
    for b, r in zip(batches, results, strict=True):
        assert r.accepted + r.duplicates == len(b)
        assert set(r.accepted_ids) | set(r.duplicate_ids) == {e.event_id for e in b}
    assert writer.batches == len(batches) and writer.commits <= len(batches)


def test_waiting_batches_share_one_commit(tmp_path: Path) -> None:
    """While the writer waits for the database (another connection holds the write lock), the
    batches that arrive queue up; then one commit takes all of them."""
    db = tmp_path / "shop.db"
    store = Store.from_url(f"sqlite:///{db}")
    writer = GroupCommit(store.events)
    blocker = sqlite3.connect(db, timeout=30)
    blocker.execute("BEGIN IMMEDIATE")  # the writer's transaction waits for this one
    try:
        with ThreadPoolExecutor(8) as pool:
            first = pool.submit(writer.append, batch("b0-", range(10)))
            deadline = time.monotonic() + 30
            while (writer._thread is None or writer._queue.qsize()) and time.monotonic() < deadline:
                time.sleep(0.01)  # until the writer has taken the first batch (and waits)
            time.sleep(0.1)
            rest = [pool.submit(writer.append, batch(f"b{b}-", range(10))) for b in range(1, 8)]
            while writer._queue.qsize() < 7 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert writer._queue.qsize() == 7, "the batches did not queue behind the lock"
            blocker.rollback()
            results = [f.result(timeout=60) for f in [first, *rest]]
    finally:
        blocker.close()
        writer.close()
        store.close()
    assert [r.accepted for r in results] == [10] * 8
    assert writer.batches == 8 and writer.commits == 2  # the first alone, then the seven


def test_a_failing_batch_fails_only_its_own_caller(sqlite_store: Store) -> None:
    """The group is retried batch by batch: the good batches are written, the bad one raises."""
    writer = GroupCommit(sqlite_store.events)
    bad = [
        Event.model_construct(**{**batch("x", range(1))[0].__dict__, "context": {"o": object()}})
    ]
    outcome: dict[str, object] = {}

    def run(name: str, b: list[Event]) -> None:
        try:
            outcome[name] = writer.append(b).accepted
        except Exception as exc:  # the test records what the caller saw
            outcome[name] = type(exc).__name__

    # park the writer on a first batch whose commit waits for the database lock, so that the
    # good and the bad batch land in one group behind it
    conn = sqlite3.connect(Path(str(sqlite_store.engine.url.database)), timeout=30)
    conn.execute("BEGIN IMMEDIATE")
    threads = [threading.Thread(target=run, args=("first", batch("f", range(3))))]
    threads[0].start()
    while writer._thread is None or writer._queue.qsize():
        time.sleep(0.01)
    time.sleep(0.05)
    threads += [
        threading.Thread(target=run, args=("good", batch("g", range(5)))),
        threading.Thread(target=run, args=("bad", bad)),
    ]
    for t in threads[1:]:
        t.start()
    while writer._queue.qsize() < 2:
        time.sleep(0.01)
    conn.rollback()
    conn.close()
    for t in threads:
        t.join(timeout=60)
    writer.close()
    assert outcome["first"] == 3 and outcome["good"] == 5
    assert outcome["bad"] not in (0, 1)  # an exception name, not a count
    assert sorted(stored_ids(sqlite_store)) == sorted([f"f{i}" for i in range(3)] +
                                                      [f"g{i}" for i in range(5)])  # fmt: skip


def test_closed_writer_refuses_and_empty_batch_is_a_no_op(sqlite_store: Store) -> None:
    writer = GroupCommit(sqlite_store.events)
    assert writer.append([]).accepted == 0 and writer._thread is None
    writer.close()
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(batch("e", range(1)))
    with sqlite_store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(events)).scalar_one() == 0


THREADED_APPENDER = textwrap.dedent(
    """
    import sys, threading
    from shopflow.ingest.schema import Event
    from shopflow.store.group_commit import GroupCommit
    from shopflow.store.store import Store

    url, run, size, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    store = Store.from_url(url)  # synchronous=FULL, the default
    writer = GroupCommit(store.events)
    out = threading.Lock()

    def work(t):
        for b in range(100_000):
            name = f"{run}-{t}.{b}"
            batch = [Event(event_id=f"{name}-{i}", type="view", user_id=f"u{i % 13}",
                           item_id=f"i{i}", timestamp=1_700_000_000 + b) for i in range(size)]
            result = writer.append(batch)
            with out:
                sys.stdout.write(f"ack {name} {','.join(result.accepted_ids)}\\n")
                sys.stdout.flush()

    for t in range(threads):
        threading.Thread(target=work, args=(t,)).start()
    """
)


@pytest.mark.slow
def test_group_committed_batches_survive_sigkill_whole_and_once(tmp_path: Path) -> None:
    """Four threads append through one writer; SIGKILL; every acked batch whole, nothing twice."""
    script = tmp_path / "appender.py"
    script.write_text(THREADED_APPENDER)
    db = tmp_path / "log.db"
    size, threads = 200, 4
    acked: dict[str, list[str]] = {}
    for run, (wait_acks, extra_sleep) in enumerate([(6, 0.0), (10, 0.05), (14, 0.13)]):
        proc = subprocess.Popen(
            [sys.executable, str(script), f"sqlite:///{db}", f"r{run}", str(size), str(threads)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for _ in range(wait_acks):
            line = proc.stdout.readline()
            assert line.startswith("ack "), f"appender died early: {line!r}"
            _, name, ids = line.split()
            acked[name] = ids.split(",")
        time.sleep(extra_sleep)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for line in proc.stdout.read().splitlines(keepends=True):  # acks still in the pipe
            if line.endswith("\n") and line.startswith("ack "):
                _, name, ids = line.split()
                acked[name] = ids.split(",")
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [r[0] for r in conn.execute("SELECT event_id FROM events")]
    assert len(ids) == len(set(ids))
    present = set(ids)
    for name, batch_ids in acked.items():
        assert len(batch_ids) == size
        assert set(batch_ids) <= present, f"acknowledged batch {name} lost"
    per_batch: dict[str, int] = {}
    for event_id in ids:
        name = event_id.rsplit("-", 1)[0]
        per_batch[name] = per_batch.get(name, 0) + 1
    assert set(per_batch.values()) == {size}, "a batch was written in part"
