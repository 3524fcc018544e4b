"""The impression log: every answer the service gives, under its ``recommendation_id``.

Each answer is one JSON line in ``<data_dir>/impressions/impressions.jsonl``: recommendation id,
time, scenario, strategy, model version and the item ids shown, in order — no user id, no query,
nothing personal. Lines are written with one ``write`` on a file opened for appending, so several
worker processes can share the file. When a later event carries a ``recommendation_id`` (a click,
a purchase), :meth:`ImpressionLog.attribute` counts it for the strategy that produced the answer,
which gives each strategy's click-through and conversion (``stats``). Offline, the file joins the
event log on ``recommendation_id``.

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

import logging
import os
import threading
import time
import uuid
from collections import OrderedDict, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shopflow.ingest.schema import Event

log = logging.getLogger(__name__)

ATTRIBUTED_TYPES = ("click", "view", "add_to_cart", "purchase")


@dataclass(frozen=True)
class Impression:
    """One logged answer."""

    recommendation_id: str
    ts: float
    scenario: str
    strategy: str
    model_version: str | None
    items: tuple[str, ...]


def new_recommendation_id() -> str:
    """A fresh, unguessable id: ``r-`` and 32 hex digits."""
    return f"r-{uuid.uuid4().hex}"


class ImpressionLog:
    """Append-only impression file plus an in-memory index of the latest ``keep`` impressions.

    Parameters
    ----------
    path
        The JSON-lines file (its folder is created); None keeps impressions in memory only.
    keep
        How many recent impressions stay in memory for attribution.
    """

    def __init__(self, path: Path | None, keep: int = 100_000) -> None:
        self.path = path
        self.keep = keep
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, Impression] = OrderedDict()
        self._counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self._fd: int | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

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
            counts = self._counts[strategy]
            counts["impressions"] += 1
            counts["items_shown"] += len(items)
            fd = self._fd
        if fd is not None:
            try:
                os.write(fd, line + b"\n")
            except OSError:  # a full disk must not fail the answer
                log.exception("impression not written")
        return rid

    def get(self, recommendation_id: str) -> Impression | None:
        """The impression of ``recommendation_id`` if this process logged it recently."""
        with self._lock:
            return self._recent.get(recommendation_id)

    def attribute(self, events: Sequence[Event]) -> int:
        """Count events carrying a known ``recommendation_id`` for its strategy; return how many."""
        found = 0
        for e in events:
            if not e.recommendation_id or e.type.value not in ATTRIBUTED_TYPES:
                continue
            imp = self.get(e.recommendation_id)
            with self._lock:
                if imp is None:
                    self._counts["(unknown)"][e.type.value] += 1
                    continue
                self._counts[imp.strategy][e.type.value] += 1
                if e.item_id is not None and e.item_id in imp.items:
                    self._counts[imp.strategy][f"{e.type.value}_on_shown"] += 1
            found += 1
        return found

    def stats(self) -> dict[str, dict[str, Any]]:
        """Per strategy: impressions, items shown, and attributed clicks, carts and purchases."""
        with self._lock:
            out: dict[str, dict[str, Any]] = {s: dict(c) for s, c in self._counts.items()}
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


def read_impressions(path: Path) -> Iterator[Impression]:
    """The impressions of a log file, oldest first (for offline attribution)."""
    with open(path, "rb") as fh:
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
