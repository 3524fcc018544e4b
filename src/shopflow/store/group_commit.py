"""Group commit: concurrent appends to the event log share one transaction and one fsync.

With SQLite ``synchronous=FULL`` every commit waits for an fsync of the write-ahead log, and only
one writer may hold the database at a time, so batches that arrive together (several HTTP requests
in flight) would otherwise queue up behind each other's fsync. :class:`GroupCommit` hands every
batch to one writer thread, which takes whatever batches are waiting, writes them in one transaction
(:meth:`EventLog.append_many <shopflow.store.event_log.EventLog.append_many>`) and then wakes each
caller with its own result. A caller still returns only after *its* events are committed, so
"durable before acknowledged" holds exactly as with :meth:`EventLog.append`; each batch is still
all-or-nothing and idempotent by ``event_id``.

When the group transaction fails (a broken row, a full disk), every batch of the group is retried
alone, so one bad batch fails only its own caller.

Example
-------
>>> from shopflow.ingest.schema import Event
>>> from shopflow.store.db import make_engine
>>> from shopflow.store.event_log import EventLog
>>> writer = GroupCommit(EventLog(make_engine("sqlite://")))
>>> e = Event(event_id="e1", type="view", user_id="u", item_id="i", timestamp=1_700_000_000)
>>> writer.append([e]).accepted, writer.append([e]).duplicates
(1, 1)
>>> writer.close()
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from typing import cast

from shopflow.ingest.schema import Event
from shopflow.store.event_log import AppendResult, EventLog

log = logging.getLogger(__name__)

MAX_GROUP_EVENTS = 20_000  # events written in one transaction at most
_STOP = object()


class GroupCommit:
    """One writer thread that commits the waiting batches together (see the module docstring).

    Parameters
    ----------
    event_log
        Where the events go.
    max_group_events
        A group closes when it holds this many events (the next batches wait for the next commit).
    """

    def __init__(self, event_log: EventLog, max_group_events: int = MAX_GROUP_EVENTS) -> None:
        self.event_log = event_log
        self.max_group_events = max_group_events
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.commits = 0  # transactions written (groups), for tests and metrics
        self.batches = 0  # batches written

    def append(self, batch: Sequence[Event]) -> AppendResult:
        """Write ``batch`` (with whatever else is waiting); return after the commit.

        Raises whatever writing ``batch`` alone raises (the group is retried batch by batch).
        """
        if not batch:
            return AppendResult()
        future: Future[AppendResult] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the event writer is closed")
            if self._thread is None:  # started lazily: in the process (worker) that writes
                self._thread = threading.Thread(
                    target=self._run, name="shopflow-group-commit", daemon=True
                )
                self._thread.start()
            self._queue.put((list(batch), future))
        return future.result()

    def close(self) -> None:
        """Write what is waiting, then stop the writer thread."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join(timeout=60)

    # -- the writer thread ------------------------------------------------------------------------
    def _run(self) -> None:
        stop = False
        while not stop:
            group: list[tuple[list[Event], Future[AppendResult]]] = []
            size = 0
            item = self._queue.get()  # block for the first batch
            while True:
                if item is _STOP:
                    stop = True
                else:
                    batch, future = cast(tuple[list[Event], Future[AppendResult]], item)
                    group.append((batch, future))
                    size += len(batch)
                if stop or size >= self.max_group_events:
                    break
                try:
                    item = self._queue.get_nowait()  # whatever else is already waiting
                except queue.Empty:
                    break
            if group:
                self._write(group)

    def _write(self, group: list[tuple[list[Event], Future[AppendResult]]]) -> None:
        try:
            results = self.event_log.append_many([b for b, _ in group])
        except Exception as exc:
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            log.warning(
                "group commit failed; writing its %d batches one by one", len(group), exc_info=True
            )
            for batch, future in group:
                try:
                    future.set_result(self.event_log.append(batch))
                except Exception as exc:
                    future.set_exception(exc)
            self.commits += len(group)
            self.batches += len(group)
            return
        self.commits += 1
        self.batches += len(group)
        for (_, future), result in zip(group, results, strict=True):
            future.set_result(result)
