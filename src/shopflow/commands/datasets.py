"""``shopflow datasets``: which benchmark datasets are present, and what one of them holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from shopflow import datasets
from shopflow.errors import ShopflowError

app = typer.Typer(
    help=(
        "Benchmark datasets (Amazon Beauty / Sports / Scientific, Taobao). They are read from "
        "SHOPFLOW_DATASETS_DIR (default ../shared/datasets)."
    ),
    no_args_is_help=True,
)

ROOT_OPTION = typer.Option(
    None, "--root", help="Folder holding the dataset folders (default: the datasets_dir setting)."
)


def _fail(exc: Exception) -> None:
    Console(stderr=True).print(f"[red]error:[/red] {exc}")
    raise typer.Exit(1)


@app.command("list")
def list_command(
    root: Path | None = ROOT_OPTION,
    counts: bool = typer.Option(True, help="Load present datasets to show their counts."),
) -> None:
    """List every known dataset, whether it is present, and its size."""
    table = Table(title="shopflow datasets")
    for col in ("name", "alias", "present", "users", "items", "interactions", "description"):
        table.add_column(
            col, justify="right" if col in {"users", "items", "interactions"} else "left"
        )
    for info in datasets.list_datasets(root):
        sizes = ["", "", ""]
        if info.present and counts:
            try:
                data = datasets.load(info.name, root)
                sizes = [f"{data.n_users:,}", f"{data.n_items:,}", f"{data.n_interactions:,}"]
            except ShopflowError as exc:
                sizes = ["error", "", str(exc)[:40]]
        table.add_row(
            info.name,
            ", ".join(info.aliases),
            "yes" if info.present else "[red]no[/red]",
            *sizes,
            info.description,
        )
    Console().print(table)


@app.command("show")
def show_command(
    name: str = typer.Argument(..., help="Dataset name or alias (beauty, sports, ...)."),
    root: Path | None = ROOT_OPTION,
) -> None:
    """Counts, sequence-length statistics and side information of one dataset."""
    try:
        data = datasets.load(name, root)
    except ShopflowError as exc:
        _fail(exc)
        return
    lengths = np.array([len(s) for s in data.sequences])
    table = Table(title=data.name, show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("users", f"{data.n_users:,}")
    table.add_row("items", f"{data.n_items:,}")
    table.add_row("interactions", f"{data.n_interactions:,}")
    if len(lengths):
        table.add_row(
            "sequence length min / median / mean / p90 / max",
            f"{lengths.min()} / {np.median(lengths):g} / {lengths.mean():.2f} / "
            f"{np.percentile(lengths, 90):g} / {lengths.max()}",
        )
    side = [
        f
        for f in ("text", "brand", "categories", "attributes", "price")
        if getattr(data.side, f) is not None
    ]
    table.add_row("item side information", ", ".join(side) or "none")
    if data.timestamps is not None and data.n_interactions:
        ts = np.concatenate(data.timestamps)
        lo, hi = (np.datetime64(int(x), "s") for x in (ts.min(), ts.max()))
        table.add_row("time range (UTC)", f"{lo} .. {hi}")
    if data.event_types is not None and data.n_interactions:
        kinds, n = np.unique(np.concatenate(data.event_types).astype(str), return_counts=True)
        table.add_row("event types", ", ".join(f"{k} {c:,}" for k, c in zip(kinds, n, strict=True)))
    Console().print(table)
