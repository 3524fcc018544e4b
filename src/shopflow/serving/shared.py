"""Co-visitation learned online, shared by every worker through the online state (Redis).

Each worker keeps the co-visitation tables in its own memory and adds every event it ingests at
once (``RequestContext.learn``). With a shared online state (``OnlineState.shared``: Redis) it also
appends what it learned — the event's item and type and the items before it, as shop ids — to a
log named after the model bundle (``covisit:<version>``), and :class:`SharedLearning` replays the
entries of the *other* workers into this worker's tables every ``share_seconds`` (half a second by
default; :func:`watch_shared` is the app's task). So every worker ends with the same tables: its
own events at once, the others' within a poll. A worker that starts later replays the log of its
bundle from the beginning (the log keeps the latest ``RedisState.LOG_MAXLEN`` entries); a new bundle
starts a new log, since its training already holds what the old one learned.

Shop ids rather than dense indices travel in the log, because items upserted since training get
their dense index per worker (``serving.fresh``): an item a worker does not know yet is skipped.

Example
-------
>>> payload = encode("b", "view", ["a"], ["view"])
>>> decode(payload)
('b', 'view', ['a'], ['view'])
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence

import numpy as np
import orjson

from shopflow.serving.state import ServingState
from shopflow.store.online import OnlineState

log = logging.getLogger(__name__)

Learned = tuple[str, str, list[str], list[str]]  # item, event type, items before, their types


def encode(item: str, kind: str, before: Sequence[str], types: Sequence[str]) -> bytes:
    return orjson.dumps([item, kind, list(before), list(types)])


def decode(payload: bytes) -> Learned:
    item, kind, before, types = orjson.loads(payload)
    return item, kind, before, types


def log_name(st: ServingState) -> str:
    return f"covisit:{st.version or 'none'}"


class SharedLearning:
    """This worker's side of the shared co-visitation log (see the module docstring)."""

    def __init__(self, online: OnlineState) -> None:
        self.online = online
        self.origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this worker, this life
        self._cursor: tuple[str, str] = ("", "0")  # (log name, last entry read)
        self._lock = threading.Lock()
        self.applied = 0  # entries of other workers replayed here

    @property
    def active(self) -> bool:
        return self.online.shared

    def publish(
        self, st: ServingState, learned: Sequence[tuple[int, str, np.ndarray, np.ndarray]]
    ) -> None:
        """Append what this worker just learned (dense ids of ``st``) to the shared log."""
        if not learned or not self.active:
            return
        ext = st.table.ids.external_ids
        payloads = [
            encode(ext[item], kind, [ext[i] for i in before.tolist()], [str(t) for t in types])
            for item, kind, before, types in learned
        ]
        try:
            self.online.append_log(log_name(st), self.origin, payloads)
        except Exception:  # learning stays local; the other workers miss these pairs
            log.exception("co-visitation updates not shared")

    def pull(self, st: ServingState) -> int:
        """Replay the other workers' entries for ``st`` that this worker has not seen; how many."""
        if not self.active or st.sources.covisit is None:
            return 0
        name = log_name(st)
        done = 0
        with self._lock:  # one puller at a time: the cursor moves forward once
            if self._cursor[0] != name:
                self._cursor = (name, "0")  # a new bundle: its log from the start
            while True:
                rows, after = self.online.read_log(name, self._cursor[1])
                if not rows:
                    break
                self._cursor = (name, after)
                done += self._apply(st, [p for origin, p in rows if origin != self.origin])
        self.applied += done
        return done

    @staticmethod
    def _apply(st: ServingState, payloads: list[bytes]) -> int:
        ids, done = st.table.ids, 0
        for payload in payloads:
            item_id, kind, before_ids, types = decode(payload)
            item = ids.get(item_id)
            if item < 0:
                continue  # an item this worker has not been told about
            before = ids.to_index(before_ids, missing=-1)
            known = before >= 0
            st.sources.learn(before[known], np.array(types, dtype=str)[known], item, kind)
            done += 1
        return done


async def watch_shared(jobs: Sequence[Callable[[], object]], seconds: float) -> None:
    """Background task of the app: every ``seconds``, run ``jobs`` (pull the other workers'
    co-visitation, flush the impression counters) in a thread."""
    while True:
        await asyncio.sleep(seconds)
        for job in jobs:
            try:
                await asyncio.to_thread(job)
            except Exception:
                log.exception("shared state not synchronised", extra={"job": repr(job)})
