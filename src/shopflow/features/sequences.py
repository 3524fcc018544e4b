"""Interaction data as models see it: per-user item sequences in dense ids, with item side data.

:class:`InteractionData` is what ``shopflow.datasets`` loads, what ``shopflow.eval.split`` splits
and what every model's ``fit`` takes. Built from the event log with :func:`from_events` or from a
benchmark file.

Example
-------
>>> import numpy as np
>>> from shopflow.store.idmap import IdMap
>>> d = InteractionData(
...     name="toy", users=IdMap(["u1", "u2"]), items=IdMap(["a", "b", "c"]),
...     sequences=[np.array([0, 1]), np.array([2])])
>>> d.n_users, d.n_items, d.n_interactions
(2, 3, 3)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from shopflow.store.idmap import IdMap
from shopflow.types import COL_ITEM, COL_TS, COL_TYPE, COL_USER, POSITIVE_EVENT_TYPES


@dataclass(frozen=True)
class ItemSide:
    """Side information by dense item index; every list has ``n_items`` entries
    (``None`` = unknown)."""

    text: list[str | None] | None = None
    brand: list[str | None] | None = None
    categories: list[list[str]] | None = None
    attributes: list[list[int]] | None = None  # integer attribute tokens (S3-Rec style)
    price: np.ndarray | None = None
    created_at: np.ndarray | None = None  # unix seconds, NaN when unknown


@dataclass(frozen=True)
class InteractionData:
    """Per-user item sequences (oldest first) in dense ids, plus optional per-event arrays."""

    name: str
    users: IdMap
    items: IdMap
    sequences: list[np.ndarray]  # sequences[u]: int64 item indices, time order
    timestamps: list[np.ndarray] | None = None  # sequences-aligned unix seconds (float64)
    event_types: list[np.ndarray] | None = None  # sequences-aligned event type strings
    side: ItemSide = field(default_factory=ItemSide)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def with_sequences(
        self,
        sequences: list[np.ndarray],
        timestamps: list[np.ndarray] | None = None,
        event_types: list[np.ndarray] | None = None,
    ) -> InteractionData:
        """A copy with other sequences (same users, items and side data)."""
        return replace(self, sequences=sequences, timestamps=timestamps, event_types=event_types)


def from_events(
    events: pl.DataFrame,
    name: str = "events",
    types: frozenset[str] | None = None,
    items: IdMap | None = None,
) -> InteractionData:
    """Group an event frame (as exported by ``EventLog.to_polars``) into per-user sequences.

    Keeps events of ``types`` (default: every type that names an item and expresses interest), in
    time order. ``items`` fixes the item id map (e.g. the whole catalogue); unknown items extend it.
    """
    wanted = {str(t) for t in (types or POSITIVE_EVENT_TYPES)}
    frame = events.filter(pl.col(COL_TYPE).is_in(list(wanted)) & pl.col(COL_ITEM).is_not_null())
    frame = frame.sort([COL_USER, COL_TS], maintain_order=True)
    item_map = (items or IdMap([])).extend(frame[COL_ITEM].to_list())
    user_map = IdMap.from_ids(frame[COL_USER].to_list())
    item_idx = item_map.to_index(frame[COL_ITEM].to_list())
    ts = frame[COL_TS].dt.epoch("us").to_numpy().astype(np.float64) / 1e6
    kinds = frame[COL_TYPE].to_numpy()
    user_codes = user_map.to_index(frame[COL_USER].to_list())
    bounds = np.flatnonzero(np.diff(user_codes)) + 1
    starts = np.concatenate([[0], bounds]) if len(user_codes) else np.array([], dtype=np.int64)
    ends = np.concatenate([bounds, [len(user_codes)]]) if len(user_codes) else starts
    seqs = [item_idx[s:e] for s, e in zip(starts, ends, strict=True)]
    tss = [ts[s:e] for s, e in zip(starts, ends, strict=True)]
    kts = [kinds[s:e] for s, e in zip(starts, ends, strict=True)]
    return InteractionData(name, user_map, item_map, seqs, tss, kts)
