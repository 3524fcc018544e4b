"""Cold-item benchmark: HR@10 / NDCG@10 on test targets that were held out of training entirely.

Protocol: :mod:`shopflow.eval.cold` — a seeded random 10 % of the catalogue is removed from
training (every event on it dropped); leave-one-out test cases (last item = target, history =
everything before it, cold items kept in it); full ranking over every item, the history excluded;
ties at their expected rank. "cold" = cases whose target is a held-out item, "warm" = the rest.

Models (each sees only the training data):

- ``pop``: popularity over the training events (cold items have none: ~0).
- ``content``: :class:`~shopflow.models.content.ContentBased`, MiniLM text cosine to the
  recency-weighted history (needs item text).
- ``sasrec``: the sequential transformer with no side information (cold items: zero vectors).
- ``sasrec+tokens``: with brand / category / attribute tokens (``side_tokens=True``).
- ``sasrec+text``: with frozen MiniLM text vectors only (``side_text=True``).
- ``sasrec+tokens+text``: both.

SASRec variants train on the warm catalogue only and get the cold items appended afterwards, from
side information alone (:mod:`shopflow.eval.cold_sasrec`). Small settings so that each fits in a
few minutes on one thread: hidden 64, 2 layers, max_len 50, batch 64, at most 20 epochs, patience
3 validations, validation on 2,000 random users (the others train on their full sequences).

Side information per dataset: Beauty (S3-Rec) has attribute ids (brand and category tokens) and no
text, so content and the text variants are skipped there. Scientific (UniSRec) has item text only,
written as ``"<title>. <category path>. <brand>. "``; with ``--tokens-from-text`` (default) the
brand and the whole category path are read off that text as two tokens per item, so that the
token variants have something to use; the text variants embed the whole text.

Usage::

    .venv/bin/python bench/cold_items.py --datasets scientific beauty
    .venv/bin/python bench/cold_items.py --datasets scientific --models pop,sasrec --epochs 1
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from shopflow.datasets import load  # noqa: E402
from shopflow.eval.cold import ColdItemSplit, chance_level, cold_item_split, evaluate_cold  # noqa: E402
from shopflow.eval.cold_sasrec import fit_cold_sasrec  # noqa: E402
from shopflow.eval.measure import machine_info, measure  # noqa: E402
from shopflow.features.sequences import InteractionData, ItemSide  # noqa: E402
from shopflow.models.base import Recommender  # noqa: E402
from shopflow.models.content import ContentBased  # noqa: E402
from shopflow.models.popular import Popular  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ["pop", "content", "sasrec", "sasrec+tokens", "sasrec+text", "sasrec+tokens+text"]
SIDE = {  # SASRec variants: (side_tokens, side_text)
    "sasrec": (False, False),
    "sasrec+tokens": (True, False),
    "sasrec+text": (False, True),
    "sasrec+tokens+text": (True, True),
}


def tokens_from_text(data: InteractionData) -> InteractionData:
    """Brand and category path read off UniSRec texts ``"<title>. <categories>. <brand>. "``.

    The last ``". "``-separated part is the brand, the one before it the category path (titles
    may contain ``". "`` themselves, so parts are counted from the end). Texts with fewer than
    three parts, or an empty part, give no token.
    """
    if data.side.text is None:
        raise ValueError(f"{data.name} has no item text to read brands and categories from")
    brands: list[str | None] = []
    cats: list[list[str]] = []
    for text in data.side.text:
        parts = (text or "").strip().rstrip(".").split(". ")
        ok = len(parts) >= 3
        brands.append((parts[-1].strip() or None) if ok else None)
        cats.append([parts[-2].strip()] if ok and parts[-2].strip() else [])
    return replace(data, side=replace(data.side, brand=brands, categories=cats))


def has_tokens(side: ItemSide) -> bool:
    return any(
        v is not None and any(bool(x) for x in v)
        for v in (side.attributes, side.brand, side.categories)
    )


def skip_reason(model: str, side: ItemSide) -> str | None:
    """Why ``model`` cannot run on data with ``side`` (None: it can)."""
    needs_text = model == "content" or model.endswith("text")
    if needs_text and side.text is None:
        return "no item text"
    if "tokens" in model and not has_tokens(side):
        return "no brand, category or attribute tokens"
    return None


def fit(model: str, split: ColdItemSplit, args: argparse.Namespace) -> Recommender:
    if model == "pop":
        return Popular().fit(split.train)
    if model == "content":
        return ContentBased(cache_dir=str(args.text_cache)).fit(split.train)
    tokens, text = SIDE[model]
    return fit_cold_sasrec(
        split,
        side_tokens=tokens,
        side_text=text,
        hidden=args.hidden,
        n_layers=args.layers,
        max_len=args.max_len,
        batch_size=args.batch_size,
        epochs=args.epochs,
        patience=args.patience,
        max_val_users=args.max_val_users,
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
        seed=args.seed,
        device="cpu",
        progress=args.progress,
    )


def run_dataset(name: str, args: argparse.Namespace, console: Console) -> dict[str, Any]:
    data = load(name)
    if args.tokens_from_text and data.side.text is not None and not has_tokens(data.side):
        data = tokens_from_text(data)
    split = cold_item_split(data, fraction=args.fraction, seed=args.seed)
    k = args.k
    out: dict[str, Any] = {
        "dataset": data.name,
        "protocol": split.protocol(k),
        "n_users": data.n_users,
        "n_items": data.n_items,
        "n_cold_items": len(split.cold_items),
        "n_cold_cases": int(split.is_cold.sum()),
        "n_warm_cases": int((~split.is_cold).sum()),
        "tokens_from_text": data.side.brand is not None and name == "scientific",
        "rows": [{"model": "random", "fit_s": 0.0, **chance_level(split, k)}],
    }
    console.print(
        f"{name}: {data.n_items} items, {len(split.cold_items)} cold; "
        f"{out['n_cold_cases']} cold and {out['n_warm_cases']} warm test cases"
    )
    for model in args.models:
        reason = skip_reason(model, data.side)
        if reason:
            out["rows"].append({"model": model, "skipped": reason})
            continue
        load_before = os.getloadavg()[0]
        with measure() as cost:
            fitted = fit(model, split, args)
        row: dict[str, Any] = {"model": model, "fit_s": cost[0].seconds}
        row["fit_cpu_s"] = cost[0].cpu_seconds
        row["load_1m"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
        result = getattr(fitted, "result", None)
        if result is not None:
            row["best_epoch"] = result.best_epoch
            row["epochs_run"] = len(result.history)
            row["best_val_ndcg@10"] = result.best_score
        row.update(evaluate_cold(fitted, split, k, progress=args.progress))
        out["rows"].append(row)
        c, w = row["cold"], row["warm"]
        console.print(
            f"  {model}: cold HR@{k} {c[f'hr@{k}']:.4f} NDCG@{k} {c[f'ndcg@{k}']:.4f}; "
            f"warm HR@{k} {w[f'hr@{k}']:.4f} NDCG@{k} {w[f'ndcg@{k}']:.4f} "
            f"({cost[0].seconds:.0f} s)"
        )
    return out


def table(result: dict[str, Any], k: int) -> Table:
    t = Table(title=f"Cold items — {result['dataset']} ({result['n_cold_cases']} cold cases)")
    for col in ("model", f"cold HR@{k}", f"cold NDCG@{k}", f"warm HR@{k}", f"warm NDCG@{k}"):
        t.add_column(col)
    for col in ("best epoch", "fit s (CPU s)"):
        t.add_column(col)
    for row in result["rows"]:
        if "skipped" in row:
            t.add_row(row["model"], f"skipped: {row['skipped']}", "", "", "", "", "")
            continue
        c, w = row["cold"], row["warm"]

        exact = row["model"] == "random"  # an expectation, not an estimate

        def cell(block: dict[str, Any], key: str, exact: bool = exact) -> str:
            return f"{block[key]:.4f}" + ("" if exact else f" ± {block[f'{key}_se']:.4f}")

        t.add_row(
            row["model"],
            cell(c, f"hr@{k}"),
            cell(c, f"ndcg@{k}"),
            cell(w, f"hr@{k}"),
            cell(w, f"ndcg@{k}"),
            str(row.get("best_epoch", "")),
            f"{row['fit_s']:.0f} ({row.get('fit_cpu_s', 0.0):.0f})",
        )
    return t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["scientific", "beauty"])
    p.add_argument("--models", type=lambda s: s.split(","), default=MODELS)
    p.add_argument("--fraction", type=float, default=0.1, help="share of items held out")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--max-val-users", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, default=None, help="training time cap per model")
    p.add_argument(
        "--tokens-from-text",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="read brand and category tokens off the item text where the data has no tokens",
    )
    p.add_argument("--text-cache", type=Path, default=RESULTS / "text_cache")
    p.add_argument(
        "--out", type=Path, default=None, help="default bench/results/cold_items_<dataset>.json"
    )
    p.add_argument("--progress", action="store_true")
    args = p.parse_args()
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        p.error(f"unknown models {unknown}; known: {', '.join(MODELS)}")

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    console = Console(width=160)
    command = (
        f".venv/bin/python bench/cold_items.py --datasets {' '.join(args.datasets)} "
        f"--models {','.join(args.models)} --fraction {args.fraction} --seed {args.seed} "
        f"--epochs {args.epochs} --patience {args.patience} --hidden {args.hidden} "
        f"--layers {args.layers} --max-val-users {args.max_val_users} --threads {args.threads}"
        + ("" if args.max_minutes is None else f" --max-minutes {args.max_minutes}")
        + ("" if args.tokens_from_text else " --no-tokens-from-text")
    )
    for name in args.datasets:
        start = time.strftime("%Y-%m-%dT%H:%M:%S")
        result = run_dataset(name, args, console)
        result.update(
            created=start,
            command=command,
            settings={k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            machine=machine_info(),
        )
        out = args.out or RESULTS / f"cold_items_{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=1))
        console.print(table(result, args.k))
        console.print(f"written to {out}")


if __name__ == "__main__":
    main()
