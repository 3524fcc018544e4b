"""``shopflow train``: fit every model on the store's events and publish one model bundle.

The work is :func:`shopflow.train.train_bundle`; this module draws one progress line per step (data,
text vectors, each model with its fit time), prints the table of fit times and validation metrics,
and names the bundle. :func:`train_if_needed` is what ``shopflow demo run`` calls before serving.
Heavy modules are imported inside the functions so that ``shopflow --help`` stays fast.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from shopflow.config import Settings
    from shopflow.store.store import Store
    from shopflow.train import StepReport

log = logging.getLogger(__name__)
HELP = (
    "Train the models on the store's events and publish a new model bundle.\n\n"
    "Every catalogue item gets a place (new items are recommendable through their text). Each "
    "model is checked offline on held-out validation items (leave-one-out, full ranking, own "
    "history excluded); a model that fails is left out and the rest is still published.\n\n"
    "\b\nExamples:\n"
    "  shopflow train\n"
    "  shopflow train --models trending,covisit,als --cutoff 2026-10-15\n"
    "  shopflow train --time-budget 60\n"
    "  shopflow train --warm-start current --warm-epochs 3\n"
)
DEMO_TIME_BUDGET_S = 110.0  # model fitting in `shopflow demo run`: keeps `make run` under 3 minutes
STEP_NAMES = {
    "data": "reading events and catalogue",
    "text": "item text vectors",
    "write": "writing the bundle",
}


@contextmanager
def progress_lines(console: Console) -> Iterator[Callable[[StepReport], None]]:
    """Rich progress with one line per training step; yields the ``progress`` callback."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    marks = {"fitted": "[green]✓", "done": "[green]✓", "skipped": "[yellow]–", "failed": "[red]✗"}
    with Progress(
        SpinnerColumn(finished_text=""),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        tasks: dict[str, Any] = {}

        def on_step(step: StepReport) -> None:
            label = STEP_NAMES.get(step.name, f"model {step.name}")
            if step.status == "running":
                tasks[step.name] = bar.add_task(label, total=1)
                return
            task = tasks.get(step.name)
            if task is None:
                task = tasks[step.name] = bar.add_task(label, total=1)
            note = f" in {step.seconds:.1f} s" if step.seconds else ""
            if "ndcg@10" in step.metrics:
                note += f", val NDCG@10 {step.metrics['ndcg@10']:.4f}"
            note += f" — {step.detail}" if step.detail else ""
            bar.update(
                task,
                completed=1,
                description=f"{marks.get(step.status, '')} {label}: {step.status}{note}",
            )
            bar.stop_task(task)

        yield on_step


def print_summary(console: Console, path: Path) -> None:
    """The table of models (status, fit seconds, validation HR@10 / NDCG@10) and the bundle."""
    import json

    from rich.table import Table

    manifest = json.loads((path / "manifest.json").read_text())
    metrics = manifest["metrics"]
    table = Table(title=f"bundle {manifest['version']}")
    for col in ("model", "status", "fit s", "val HR@10", "val NDCG@10"):
        table.add_column(col, justify="left" if col in ("model", "status") else "right")
    for name in manifest["settings"]["models"]:
        m = metrics["models"].get(name, {})
        status = (
            "fitted"
            if name in manifest["models"]
            else "skipped"
            if name in manifest["skipped"]
            else "failed"
        )
        fit = manifest["fit_seconds"].get(name)
        table.add_row(
            name,
            status,
            f"{fit:.1f}" if fit is not None else "",
            f"{m['hr@10']:.4f}" if "hr@10" in m else "",
            f"{m['ndcg@10']:.4f}" if m else "",
        )
    console.print(table)
    console.print(
        f"validation: the second-to-last item of {metrics['n_users']:,} sampled users "
        "(leave-one-out, every item ranked, own history excluded)\n"
        f"trained on {manifest['n_interactions']:,} interactions of {manifest['n_users']:,} users "
        f"over {manifest['n_items']:,} items, up to {manifest['training_cutoff']}\n"
        f"bundle: {path} (now current)"
    )
    for name, why in {**manifest["skipped"], **manifest["failed"]}.items():
        console.print(f"[yellow]left out[/yellow] {name}: {why}")
    warm = manifest.get("warm_start")
    if warm:
        console.print(
            f"sasrec warm-started from bundle {warm['from']} (cutoff {warm['from_cutoff']}): "
            f"{warm['new_items']} new items, {warm['new_events']:,} new events of "
            f"{warm['users_with_new_events']:,} users, {warm['epochs']} epochs, no offline check"
        )


def run_training(console: Console, store: Store, settings: Settings, **kwargs: Any) -> Path:
    """:func:`shopflow.train.train_bundle` with progress lines and the summary table."""
    from shopflow.train import train_bundle

    with progress_lines(console) as on_step:
        path = train_bundle(store, settings, progress=on_step, **kwargs)
    print_summary(console, path)
    return path


def train_if_needed(console: Console, store: Store, settings: Settings) -> Path | None:
    """Train a bundle when there is none or the store changed since the current one (demo run)."""
    from shopflow.store.bundles import BundleStore
    from shopflow.train import NoEvents, needs_training

    bundles = BundleStore(settings.data_dir / "bundles")
    reason = needs_training(store, bundles)
    if reason is None:
        console.print(f"Model bundle {bundles.current_version()} is up to date with the store.")
        return bundles.current()
    console.print(f"Training ({reason}; time budget {DEMO_TIME_BUDGET_S:.0f} s)…")
    try:
        return run_training(console, store, settings, time_budget_s=DEMO_TIME_BUDGET_S)
    except NoEvents as exc:
        console.print(f"[yellow]not training:[/yellow] {exc}; serving without models")
    except Exception as exc:  # the demo still serves: the previous bundle, or the fallbacks
        log.exception("training failed")
        console.print(f"[red]training failed:[/red] {exc}; serving what was there before")
    return bundles.current()


def _models(text: str) -> list[str]:
    from shopflow.errors import NotFound
    from shopflow.models.bundle import model_class

    names = list(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    if not names:
        raise typer.BadParameter(
            "give at least one model, e.g. trending,covisit", param_hint="--models"
        )
    for name in names:
        try:
            model_class(name)
        except NotFound as exc:
            raise typer.BadParameter(str(exc), param_hint="--models") from None
    return names


def _overrides(pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["als.factors=128", "sasrec.epochs=5"]`` → ``{"als": {"factors": 128}, ...}``.

    Values are read as JSON (numbers, true/false, lists), anything else as a plain string.
    """
    import json

    out: dict[str, dict[str, Any]] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        model, dot, setting = key.strip().partition(".")
        if not (sep and dot and model and setting):
            raise typer.BadParameter(f"{pair!r} is not MODEL.SETTING=VALUE", param_hint="--set")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # a bare string
        out.setdefault(model, {})[setting] = value
    from dataclasses import fields

    from shopflow.models.bundle import model_class

    for model, values in out.items():
        try:
            known = {f.name for f in fields(model_class(model).config_cls)}
        except Exception as exc:
            raise typer.BadParameter(str(exc), param_hint="--set") from None
        unknown = sorted(set(values) - known)
        if unknown:
            raise typer.BadParameter(
                f"{model} has no setting {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                param_hint="--set",
            )
    return out


def _warm_start(text: str, epochs: int, names: list[str], settings: Settings) -> Any:
    from shopflow.errors import NotFound
    from shopflow.train_update import WARM_MODEL, WarmStart, resolve_bundle

    if WARM_MODEL not in names:
        raise typer.BadParameter(
            f"a warm start updates {WARM_MODEL}: include it in --models", param_hint="--warm-start"
        )
    try:
        return WarmStart(resolve_bundle(text, settings.data_dir / "bundles"), epochs=epochs)
    except NotFound as exc:
        raise typer.BadParameter(str(exc), param_hint="--warm-start") from None


def train_command(
    models: str = typer.Option(
        "trending,covisit,als,content,sasrec", "--models", help="Comma-separated registry names."
    ),
    cutoff: str | None = typer.Option(
        None, "--cutoff", help="Train on events before this ISO time (e.g. 2026-10-15T00:00:00Z)."
    ),
    time_budget: float | None = typer.Option(
        None, "--time-budget", min=1, help="Seconds for fitting; torch models are capped to fit."
    ),
    eval_users: int = typer.Option(
        500, "--eval-users", min=0, help="Users sampled for the offline check (0: none)."
    ),
    text: bool = typer.Option(
        True, "--text/--no-text", help="Embed item texts (content, search, cold items)."
    ),
    settings_: list[str] = typer.Option(
        [], "--set", help="A model setting, MODEL.SETTING=VALUE (repeatable), e.g. als.factors=128."
    ),
    warm_start: str | None = typer.Option(
        None,
        "--warm-start",
        help="Fine-tune sasrec from this bundle (a directory, or `current`) on the events after "
        "its cutoff, new items added, instead of training it from scratch.",
    ),
    warm_epochs: int = typer.Option(3, "--warm-epochs", min=1, help="Epochs of a warm start."),
) -> None:
    """Train every model on the store's events and publish a model bundle."""
    from rich.console import Console

    from shopflow.config import load_settings
    from shopflow.errors import ShopflowError
    from shopflow.store.store import Store
    from shopflow.train import parse_cutoff

    console = Console(stderr=True)
    names = _models(models)
    overrides = _overrides(settings_)
    try:
        when = parse_cutoff(cutoff)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--cutoff") from None
    settings = load_settings()
    warm = _warm_start(warm_start, warm_epochs, names, settings) if warm_start else None
    try:
        store = Store.from_settings(settings)
    except ShopflowError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        path = run_training(
            console,
            store,
            settings,
            models=names,
            cutoff=when,
            time_budget_s=time_budget,
            eval_users=eval_users,
            text_vectors=text,
            overrides=overrides,
            warm_start=warm,
        )
    except ShopflowError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    finally:
        store.close()
    typer.echo(path)
