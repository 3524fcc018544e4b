"""The import loop shared by every format: read, validate, batch, append durably, report.

Example
-------
>>> from pathlib import Path
>>> from shopflow.store.store import Store
>>> store = Store.from_url("sqlite://")
>>> report = run_import("taobao", Path("UserBehavior_head.csv"), store)  # doctest: +SKIP
>>> report.events_accepted, report.events_duplicate, report.events_rejected  # doctest: +SKIP
(84287, 0, 0)
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopflow.errors import ImportFormatError
from shopflow.ingest.importers.amazon import AmazonReader
from shopflow.ingest.importers.base import BadRow, ImportOptions, ImportReport, ItemRow, Reader
from shopflow.ingest.importers.jsonl import JsonLinesReader
from shopflow.ingest.importers.s3rec import S3RecReader
from shopflow.ingest.importers.tabular import ParquetReader, TabularReader
from shopflow.ingest.importers.taobao import TaobaoReader
from shopflow.ingest.importers.unisrec import UniSRecReader
from shopflow.ingest.schema import Event, Rejected, parse_events, parse_items
from shopflow.store.online import OnlineState
from shopflow.store.store import Store

log = logging.getLogger(__name__)

IMPORTERS: dict[str, type[Reader]] = {
    "s3rec": S3RecReader,
    "unisrec": UniSRecReader,
    "taobao": TaobaoReader,
    "amazon": AmazonReader,
    "csv": TabularReader,
    "parquet": ParquetReader,
    "jsonl": JsonLinesReader,
}


def get_reader(
    fmt: str,
    path: Path,
    *,
    items_path: Path | None = None,
    mapping: Mapping[str, str] | None = None,
    constants: Mapping[str, str] | None = None,
    delimiter: str | None = None,
) -> Reader:
    """The reader of format ``fmt`` for ``path``; ``ImportFormatError`` for an unknown format."""
    cls = IMPORTERS.get(fmt.strip().lower())
    if cls is None:
        raise ImportFormatError(
            f"unknown import format {fmt!r}; known formats: {', '.join(IMPORTERS)}"
        )
    if items_path is not None and not Path(items_path).exists():
        raise ImportFormatError(f"items file {items_path} does not exist")
    options = ImportOptions(
        items_path=Path(items_path) if items_path is not None else None,
        mapping=dict(mapping or {}),
        constants=dict(constants or {}),
        delimiter=delimiter,
    )
    return cls(Path(path), options)


def run_import(
    fmt: str,
    path: Path,
    store: Store,
    *,
    items_path: Path | None = None,
    mapping: Mapping[str, str] | None = None,
    constants: Mapping[str, str] | None = None,
    delimiter: str | None = None,
    batch_size: int = 5000,
    limit: int | None = None,
    progress: Callable[[int], None] | None = None,
    online_state: OnlineState | None = None,
    context: Mapping[str, Any] | None = None,
    reader: Reader | None = None,
) -> ImportReport:
    """Import the file at ``path`` (format ``fmt``, a key of :data:`IMPORTERS`) into ``store``.

    Every record goes through the schema validation; valid events are appended in batches of
    ``batch_size`` records, one committed transaction each (:meth:`EventLog.append`), so a killed
    import keeps every batch it finished and a re-run adds only what is missing (ids are
    deterministic). Items are upserted into the catalogue before the events of the same batch.

    Parameters
    ----------
    fmt, path
        Format name and main file (``s3rec``: the sequence file; ``unisrec``: the folder or a file;
        ``taobao``/``csv``/``parquet``/``amazon``: the event file).
    items_path
        Catalogue / metadata file (``amazon`` metadata, ``s3rec`` item2attributes, csv items).
    mapping, constants, delimiter
        Column mapping (``field -> column``), constant fields and CSV separator (tabular formats).
    limit
        Stop after this many event records (good or bad).
    progress
        Called with the number of main-file rows read since the previous call.
    online_state
        When given, accepted (new) events are also recorded into it.
    context
        Validation context (``shopflow.ingest.schema.validation_context``).
    reader
        An already built reader (from :func:`get_reader`); ``fmt`` and the options are then unused.

    Returns
    -------
    ImportReport
        Exact counts, every rejected row with its line number and reason, and notes.
    """
    started = time.perf_counter()
    if reader is None:
        reader = get_reader(
            fmt,
            path,
            items_path=items_path,
            mapping=mapping,
            constants=constants,
            delimiter=delimiter,
        )
    if batch_size < 1:
        raise ImportFormatError(f"batch_size must be at least 1, not {batch_size}")
    report = ImportReport(format=reader.name, path=str(reader.path), notes=reader.notes)
    ctx = dict(context or {})
    events_buf: list[tuple[int, int, dict[str, Any]]] = []  # (index, line, record)
    items_buf: list[tuple[int, int, ItemRow]] = []
    n_events = n_items = 0
    reported = 0

    def flush_items() -> None:
        if not items_buf:
            return
        parsed = parse_items([rec for _, _, rec in items_buf])
        for bad in parsed.rejected:
            index, line, _ = items_buf[bad.index]
            report.rejected_items.append(Rejected(index, bad.reason, line))
        report.items_rejected += len(parsed.rejected)
        if parsed.valid:
            done = store.catalogue.upsert(parsed.valid)
            report.items_inserted += done.inserted
            report.items_updated += done.updated
            report.items_unchanged += done.unchanged
        items_buf.clear()

    def flush_events() -> None:
        nonlocal reported
        flush_items()
        if events_buf:
            # One "now" per batch for the future-time check (not a clock read per event).
            batch_ctx = ctx if "now" in ctx else {**ctx, "now": datetime.now(UTC)}
            parsed = parse_events([rec for _, _, rec in events_buf], batch_ctx)
            for bad in parsed.rejected:
                index, line, _ = events_buf[bad.index]
                report.rejected.append(Rejected(index, bad.reason, line))
            report.events_rejected += len(parsed.rejected)
            if parsed.valid:
                done = store.events.append(parsed.valid)  # committed when it returns
                report.events_accepted += done.accepted
                report.events_duplicate += done.duplicates
                if online_state is not None and done.accepted:
                    online_state.record(_accepted(parsed.valid, done.accepted_ids))
            events_buf.clear()
        if progress is not None and reader.rows_read > reported:
            progress(reader.rows_read - reported)
        reported = reader.rows_read

    for line, record in reader.records():
        if isinstance(record, ItemRow):
            items_buf.append((n_items, line, record))
            n_items += 1
            if len(items_buf) >= batch_size:
                flush_items()
        elif isinstance(record, BadRow):
            if record.item:
                report.rejected_items.append(Rejected(n_items, record.reason, line))
                report.items_rejected += 1
                n_items += 1
                continue
            if limit is not None and n_events >= limit:
                break
            report.rejected.append(Rejected(n_events, record.reason, line))
            report.events_rejected += 1
            n_events += 1
        else:
            if limit is not None and n_events >= limit:
                break
            events_buf.append((n_events, line, record))
            n_events += 1
            if len(events_buf) >= batch_size:
                flush_events()
    flush_events()
    report.rejected.sort(key=lambda r: r.index)
    report.rejected_items.sort(key=lambda r: r.index)
    report.rows_read = reader.rows_read
    report.seconds = time.perf_counter() - started
    log.info(
        "imported %s %s: events %d accepted, %d duplicate, %d rejected; items %d new, %d updated, "
        "%d rejected (%.1f s)",
        reader.name,
        reader.path,
        report.events_accepted,
        report.events_duplicate,
        report.events_rejected,
        report.items_inserted,
        report.items_updated,
        report.items_rejected,
        report.seconds,
    )
    return report


def _accepted(events: list[Event], accepted_ids: list[str]) -> list[Event]:
    ids = set(accepted_ids)
    return [e for e in events if e.event_id in ids]
