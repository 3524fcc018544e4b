"""Taobao UserBehavior CSV (Tianchi dataset 649; Zhu et al., KDD 2018): no header, five columns
``user_id,item_id,category_id,behavior_type,unix_timestamp_seconds``.

- Behaviours map to event types: ``pv`` -> view, ``fav`` -> favorite, ``cart`` -> add_to_cart,
  ``buy`` -> purchase.
- Each item seen becomes an item with ``categories=[category_id]`` (the first category seen wins).
- ``event_id`` is ``taobao:{user}:{item}:{ts}:{behavior}:{n}``, where ``n`` numbers identical rows
  of a user (0 for the first copy). Two identical rows are two real events, and both are kept; the
  counter is reset when the user changes (the file is grouped by user), which keeps memory to one
  user.
- Events before the official window (2017-11-25) are real events and are kept.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from shopflow.ingest.importers.base import BadRow, ItemRow, Occurrences, Reader, Record, open_text

BEHAVIORS = {"pv": "view", "fav": "favorite", "cart": "add_to_cart", "buy": "purchase"}
COLUMNS = "user,item,category,behavior,timestamp"


class TaobaoReader(Reader):
    """``taobao``: the UserBehavior five-column CSV."""

    name = "taobao"

    def records(self) -> Iterator[tuple[int, Record]]:
        copies = Occurrences()
        current_user: str | None = None
        items_seen: set[str] = set()
        with open_text(self.path) as fh:
            for line_no, row in enumerate(csv.reader(fh), start=1):
                self.rows_read += 1
                if not row:
                    continue
                if len(row) != 5:
                    yield line_no, BadRow(f"expected 5 columns ({COLUMNS}), found {len(row)}")
                    continue
                user, item, category, behavior, ts = (c.strip() for c in row)
                event_type = BEHAVIORS.get(behavior.lower())
                if event_type is None:
                    yield (
                        line_no,
                        BadRow(
                            f"behavior: unknown Taobao behaviour {behavior!r}; "
                            "expected pv, fav, cart, buy"
                        ),
                    )
                    continue
                if not ts.isdigit():
                    yield line_no, BadRow(f"timestamp: {ts!r} is not whole unix seconds")
                    continue
                if user != current_user:
                    copies.reset()
                    current_user = user
                key = f"{user}:{item}:{ts}:{behavior}"
                record = {
                    "event_id": f"taobao:{key}:{copies.next(key)}",
                    "type": event_type,
                    "user_id": user,
                    "item_id": item,
                    "timestamp": int(ts),
                }
                if item and item not in items_seen and category:
                    items_seen.add(item)
                    yield line_no, ItemRow(item_id=item, categories=[category])
                yield line_no, record
