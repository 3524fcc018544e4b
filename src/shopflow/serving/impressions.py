"""The impression log: every answer the service gives, under its ``recommendation_id``.

Each answer is one JSON line in ``<data_dir>/impressions/impressions.jsonl``: recommendation id,
time, scenario, strategy, model version and the item ids shown, in order — no user id, no query,
nothing personal. Lines are written with one ``write`` on a file opened for appending, so several
worker processes can share the file. When a later event carries a ``recommendation_id`` (a click,
a purchase), :meth:`ImpressionLog.attribute` counts it for the strategy that produced the answer,
which gives each strategy's click-through and conversion (``stats``). Offline, the file joins the
event log on ``recommendation_id``.

The file is rotated by size: past ``max_bytes`` it becomes ``impressions.jsonl.1`` (the older ones
move to ``.2`` … ``.{backups}``, the oldest is deleted) and a new file starts. Workers sharing the
file rotate it once between them (a lock file) and each reopens the new one when it sees the
rename. :func:`read_impressions` reads the rotated files too, oldest first.

With a shared online state (Redis, several workers), the counts and the strategy of each answer
also go to the online state (:meth:`ImpressionLog.flush`, every half second from the app), so that
``stats`` covers every worker and a click that reaches another worker than the answer is still
credited to its strategy.

Example
-------
>>> import tempfile
>>> from pathlib import Path
>>> log = ImpressionLog(Path(tempfile.mkdtemp()) / "impressions.jsonl")
>>> rid = log.record("home", "home:personal", "v1", ["a", "b"])
>>> log.get(rid).items
('a', 'b')
>>> log.stats()["home:personal"]["impressions"]
1
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson

from shopflow.ingest.schema import Event
from shopflow.store.online import OnlineState

log = logging.getLogger(__name__)

ATTRIBUTED_TYPES = ("click", "view", "add_to_cart", "purchase")
MAX_BYTES = 64 * 1024 * 1024  # an impression file is rotated past this size ...
BACKUPS = 5  # ... and this many rotated files are kept
SHARED_TTL_SECONDS = 7 * 86_400  # how long another worker can attribute an answer's events
COUNTS = "impressions"  # name of the shared counters


class Impression(NamedTuple):
    """One logged answer (a named tuple: one per answer, so cheap to make)."""

    recommendation_id: str
    ts: float
    scenario: str
    strategy: str
    model_version: str | None
    items: tuple[str, ...]


_RANDOM = threading.local()  # per thread: unused bytes of the operating system's randomness


def new_recommendation_id() -> str:
    """A fresh, unguessable id: ``r-`` and 32 hex digits, as random as uuid4.

    The bytes come from ``os.urandom`` 4 KiB at a time (one system call per 256 ids).
    """
    buf: bytes = getattr(_RANDOM, "buf", b"")
    pos: int = getattr(_RANDOM, "pos", 0)
    if pos + 16 > len(buf):
        buf, pos = os.urandom(4096), 0
        _RANDOM.buf = buf
    _RANDOM.pos = pos + 16
    return "r-" + buf[pos : pos + 16].hex()


def _forget_random() -> None:  # a forked child must not hand out its parent's next ids
    _RANDOM.__dict__.clear()


os.register_at_fork(after_in_child=_forget_random)


class ImpressionLog:
    """Append-only impression file plus an in-memory index of the latest ``keep`` impressions.

    Parameters
    ----------
    path
        The JSON-lines file (its folder is created); None keeps impressions in memory only.
    keep
        How many recent impressions stay in memory for attribution.
    max_bytes, backups
        Rotation: past ``max_bytes`` the file is renamed ``.1`` and ``backups`` old files kept.
    shared
        A shared online state (``shared`` True): counts and strategies go there too (``flush``).
    """

    def __init__(
        self,
        path: Path | None,
        keep: int = 100_000,
        max_bytes: int = MAX_BYTES,
        backups: int = BACKUPS,
        shared: OnlineState | None = None,
    ) -> None:
        self.path = path
        self.keep = keep
        self.max_bytes = max_bytes
        self.backups = max(1, backups)
        self.shared = shared if shared is not None and shared.shared else None
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, Impression] = OrderedDict()
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._pending: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._pending_ids: dict[str, str] = {}  # recommendation id → strategy, not shared yet
        self._fd: int | None = None
        self._unchecked = 0  # bytes written since the size was last looked at
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = self._open()

    def _open(self) -> int:
        assert self.path is not None
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(
        self,
        scenario: str,
        strategy: str,
        model_version: str | None,
        items: Sequence[str],
        recommendation_id: str | None = None,
    ) -> str:
        """Log one answer and return its recommendation id (a new one unless given)."""
        rid = recommendation_id or new_recommendation_id()
        imp = Impression(rid, time.time(), scenario, strategy, model_version, tuple(items))
        line = orjson.dumps(
            {
                "recommendation_id": rid,
                "ts": round(imp.ts, 3),
                "scenario": scenario,
                "strategy": strategy,
                "model_version": model_version,
                "items": list(items),
            }
        )
        with self._lock:
            self._recent[rid] = imp
            if len(self._recent) > self.keep:
                self._recent.popitem(last=False)
            for counts in (self._counts[strategy], self._pending[strategy]):
                counts["impressions"] += 1
                counts["items_shown"] += len(items)
            if self.shared is not None:
                self._pending_ids[rid] = strategy
            fd = self._fd
            self._unchecked += len(line) + 1
            check = self._unchecked >= min(self.max_bytes // 16, 1 << 20)
            if check:
                self._unchecked = 0
        if fd is not None:
            try:
                os.write(fd, line + b"\n")
                if check:
                    self._rotate_if_due()
            except OSError:  # a full disk must not fail the answer
                log.exception("impression not written")
        return rid

    # -- rotation ---------------------------------------------------------------------------------
    def _rotate_if_due(self) -> None:
        """Rotate the file past ``max_bytes`` (once among the workers sharing it); reopen the file
        when another worker rotated it."""
        assert self.path is not None
        with self._lock:
            fd = self._fd
            if fd is None:
                return
            mine = os.fstat(fd)
            try:
                there = os.stat(self.path)
            except FileNotFoundError:
                there = None
            if there is not None and there.st_ino == mine.st_ino and mine.st_size < self.max_bytes:
                return
            if there is not None and there.st_ino == mine.st_ino:
                with open(self.path.with_name(self.path.name + ".lock"), "a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)  # one worker rotates; the others reopen
                    now = os.stat(self.path)
                    if now.st_ino == mine.st_ino and now.st_size >= self.max_bytes:
                        self._shift()
            self._fd = self._open()
            os.close(fd)

    def _shift(self) -> None:
        """``path`` → ``path.1`` → … → ``path.{backups}`` (the oldest is deleted)."""
        assert self.path is not None
        name = self.path.name
        oldest = self.path.with_name(f"{name}.{self.backups}")
        oldest.unlink(missing_ok=True)
        for i in range(self.backups - 1, 0, -1):
            older = self.path.with_name(f"{name}.{i}")
            if older.exists():
                older.rename(self.path.with_name(f"{name}.{i + 1}"))
        self.path.rename(self.path.with_name(f"{name}.1"))

    def get(self, recommendation_id: str) -> Impression | None:
        """The impression of ``recommendation_id`` if this process logged it recently."""
        with self._lock:
            return self._recent.get(recommendation_id)

    def attribute(self, events: Sequence[Event]) -> int:
        """Count events carrying a known ``recommendation_id`` for its strategy; return how many.

        With a shared state, an answer another worker gave is known by its strategy (the items it
        showed are not: ``*_on_shown`` counts only this worker's answers)."""
        found = 0
        for e in events:
            if not e.recommendation_id or e.type.value not in ATTRIBUTED_TYPES:
                continue
            imp = self.get(e.recommendation_id)
            strategy = imp.strategy if imp is not None else self._shared_strategy(e)
            with self._lock:
                strategy = strategy or "(unknown)"
                counts = [self._counts[strategy], self._pending[strategy]]
                for c in counts:
                    c[e.type.value] += 1
                if imp is not None and e.item_id is not None and e.item_id in imp.items:
                    for c in counts:
                        c[f"{e.type.value}_on_shown"] += 1
            found += strategy != "(unknown)"
        return found

    def _shared_strategy(self, e: Event) -> str | None:
        if self.shared is None or not e.recommendation_id:
            return None
        with self._lock:
            waiting = self._pending_ids.get(e.recommendation_id)
        if waiting is not None:
            return waiting
        try:
            return self.shared.recall(f"rid:{e.recommendation_id}")
        except Exception:
            log.exception("shared impression not read")
            return None

    def flush(self) -> None:
        """Send the counts and strategies gathered since the last flush to the shared state."""
        if self.shared is None:
            return
        with self._lock:
            pending, self._pending = self._pending, defaultdict(lambda: defaultdict(int))
            ids, self._pending_ids = self._pending_ids, {}
        self.shared.remember({f"rid:{r}": s for r, s in ids.items()}, SHARED_TTL_SECONDS)
        self.shared.add_counts(COUNTS, pending)

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per strategy: impressions, items shown, and attributed clicks, carts and purchases
        (of every worker with a shared state, else of this process)."""
        if self.shared is not None:
            self.flush()
            out: dict[str, dict[str, Any]] = {
                s: dict(c) for s, c in self.shared.read_counts(COUNTS).items()
            }
        else:
            with self._lock:
                out = {s: dict(c) for s, c in self._counts.items()}
        for c in out.values():
            shown = c.get("impressions", 0)
            if shown:
                c["click_rate"] = round(c.get("click", 0) / shown, 4)
                c["purchase_rate"] = round(c.get("purchase", 0) / shown, 4)
        return out

    def close(self) -> None:
        with self._lock:
            fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def impression_files(path: Path) -> list[Path]:
    """``path`` and its rotated files (``path.1``, ``path.2``, …), oldest first."""
    rotated = []
    for p in path.parent.glob(path.name + ".*"):
        suffix = p.name[len(path.name) + 1 :]
        if suffix.isdigit():
            rotated.append((int(suffix), p))
    files = [p for _, p in sorted(rotated, reverse=True)]
    return files + ([path] if path.exists() else [])


def read_impressions(path: Path, rotated: bool = True) -> Iterator[Impression]:
    """The impressions of a log file (and of its rotated files, by default), oldest first (for
    offline attribution)."""
    for file in impression_files(path) if rotated else [path]:
        with open(file, "rb") as fh:
            for line in fh:
                if line.strip():
                    r = orjson.loads(line)
                    yield Impression(
                        r["recommendation_id"],
                        r["ts"],
                        r["scenario"],
                        r["strategy"],
                        r["model_version"],
                        tuple(r["items"]),
                    )
