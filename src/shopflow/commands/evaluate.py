"""``shopflow evaluate``: offline evaluation of models on a benchmark, a file or the store.

The work is :func:`shopflow.eval.runner.evaluate`; this module picks the data, shows progress bars,
prints the table and writes the report (:func:`shopflow.eval.report.write_report`). Heavy modules
are imported inside the command so that ``shopflow --help`` stays fast.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from shopflow.features.sequences import InteractionData
    from shopflow.store.store import Store

HELP = (
    "Evaluate models offline and write a report (JSON, Markdown, HTML with plots).\n\n"
    "Leave-one-out (the published Amazon protocol) or a time split; every item is ranked, the "
    "user's own history excluded (full ranking). Hyper-parameters are tuned on the validation "
    "targets only, then the model is refitted on train + validation.\n\n"
    "\b\nExamples:\n"
    "  shopflow evaluate --dataset beauty --models pop,covisit,als --k 5,10,20 "
    "--out reports/beauty\n"
    "  shopflow evaluate --dataset clicks.csv --format csv --models pop,covisit --protocol time\n"
    "  shopflow evaluate --store --models pop,trending --protocol time\n"
)
PROTOCOL_OF_META = {"leave_one_out": "loo", "time_split": "time"}


def _fail(err: Console, message: object, code: int = 2) -> None:
    err.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code)


def _ints(text: str, option: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is not a comma-separated list of integers", param_hint=option
        ) from None
    if not values or min(values) < 1:
        raise typer.BadParameter("give positive integers, e.g. 5,10,20", param_hint=option)
    return values


def _literal(text: str) -> object:
    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip()


def parse_grid(values: list[str] | None) -> dict[str, dict[str, list[object]]]:
    """``["als.factors=64,128", ...]`` → ``{"als": {"factors": [64, 128]}}`` (ints, floats, ...)."""
    grid: dict[str, dict[str, list[object]]] = {}
    for v in values or []:
        key, sep, rhs = v.partition("=")
        model, dot, setting = key.strip().partition(".")
        if not sep or not dot or not model or not setting or not rhs.strip():
            raise typer.BadParameter(f"{v!r} is not MODEL.SETTING=V1,V2,...", param_hint="--grid")
        grid.setdefault(model, {})[setting] = [_literal(x) for x in rhs.split(",")]
    return grid


def with_catalogue(data: InteractionData, store: Store) -> InteractionData:
    """``data`` with brand and categories from the store's catalogue (for beyond-accuracy)."""
    from dataclasses import replace

    from shopflow.features.sequences import ItemSide

    frame = store.catalogue.to_polars()
    if frame.height == 0:
        return data
    by_id = {r["item_id"]: r for r in frame.select("item_id", "brand", "categories").to_dicts()}
    rows = [by_id.get(i) for i in data.items.external_ids]
    brand = [r["brand"] if r else None for r in rows]
    cats = [list(r["categories"] or []) if r else [] for r in rows]
    return replace(data, side=ItemSide(brand=brand, categories=cats))


def load_store_data(store: Store, name: str) -> InteractionData:
    """Every interest event of ``store`` as :class:`InteractionData` (time order per user)."""
    from shopflow.features.sequences import from_events

    return with_catalogue(from_events(store.events.to_polars(), name=name), store)


def import_file(fmt: str, path: Path, items: Path | None, folder: Path) -> InteractionData:
    """Import ``path`` into a fresh SQLite store under ``folder`` and read it back."""
    from shopflow.ingest.importers import run_import
    from shopflow.store.store import Store

    store = Store.from_url(f"sqlite:///{folder / 'import.db'}", sqlite_synchronous="OFF")
    try:
        report = run_import(fmt, path, store, items_path=items)
        if report.events_accepted == 0:
            from shopflow.errors import ImportFormatError

            raise ImportFormatError(
                f"{path}: no event could be imported as {fmt} ({report.events_rejected} rejected)"
            )
        return load_store_data(store, Path(path).stem)
    finally:
        store.close()


@contextmanager
def _progress(err: Console, enabled: bool) -> Iterator[Callable[[str, int, int], None] | None]:
    """A rich progress display; each new label of the runner becomes a bar."""
    if not enabled:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


def evaluate_command(
    dataset: str | None = typer.Option(
        None,
        "--dataset",
        "-d",
        help="Benchmark name (beauty, sports, scientific, taobao, or a full name); with --format, "
        "a file to import.",
    ),
    models: str = typer.Option("pop,covisit", "--models", "-m", help="Comma-separated models."),
    protocol: str | None = typer.Option(
        None, "--protocol", help="loo or time (default: loo for the Amazon benchmarks, else time)."
    ),
    k: str = typer.Option("5,10,20", "--k", help="Cut-offs, comma-separated."),
    out: Path | None = typer.Option(
        None, "--out", help="Report folder (default: SHOPFLOW_DATA_DIR/reports/<dataset>-<time>)."
    ),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="Write top-100 per test user as JSON lines here."
    ),
    no_tune: bool = typer.Option(False, "--no-tune", help="Use every model's defaults."),
    grid: list[str] | None = typer.Option(
        None,
        "--grid",
        help="Tuning grid MODEL.SETTING=V1,V2 (repeatable); replaces that model's own grid.",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the result JSON here."),
    fmt: str | None = typer.Option(
        None, "--format", help="Import format of a --dataset file (s3rec, taobao, csv, ...)."
    ),
    items: Path | None = typer.Option(None, "--items", help="Catalogue file for --format."),
    use_store: bool = typer.Option(
        False, "--store", help="Evaluate on the events of the configured store."
    ),
    database_url: str | None = typer.Option(
        None, "--database-url", help="With --store: this database instead of the settings'."
    ),
    sampled: int | None = typer.Option(
        None,
        "--sampled-negatives",
        min=1,
        help="Also rank each target among N sampled negatives (labelled; never the headline).",
    ),
    batch_size: int = typer.Option(1024, "--batch-size", min=1, help="Users scored at once."),
    time_quantile: float = typer.Option(
        0.8, "--time-quantile", min=0.01, max=0.99, help="Time split cutoff (quantile of time)."
    ),
    no_progress: bool = typer.Option(False, "--no-progress", help="Do not show progress bars."),
) -> None:
    from rich.console import Console
    from rich.table import Table

    from shopflow import datasets
    from shopflow.config import load_settings
    from shopflow.errors import ShopflowError
    from shopflow.eval.report import headline_rows, write_report
    from shopflow.eval.runner import PROTOCOLS, check_models, evaluate

    err = Console(stderr=True)
    names = [m.strip() for m in models.split(",") if m.strip()]
    ks = _ints(k, "--k")
    tune = parse_grid(grid) or None
    if protocol is not None and protocol not in PROTOCOLS:
        _fail(err, f"unknown protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")
    if (dataset is None) == (not use_store):
        _fail(err, "give --dataset NAME (or a file with --format) or --store")
    tmp = Path(tempfile.mkdtemp(prefix="shopflow-eval-"))
    try:
        settings = load_settings(**({"database_url": database_url} if database_url else {}))
        check_models(names, tune)
        if use_store:
            from shopflow.store.store import Store

            store = Store.from_settings(settings)
            try:
                data = load_store_data(store, "store")
            finally:
                store.close()
        elif fmt is not None:
            assert dataset is not None
            if not Path(dataset).exists():
                _fail(err, f"{dataset} does not exist (with --format, --dataset is a file)")
            data = import_file(fmt, Path(dataset), items, tmp)
        else:
            assert dataset is not None
            data = datasets.load(dataset)
        proto = protocol or PROTOCOL_OF_META.get(str(data.meta.get("protocol")), "time")
        if data.n_interactions == 0:
            _fail(err, f"{data.name} holds no interaction to evaluate on")
        with _progress(err, not no_progress) as progress:
            result = evaluate(
                data,
                names,
                proto,
                ks,
                tune=tune,
                predictions_path=predictions,
                progress=progress,
                no_tune=no_tune,
                sampled=sampled,
                batch_size=batch_size,
                time_quantile=time_quantile,
            )
    except (ShopflowError, ValueError) as exc:
        _fail(err, exc)
        return
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    folder = out or settings.data_dir / "reports" / f"{data.name}-{stamp}"
    paths = write_report(result, folder)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(paths["json"], json_path)
    header, rows = headline_rows(result)
    table = Table(
        title=f"{data.name}: {proto}, own history excluded, full ranking "
        f"({result.n_eval_users:,} users, {result.n_items:,} items)"
    )
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    console.print(table)
    console.print(f"report: {paths['markdown']}  {paths['html']}")
    if predictions is not None:
        console.print(f"predictions: {predictions}")
