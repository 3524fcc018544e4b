"""Ingest throughput: events per second into the durable event log.

Two paths, each on SQLite (synchronous=FULL and NORMAL) and PostgreSQL:

- ``import``: ``run_import("csv", ...)`` of a generated CSV file (parse, validate, derive ids,
  append), the path of ``shopflow import``;
- ``append``: ``EventLog.append`` of already validated events, in batches (the path of
  ``POST /v1/events`` after validation).

Each number is the median of ``--repeats`` runs, each into an empty database. PostgreSQL runs in a
fresh schema that is dropped at the end; it is skipped, with the reason, when unreachable.

Usage::

    .venv/bin/python bench/ingest.py --events 20000 --repeats 3 --batch-sizes 500,5000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from shopflow.ingest.importers import run_import
from shopflow.ingest.schema import Event, parse_events
from shopflow.store.db import metadata
from shopflow.store.store import Store

DEFAULT_POSTGRES = os.environ.get(
    "SHOPFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
TYPES = ("view", "view", "view", "click", "add_to_cart", "purchase", "favorite")


def make_rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    """``n`` plausible events: 1 user per ~20 events, a long-tail catalogue, increasing time."""
    rng = random.Random(seed)
    users, items = max(n // 20, 1), max(n // 10, 1)
    start = 1_714_557_600
    rows = []
    for i in range(n):
        kind = rng.choice(TYPES)
        rows.append(
            {
                "user_id": f"u{rng.randrange(users)}",
                "item_id": f"i{int(items * rng.random() ** 2)}",
                "type": kind,
                "timestamp": start + i,
                "value": 1 if kind in ("add_to_cart", "purchase") else None,
            }
        )
    return rows


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("user_id,item_id,type,timestamp,value\n")
        for r in rows:
            value = "" if r["value"] is None else r["value"]
            fh.write(f"{r['user_id']},{r['item_id']},{r['type']},{r['timestamp']},{value}\n")


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    """A URL whose search_path is a new schema, dropped on exit."""
    import psycopg

    plain = url.replace("postgresql+psycopg://", "postgresql://")
    schema = f"sf_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(plain, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def backends(
    args: argparse.Namespace, tmp: Path, console: Console, stack: ExitStack
) -> list[tuple[str, Callable[[], Store]]]:
    """``(name, make an empty store)`` for each backend that can be reached."""

    def sqlite_maker(sync: str) -> Callable[[], Store]:
        def fresh() -> Store:
            path = tmp / f"bench-{sync}-{uuid.uuid4().hex[:6]}.db"
            return Store.from_url(f"sqlite:///{path}", sqlite_synchronous=sync)

        return fresh

    out = [(f"sqlite {sync}", sqlite_maker(sync)) for sync in ("FULL", "NORMAL")]
    if args.postgres_url.lower() == "none":
        return out
    try:
        url = stack.enter_context(postgres_schema(args.postgres_url))
    except Exception as exc:
        console.print(f"[yellow]PostgreSQL skipped[/yellow]: {args.postgres_url}: {exc}")
        return out

    def fresh_pg() -> Store:
        store = Store.from_url(url)
        metadata.drop_all(store.engine)
        metadata.create_all(store.engine)
        return store

    out.append(("postgresql", fresh_pg))
    return out


def time_import(make: Callable[[], Store], csv_path: Path, batch: int) -> tuple[float, int]:
    store = make()
    try:
        started = time.perf_counter()
        report = run_import("csv", csv_path, store, batch_size=batch)
        return time.perf_counter() - started, report.events_accepted
    finally:
        store.close()


def time_append(make: Callable[[], Store], events: list[Event], batch: int) -> tuple[float, int]:
    store = make()
    try:
        started = time.perf_counter()
        accepted = 0
        for i in range(0, len(events), batch):
            accepted += store.events.append(events[i : i + batch]).accepted
        return time.perf_counter() - started, accepted
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events per run")
    parser.add_argument("--repeats", type=int, default=3, help="runs per cell (median reported)")
    parser.add_argument("--batch-sizes", default="500,5000", help="comma-separated batch sizes")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES, help="'none' to skip")
    parser.add_argument("--json", type=Path, default=Path("bench/results/ingest.json"))
    args = parser.parse_args(argv)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    console = Console()

    rows = make_rows(args.events)
    parsed = parse_events([{**r, "event_id": f"bench-{i}"} for i, r in enumerate(rows)])
    assert not parsed.rejected, parsed.rejected[:3]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sf-bench-") as tmp_name, ExitStack() as stack:
        tmp = Path(tmp_name)
        csv_path = tmp / "events.csv"
        write_csv(rows, csv_path)
        for backend, make in backends(args, tmp, console, stack):
            for batch in batch_sizes:
                runs: list[tuple[str, Callable[[], tuple[float, int]]]] = [
                    ("import", partial(time_import, make, csv_path, batch)),
                    ("append", partial(time_append, make, parsed.valid, batch)),
                ]
                for path, run in runs:
                    times = []
                    for _ in range(args.repeats):
                        seconds, accepted = run()
                        if accepted != args.events:
                            raise SystemExit(
                                f"{backend} {path}: {accepted} of {args.events} stored"
                            )
                        times.append(seconds)
                    median = statistics.median(times)
                    results.append(
                        {
                            "backend": backend,
                            "path": path,
                            "batch_size": batch,
                            "events": args.events,
                            "repeats": args.repeats,
                            "seconds_median": round(median, 4),
                            "seconds_all": [round(t, 4) for t in times],
                            "events_per_second": round(args.events / median, 1),
                        }
                    )
                    console.print(
                        f"{backend:<12} {path:<7} batch {batch:>6}: "
                        f"{args.events / median:>10,.0f} events/s"
                    )

    table = Table(title=f"ingest throughput, {args.events:,} events, median of {args.repeats}")
    for col in ("backend", "path", "batch", "events/s", "median s"):
        table.add_column(
            col, justify="right" if col in ("batch", "events/s", "median s") else "left"
        )
    for r in results:
        table.add_row(
            r["backend"],
            r["path"],
            f"{r['batch_size']:,}",
            f"{r['events_per_second']:,.0f}",
            f"{r['seconds_median']:.3f}",
        )
    console.print(table)
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    out = {
        "benchmark": "ingest",
        "command": " ".join([Path(sys.argv[0]).as_posix(), *(argv or sys.argv[1:])]),
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average_at_end": load,
            "sqlite": sqlite3.sqlite_version,
        },
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=2) + "\n")
    console.print(f"written {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
