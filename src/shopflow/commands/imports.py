"""``shopflow import FORMAT PATH``: load a dataset or shop export into the event log and catalogue.

Heavy modules (SQLAlchemy, pydantic models, rich) are imported inside the command so that
``shopflow --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from shopflow.ingest.importers.base import ImportReport
    from shopflow.ingest.schema import Rejected

FORMATS = (
    "s3rec",
    "unisrec",
    "taobao",
    "amazon",
    "csv",
    "parquet",
    "jsonl",
)  # mirrors importers.IMPORTERS
SHOWN_REJECTS = 20

HELP = (
    f"Import events and items from a file: {', '.join(FORMATS)}.\n\n"
    "Every row is validated; good rows are kept beside bad ones, and each rejected row is listed "
    "with its line number and the reason. Rows are committed in batches and event ids are "
    "deterministic, so an import that was killed can simply be run again: it adds only what is "
    "missing.\n\n"
    "\b\nExamples:\n"
    "  shopflow import s3rec ../shared/datasets/amazon_beauty_s3rec/Beauty.txt\n"
    "  shopflow import unisrec ../shared/datasets/amazon_scientific_unisrec\n"
    "  shopflow import taobao UserBehavior.csv\n"
    "  shopflow import amazon reviews_Beauty.json.gz --items meta_Beauty.json.gz\n"
    "  shopflow import jsonl demo-shop/   (events.jsonl + items.jsonl, as `demo generate --out`)\n"
    "  shopflow import csv clicks.csv --map user_id=visitor --map item_id=sku "
    "--map timestamp=ts --const type=view\n"
)


def _pairs(values: list[str] | None, option: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for v in values or []:
        key, sep, value = v.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{v!r} is not FIELD=VALUE", param_hint=option)
        out[key.strip()] = value.strip()
    return out


def import_command(
    fmt: str = typer.Argument(..., metavar="FORMAT", help=f"One of: {', '.join(FORMATS)}."),
    path: Path = typer.Argument(..., metavar="PATH", help="The file (or dataset folder) to read."),
    items: Path | None = typer.Option(
        None, "--items", help="Catalogue / metadata file (amazon metadata, s3rec attributes, csv)."
    ),
    mapping: list[str] | None = typer.Option(
        None,
        "--map",
        help="FIELD=COLUMN for csv/parquet (repeatable); item.FIELD=COLUMN for --items.",
    ),
    const: list[str] | None = typer.Option(
        None, "--const", help="FIELD=VALUE given to every row, e.g. type=view (repeatable)."
    ),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Rows per committed transaction (default: settings)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Stop after this many events."),
    database_url: str | None = typer.Option(
        None, "--database-url", help="Where to write (default: SHOPFLOW_DATABASE_URL / data dir)."
    ),
    delimiter: str | None = typer.Option(None, "--delimiter", help="CSV column separator."),
    no_progress: bool = typer.Option(False, "--no-progress", help="Do not show a progress bar."),
) -> None:
    from rich.console import Console

    from shopflow.config import load_settings
    from shopflow.errors import ShopflowError
    from shopflow.ingest.importers import get_reader, run_import
    from shopflow.ingest.schema import validation_context
    from shopflow.store.store import Store

    err = Console(stderr=True)
    try:
        settings = load_settings(**({"database_url": database_url} if database_url else {}))
        reader = get_reader(
            fmt,
            path,
            items_path=items,
            mapping=_pairs(mapping, "--map"),
            constants=_pairs(const, "--const"),
            delimiter=delimiter,
        )
        store = Store.from_settings(settings)
    except ShopflowError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    online = None
    if settings.redis_url:  # keep a running service's shared online state in step
        from shopflow.store.online import make_online_state

        online = make_online_state(settings)
    ctx = validation_context(settings.ingest.max_future_skew_seconds, settings.ingest.min_timestamp)
    try:
        with _progress(err, reader.name, reader.total_rows(), not no_progress) as advance:
            report = run_import(
                reader.name,
                reader.path,
                store,
                reader=reader,
                context=ctx,
                limit=limit,
                batch_size=batch_size or settings.ingest.import_batch_size,
                progress=advance,
                online_state=online,
            )
    except ShopflowError as exc:
        err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    _print_report(report, settings.data_dir, store_url=settings.resolved_database_url())


@contextmanager
def _progress(
    console: Console, name: str, total: int | None, enabled: bool
) -> Iterator[Callable[[int], None] | None]:
    """A rich progress bar over rows read, with rows/s; yields its advance callback (or None)."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows  {task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(f"import {name}", total=total, rate="")

        def advance(n: int) -> None:
            bar.advance(task, n)
            speed = bar.tasks[task].speed
            bar.update(task, rate=f"{speed:,.0f} rows/s" if speed else "")

        yield advance


def _print_report(report: ImportReport, data_dir: Path, store_url: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"import {report.format} {Path(report.path).name}")
    for col in ("", "accepted", "duplicate", "rejected"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row(
        "events",
        f"{report.events_accepted:,}",
        f"{report.events_duplicate:,}",
        f"{report.events_rejected:,}",
    )
    table.add_row(
        "items",
        f"{report.items_inserted:,} new, {report.items_updated:,} updated",
        f"{report.items_unchanged:,} unchanged",
        f"{report.items_rejected:,}",
    )
    console.print(table)
    rate = report.rows_read / report.seconds if report.seconds > 0 else 0.0
    events_rate = report.events_seen / report.seconds if report.seconds > 0 else 0.0
    console.print(
        f"{report.path}: {report.rows_read:,} rows read in {report.seconds:.1f} s "
        f"({rate:,.0f} rows/s, {events_rate:,.0f} events/s) into {_safe_url(store_url)}"
    )
    for note in report.notes:
        console.print(f"[dim]note: {note}[/dim]")
    bad = [("event", r) for r in report.rejected] + [("item", r) for r in report.rejected_items]
    if not bad:
        return
    shown = Table(title=f"rejected rows (first {min(len(bad), SHOWN_REJECTS)} of {len(bad):,})")
    shown.add_column("kind")
    shown.add_column("line", justify="right")
    shown.add_column("reason", overflow="fold")
    for kind, r in bad[:SHOWN_REJECTS]:
        shown.add_row(kind, str(r.line), r.reason)
    console.print(shown)
    if len(bad) > SHOWN_REJECTS:
        out = _write_rejects(bad, report, data_dir)
        console.print(f"all {len(bad):,} rejected rows: {out}")


def _write_rejects(bad: list[tuple[str, Rejected]], report: ImportReport, data_dir: Path) -> Path:
    """Write every rejected row as TSV (kind, line, reason) under ``data_dir/rejects``."""
    folder = data_dir / "rejects"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = folder / f"import-{report.format}-{Path(report.path).name}-{stamp}.tsv"
    with open(out, "w", encoding="utf-8") as fh:
        fh.write("kind\tline\treason\n")
        for kind, r in bad:
            fh.write(f"{kind}\t{r.line}\t{r.reason.replace(chr(9), ' ')}\n")
    return out


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
