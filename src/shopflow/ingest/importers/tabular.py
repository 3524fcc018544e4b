"""Any event table, as CSV (with a header) or Parquet, through a column mapping.

``mapping`` names, for each event field, the column that holds it (``user_id=visitor``,
``timestamp=ts``, ``context.device=device``); a field without a mapping is read from the column of
the same name when there is one. ``constants`` give a field one value for every row (``type=view``).
Timestamps may be unix seconds or ISO 8601. ``item_ids`` columns are split on ``|``.

Items come from ``--items`` (CSV or Parquet, by suffix): columns named like :class:`Item` fields, or
mapped with ``item.<field>=column``; every other column goes into ``attributes``.

``event_id``: the mapped column when there is one; otherwise ``{format}:{digest}:{n}`` where the
digest is taken over the row's mapped values and ``n`` numbers identical rows in the file (0 for
the first copy), so identical rows stay distinct events and a re-import adds nothing. That counter
keeps one short key per distinct row in memory (about 100 bytes a row).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from shopflow.errors import ImportFormatError
from shopflow.ingest.importers.base import (
    BadRow,
    ImportOptions,
    ItemRow,
    Occurrences,
    Reader,
    Record,
    content_digest,
    count_lines,
    open_text,
)
from shopflow.ingest.schema import Event, Item

EVENT_FIELDS = tuple(Event.model_fields)
ITEM_FIELDS = tuple(f for f in Item.model_fields if f not in ("attributes", "embedding"))
NUMERIC = frozenset("0123456789.-+eE")


def split_mapping(
    mapping: Mapping[str, str], constants: Mapping[str, str]
) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, str]]:
    """Check field names; return (event mapping, event constants, item mapping, item constants)."""
    out: list[dict[str, str]] = [{}, {}, {}, {}]
    for which, given in ((0, mapping), (1, constants)):
        for key, value in given.items():
            if key.startswith("item."):
                field = key.removeprefix("item.")
                ok = field in ITEM_FIELDS or field.startswith("attributes.")
                target = out[2 + which]
            else:
                field = key
                ok = field in EVENT_FIELDS or field.startswith("context.")
                target = out[which]
            if not ok:
                raise ImportFormatError(
                    f"unknown field {key!r} in the mapping; event fields: "
                    f"{', '.join(EVENT_FIELDS)}, "
                    f"context.<key>; item fields (with --items): "
                    f"{', '.join('item.' + f for f in ITEM_FIELDS)}, item.attributes.<key>"
                )
            target[field] = value
    return out[0], out[1], out[2], out[3]


def _resolve(
    mapping: dict[str, str], fields: tuple[str, ...], columns: list[str], path: Path
) -> dict[str, str]:
    """``field -> column`` with defaults (same-named columns); unknown columns are an error."""
    missing = [f"{c!r} (for {f})" for f, c in mapping.items() if c not in columns]
    if missing:
        raise ImportFormatError(
            f"{path.name} has no column {', '.join(missing)}; its columns are: {', '.join(columns)}"
        )
    resolved = {f: c for f, c in mapping.items()}
    for f in fields:
        if f not in resolved and f in columns:
            resolved[f] = f
    return resolved


def _number_or_text(value: Any) -> Any:
    """CSV cells are text: turn ``1511544070`` / ``3.5`` into numbers, leave ISO times as text."""
    if isinstance(value, str) and value and set(value) <= NUMERIC:
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _set(record: dict[str, Any], field: str, value: Any) -> None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return
    if "." in field:  # context.device / attributes.colour
        group, key = field.split(".", 1)
        record.setdefault(group, {})[key] = value
    elif field == "timestamp" or field == "created_at":
        record[field] = _number_or_text(value)
    elif field in ("item_ids", "categories") and isinstance(value, str):
        sep = "|" if field == "item_ids" or "|" in value else None
        record[field] = [v.strip() for v in value.split(sep) if v.strip()] if sep else value
    else:
        record[field] = value


class _Table:
    """Rows of a CSV or Parquet file as ``(line, values dict | BadRow)``, with its column names."""

    def __init__(self, path: Path, delimiter: str | None) -> None:
        self.path = path
        self.parquet = path.suffix == ".parquet"
        if self.parquet:
            import pyarrow.parquet as pq

            try:
                self._pq = pq.ParquetFile(path)
            except Exception as exc:
                raise ImportFormatError(f"cannot read {path} as Parquet: {exc}") from exc
            self.columns = list(self._pq.schema_arrow.names)
            return
        default = "\t" if path.name.endswith((".tsv", ".tsv.gz")) else ","
        self.delimiter = (delimiter or default).replace("\\t", "\t")
        if len(self.delimiter) != 1:
            raise ImportFormatError(f"--delimiter must be one character, not {delimiter!r}")
        with open_text(path) as fh:
            header = next(csv.reader(fh, delimiter=self.delimiter), None)
        if not header:
            raise ImportFormatError(
                f"{path} is empty; a CSV file needs a header row of column names"
            )
        self.columns = [c.strip() for c in header]

    def rows(self) -> Iterator[tuple[int, dict[str, Any] | BadRow]]:
        if self.parquet:
            n = 0
            for batch in self._pq.iter_batches(batch_size=10_000):
                for row in batch.to_pylist():
                    n += 1
                    yield n, row
            return
        width = len(self.columns)
        with open_text(self.path) as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            next(reader, None)
            while True:
                start = reader.line_num + 1
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield start, BadRow(f"malformed CSV: {exc}")
                    continue
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    yield start, BadRow(f"expected {width} columns, found {len(row)}")
                    continue
                yield start, dict(zip(self.columns, row, strict=True))

    def total_rows(self) -> int | None:
        if self.parquet:
            return int(self._pq.metadata.num_rows)
        n = count_lines(self.path)
        return None if n is None else max(n - 1, 0)


class TabularReader(Reader):
    """``csv`` / ``parquet``: one event per row, through ``mapping`` and ``constants``."""

    name = "csv"

    def __init__(self, path: Path, options: ImportOptions) -> None:
        super().__init__(path, options)
        ev_map, self.ev_const, it_map, self.it_const = split_mapping(
            options.mapping, options.constants
        )
        self.table = _Table(path, options.delimiter)
        self.ev_map = _resolve(ev_map, EVENT_FIELDS, self.table.columns, path)
        unmapped = [
            f
            for f in ("user_id", "type", "timestamp")
            if f not in self.ev_map and f not in self.ev_const
        ]
        if unmapped:
            raise ImportFormatError(
                f"{path.name}: no column for {', '.join(unmapped)}; map one with "
                f"--map {unmapped[0]}=COLUMN (or --const type=view); columns: "
                f"{', '.join(self.table.columns)}"
            )
        self.items_table: _Table | None = None
        if options.items_path is not None:
            if not options.items_path.exists():
                raise ImportFormatError(f"items file {options.items_path} does not exist")
            self.items_table = _Table(options.items_path, options.delimiter)
            self.it_map = _resolve(
                it_map, ITEM_FIELDS, self.items_table.columns, options.items_path
            )
            if "item_id" not in self.it_map:
                raise ImportFormatError(
                    f"{options.items_path.name}: no item_id column; map one with "
                    "--map item.item_id=COLUMN"
                )
        if "event_id" not in self.ev_map:
            self.notes.append("no event_id column: ids derived from row content (+ copy number)")

    def _items(self) -> Iterator[tuple[int, Record]]:
        assert self.items_table is not None
        used = set(self.it_map.values())
        for line, row in self.items_table.rows():
            if isinstance(row, BadRow):
                yield line, BadRow(row.reason, item=True)
                continue
            record: dict[str, Any] = {}
            for field, column in self.it_map.items():
                _set(record, field, row[column])
            for column, value in row.items():
                if column not in used:
                    _set(record, f"attributes.{column}", value)
            for field, value in self.it_const.items():
                _set(record, field, value)
            yield line, ItemRow(record)

    def records(self) -> Iterator[tuple[int, Record]]:
        if self.items_table is not None:
            yield from self._items()
        copies = Occurrences()
        derive = "event_id" not in self.ev_map and "event_id" not in self.ev_const
        fmt = "parquet" if self.table.parquet else "csv"
        for line, row in self.table.rows():
            self.rows_read += 1
            if isinstance(row, BadRow):
                yield line, row
                continue
            record: dict[str, Any] = {}
            for field, column in self.ev_map.items():
                _set(record, field, row[column])
            for field, value in self.ev_const.items():
                _set(record, field, value)
            if derive:
                digest = content_digest(*sorted((k, str(v)) for k, v in record.items()))
                record["event_id"] = f"{fmt}:{digest}:{copies.next(digest)}"
            yield line, record

    def total_rows(self) -> int | None:
        return self.table.total_rows()


class ParquetReader(TabularReader):
    """``parquet``: like ``csv``, rows numbered from 1."""

    name = "parquet"

    def __init__(self, path: Path, options: ImportOptions) -> None:
        if path.exists() and path.suffix != ".parquet":
            raise ImportFormatError(f"{path.name} does not end in .parquet; use the csv format")
        super().__init__(path, options)
