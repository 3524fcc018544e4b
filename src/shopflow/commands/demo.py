"""``shopflow demo generate`` and ``shopflow demo run`` (what ``make run`` calls).

``generate`` draws the synthetic demo shop (:mod:`shopflow.ingest.demo`) and loads it into the store
of the current settings, or writes it as JSON lines. ``run`` sets up the data folder, fills an empty
store with the demo shop (or imports ``--data``), and starts the HTTP service.

Heavy modules are imported inside the commands so that ``shopflow --help`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from shopflow.config import Settings
    from shopflow.ingest.demo import DemoConfig, DemoShop
    from shopflow.store.store import Store

app = typer.Typer(
    help=(
        "The demo shop: a synthetic, deterministic e-commerce shop (catalogue, shoppers, sessions "
        "with view → cart → purchase funnels, complementary products, holidays).\n\n"
        "`shopflow demo run` is what `make run` calls: data, then the service."
    ),
    no_args_is_help=True,
)

SEED = typer.Option(7, "--seed", help="Same seed, same shop (ids and timestamps included).")
USERS = typer.Option(1_000, "--users", min=1, help="Number of shoppers.")
ITEMS = typer.Option(2_000, "--items", min=1, help="Number of catalogue items (about).")
DAYS = typer.Option(61, "--days", min=1, help="Length of the simulated period in days.")
END = typer.Option(
    None, "--end", help="First day after the period, YYYY-MM-DD (default 2026-11-01)."
)


def _config(seed: int, users: int, items: int, days: int, end: str | None) -> DemoConfig:
    from shopflow.ingest.demo import DemoConfig

    kwargs: dict[str, Any] = {"seed": seed, "n_users": users, "n_items": items, "days": days}
    if end:
        try:
            kwargs["end"] = date.fromisoformat(end)
        except ValueError:
            raise typer.BadParameter(
                f"{end!r} is not a date like 2026-11-01", param_hint="--end"
            ) from None
    config = DemoConfig(**kwargs)
    last = config.period[1]
    if last > datetime.now(UTC) + timedelta(days=1):
        raise typer.BadParameter(
            f"the demo period would end on {last.date()}, in the future, and the event validation "
            "rejects future times: pass an earlier --end (or fewer --days)",
            param_hint="--end",
        )
    return config


def _make_shop(console: Console, config: DemoConfig) -> DemoShop:
    import time

    from shopflow.ingest.demo import generate

    t0 = time.perf_counter()
    with console.status(
        f"Generating the demo shop (seed {config.seed}, {config.n_users:,} users, "
        f"{config.n_items:,} items, {config.days} days)…"
    ):
        shop = generate(config)
    console.print(f"Generated the demo shop in {time.perf_counter() - t0:.1f} s.")
    return shop


@contextmanager
def _bar(console: Console, description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar; yields its ``advance(n)`` callback."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n: progress.advance(task, n)


def _load(console: Console, store: Store, shop: DemoShop) -> None:
    from shopflow.ingest.demo import load_into

    total = len(shop.items) + len(shop.users) + len(shop.events)
    with _bar(console, "Loading the demo shop", total) as advance:
        report = load_into(store, shop, progress=advance)
    console.print(
        f"Wrote {report.items_inserted:,} new items ({report.items_updated:,} updated), "
        f"{report.users_inserted:,} new users, {report.events_accepted:,} new events "
        f"({report.events_duplicate:,} already there)."
    )


def _summary(console: Console, shop: DemoShop) -> None:
    from rich.table import Table

    s = shop.summary()
    table = Table(title=f"Demo shop (seed {shop.config.seed})", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    table.add_row("items", f"{s['items']:,}  ({s['new_arrivals']:,} new arrivals)")
    table.add_row("users", f"{s['users']:,}")
    table.add_row("events", f"{s['events']:,}")
    for kind, n in s["events_by_type"].items():
        table.add_row(f"  {kind}", f"{n:,}")
    if s["first_event"] is not None:
        table.add_row("first event", s["first_event"].isoformat())
        table.add_row("last event", s["last_event"].isoformat())
    for name, first, last in s["holidays"]:
        table.add_row(f"holiday: {name}", f"{first} .. {last}")
    console.print(table)


@app.command("generate")
def generate_command(
    seed: int = SEED,
    users: int = USERS,
    items: int = ITEMS,
    days: int = DAYS,
    end: str | None = END,
    out: Path | None = typer.Option(
        None, "--out", help="Write items.jsonl, users.jsonl and events.jsonl to this folder."
    ),
    into_store: bool | None = typer.Option(
        None,
        "--into-store/--no-store",
        help="Load into the store of the current settings (default: yes, unless --out is given).",
    ),
) -> None:
    """Generate the demo shop and load it into the store (or write it as JSON lines with --out).

    Loading twice adds nothing: ids are stable for a seed.
    """
    from rich.console import Console

    from shopflow.config import load_settings
    from shopflow.ingest.demo import write_jsonl
    from shopflow.store.store import Store

    console = Console(stderr=True)
    shop = _make_shop(console, _config(seed, users, items, days, end))
    if out is not None:
        for path in write_jsonl(shop, out).values():
            console.print(f"wrote {path}")
    if into_store or (into_store is None and out is None):
        settings = load_settings()
        store = Store.from_settings(settings)
        try:
            _load(console, store, shop)
        finally:
            store.close()
        console.print(f"store: {settings.resolved_database_url()}")
    _summary(console, shop)


def _import(console: Console, store: Store, settings: Settings, data: Path, fmt: str) -> None:
    from shopflow.ingest.importers import get_reader, run_import
    from shopflow.ingest.schema import validation_context

    reader = get_reader(fmt, data)
    ctx = validation_context(settings.ingest.max_future_skew_seconds, settings.ingest.min_timestamp)
    with _bar(console, f"Importing {data.name} ({reader.name})", reader.total_rows()) as advance:
        report = run_import(
            reader.name,
            reader.path,
            store,
            reader=reader,
            context=ctx,
            progress=advance,
            batch_size=settings.ingest.import_batch_size,
        )
    console.print(
        f"Imported {report.events_accepted:,} new events ({report.events_duplicate:,} already "
        f"there, {report.events_rejected:,} rejected) and {report.items_inserted:,} new items."
    )
    for note in report.notes:
        console.print(f"note: {note}")


def _example_ids(store: Store) -> tuple[str, str]:
    """A user and an item from the latest purchase (or any event), for the curl examples."""
    from sqlalchemy import select

    from shopflow.store.db import events

    q = select(events.c.user_id, events.c.item_id).where(events.c.item_id.is_not(None))
    with store.engine.connect() as conn:
        row = (
            conn.execute(
                q.where(events.c.type == "purchase").order_by(events.c.seq.desc()).limit(1)
            ).first()
            or conn.execute(q.order_by(events.c.seq.desc()).limit(1)).first()
        )
    return (row[0], row[1]) if row else ("u0001", "i00001")


def _print_urls(console: Console, host: str, port: int, user_id: str, item_id: str) -> None:
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    base = f"http://{shown}:{port}"
    console.rule("[bold]shopflow is starting")
    console.print(f"API:    {base}/v1\nDocs:   {base}/docs\nHealth: {base}/healthz\n")
    console.print("Try:")
    lines = [
        f"curl '{base}/v1/items/{item_id}'",
        f"curl '{base}/v1/users/{user_id}/recommendations?scenario=home&n=10'",
        f"curl '{base}/v1/items/{item_id}/similar?n=10'",
        f"curl '{base}/v1/items/{item_id}/complementary?n=10'",
        f"curl '{base}/v1/search?q=phone+case&user_id={user_id}'",
        f"curl '{base}/v1/trending'",
        f"curl -X POST '{base}/v1/events' -H 'Content-Type: application/json' -d "
        f'\'[{{"event_id": "try-1", "type": "view", "user_id": "{user_id}", '
        f'"item_id": "{item_id}", "timestamp": "2026-10-31T12:00:00Z"}}]\'',
    ]
    for line in lines:
        console.print(f"  {line}", soft_wrap=True, highlight=False)
    console.print()


@app.command("run")
def run_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    data: Path | None = typer.Option(
        None, "--data", help="Import this file instead of the demo shop (with --format)."
    ),
    fmt: str | None = typer.Option(
        None, "--format", help="Format of --data: s3rec, unisrec, taobao, amazon, csv, parquet."
    ),
    seed: int = SEED,
    users: int = USERS,
    items: int = ITEMS,
    days: int = DAYS,
) -> None:
    """Set up the data folder, load data into an empty store (the demo shop, or --data), serve.

    With --data the file is imported whatever the store holds (re-imports add nothing).
    """
    from rich.console import Console

    from shopflow.config import load_settings
    from shopflow.errors import ShopflowError
    from shopflow.store.store import Store

    console = Console(stderr=True)
    if data is not None and not fmt:
        raise typer.BadParameter(
            "--data needs --format (s3rec, unisrec, taobao, amazon, csv, parquet)",
            param_hint="--format",
        )
    settings = load_settings()
    # The demo serves without API keys (auth.demo); `shopflow serve` is the way to run for real.
    settings = settings.model_copy(update={"auth": settings.auth.model_copy(update={"demo": True})})
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    console.print(f"data folder: {settings.data_dir.resolve()}")
    try:
        store = Store.from_settings(settings)
    except ShopflowError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        # 1. Data: import --data, or fill an empty store with the demo shop.
        if data is not None:
            _import(console, store, settings, data, fmt or "")
        elif store.events.count() == 0 and store.catalogue.count() == 0:
            shop = _make_shop(console, _config(seed, users, items, days, None))
            _load(console, store, shop)
            _summary(console, shop)
        else:
            console.print(
                f"The store already holds {store.events.count():,} events and "
                f"{store.catalogue.count():,} items; serving them (delete {settings.data_dir} "
                "to start again from the demo shop)."
            )
        # 2. Training: a new model bundle when there is none or the store changed since it.
        from shopflow.commands.train import train_if_needed

        train_if_needed(console, store, settings)
        user_id, item_id = _example_ids(store)
    except ShopflowError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    # 3. Serve.
    from shopflow.commands.serve import run_server

    _print_urls(console, host, port, user_id, item_id)
    console.print(
        "[bold red]WARNING: demo mode — API keys are OFF.[/bold red] Anyone who can reach "
        f"{host}:{port} can read and change everything. Keep it on this machine; for real use "
        "run `shopflow serve` with SHOPFLOW_AUTH__API_KEY set (`shopflow keys` mints one).\n"
    )
    run_server(settings, host, port)
