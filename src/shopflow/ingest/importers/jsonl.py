"""shopflow's own JSON-lines format: one :class:`~shopflow.ingest.schema.Event` object per line.

This is what ``shopflow demo generate --out DIR`` writes and what a shop's own export most
easily becomes. ``PATH`` is an events file (``.jsonl`` / ``.jsonl.gz``) or a folder holding
``events.jsonl`` (and ``items.jsonl``, read first); ``--items`` names an items file explicitly.
Each line is validated exactly like an event posted to ``POST /v1/events``; ``event_id`` is
required, so re-importing the same file adds nothing. User records (``users.jsonl``) are not
read: events carry the user ids.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from shopflow.ingest.importers.base import BadRow, ItemRow, Reader, Record, count_lines, open_text


def _lines(path: Path, item: bool) -> Iterator[tuple[int, Record]]:
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield line_no, BadRow(f"invalid JSON: {exc}", item=item)
                continue
            if not isinstance(obj, dict):
                yield line_no, BadRow(f"must be a JSON object, not {type(obj).__name__}", item=item)
                continue
            yield line_no, ItemRow(obj) if item else obj


class JsonLinesReader(Reader):
    """``jsonl``: shopflow events (and items) as JSON lines."""

    name = "jsonl"

    def __init__(self, path: Path, options: object) -> None:
        super().__init__(path, options)  # type: ignore[arg-type]
        if path.is_dir():
            events = path / "events.jsonl"
            if not events.is_file():
                from shopflow.errors import ImportFormatError

                raise ImportFormatError(f"{path} is a folder without events.jsonl")
            self.events_path = events
            default_items = path / "items.jsonl"
        else:
            self.events_path = path
            default_items = path.with_name("items.jsonl")
        given = self.options.items_path
        self.items_path = (
            given if given is not None else (default_items if default_items.is_file() else None)
        )

    def records(self) -> Iterator[tuple[int, Record]]:
        if self.items_path is not None:
            yield from _lines(self.items_path, item=True)
        for line_no, rec in _lines(self.events_path, item=False):
            self.rows_read += 1
            yield line_no, rec

    def total_rows(self) -> int | None:
        return count_lines(self.events_path)
