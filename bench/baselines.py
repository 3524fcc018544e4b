"""Baselines benchmark: every baseline model, leave-one-out, full ranking, own history excluded.

Beauty and Sports (S3-Rec data) with pop, trending, covisit, itemknn, als, bpr; Scientific (UniSRec
data, with item text) with the same models plus content. Each dataset is one
:func:`shopflow.eval.runner.evaluate` call, exactly what ``shopflow evaluate`` runs: tuning on the
validation targets where a model has a grid, refit on train + validation, scoring of every user.
Prints one table, writes ``bench/results/baselines.json`` and a report per dataset under
``bench/results/baselines/<dataset>/``.

BLAS / OpenMP are limited to one thread unless already set (the machine is shared).

Usage::

    .venv/bin/python bench/baselines.py                      # everything (minutes)
    .venv/bin/python bench/baselines.py --datasets beauty     # replaces Beauty's run in the file
    .venv/bin/python bench/baselines.py --datasets beauty --models pop,covisit --out /tmp/b.json
    .venv/bin/python bench/baselines.py --pop-counts   # Pop on Beauty, three sources of counts
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from shopflow.datasets import load  # noqa: E402
from shopflow.eval.report import fmt, write_report  # noqa: E402
from shopflow.eval.runner import evaluate  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SEQUENCE_BASELINES = ["pop", "trending", "covisit", "itemknn", "als", "bpr"]
PLAN: dict[str, list[str]] = {
    "beauty": SEQUENCE_BASELINES,
    "sports": SEQUENCE_BASELINES,
    "scientific": [*SEQUENCE_BASELINES, "content"],
}
KS = (5, 10, 20)
# Small grids tuned on the validation targets (the defaults were already chosen on Beauty's
# validation targets by the models' authors; these check them per dataset). Content has no grid:
# each fit re-encodes every item text.
GRIDS: dict[str, dict[str, list[Any]]] = {
    "covisit": {"pop_alpha": [0.0, 0.1, 0.3]},
    "itemknn": {"neighbours": [50, 100, 200]},
    "als": {"factors": [128, 256]},
    "bpr": {"factors": [64, 128]},
}


def command(dataset: str, model: str, no_tune: bool) -> str:
    """The one-model command that reproduces a row (same split, tuning and seeds)."""
    extra = " --no-tune" if no_tune else ""
    for key, values in ({} if no_tune else GRIDS.get(model, {})).items():
        extra += f" --grid {model}.{key}={','.join(map(str, values))}"
    return f"shopflow evaluate --dataset {dataset} --models {model} --k 5,10,20{extra}"


def run(datasets: list[str], models: list[str] | None, no_tune: bool) -> dict[str, Any]:
    console = Console(stderr=True)
    out: dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%S"), "runs": {}}
    for name in datasets:
        wanted = [m for m in PLAN[name] if models is None or m in models]
        if not wanted:
            continue
        data = load(name)

        def progress(label: str, done: int, total: int, name: str = name) -> None:
            if done == total:
                console.print(f"[dim]{time.strftime('%H:%M:%S')} {name} {label} done[/dim]")

        t0 = time.perf_counter()
        grids = {m: g for m, g in GRIDS.items() if m in wanted}
        result = evaluate(data, wanted, "loo", KS, grids, no_tune=no_tune, progress=progress)
        write_report(result, RESULTS / "baselines" / name)
        out["runs"][name] = {
            "seconds": time.perf_counter() - t0,
            "commands": {m: command(name, m, no_tune) for m in wanted},
            "result": result.to_dict(),
        }
        console.print(f"{name}: done in {time.perf_counter() - t0:.0f} s")
    return out


COLUMNS = [
    "dataset",
    "model",
    "HR@10",
    "NDCG@10",
    "HR@20",
    "NDCG@20",
    "fit s (CPU s)",
    "fit peak MB",
    "score s (CPU s)",
    "score peak MB",
    "tuned on validation",
]


def rows(out: dict[str, Any]) -> list[list[str]]:
    """One row per (dataset, model) of a results file."""
    table = []
    for name, run_ in out["runs"].items():
        for m in run_["result"]["models"]:
            met, fit, score = m["metrics"], m["fit"], m["score"]
            chosen = (m["tuning"] or {}).get("chosen", {})
            tuned = ", ".join(f"{k}={v}" for k, v in chosen.items())
            table.append(
                [
                    name,
                    m["name"],
                    fmt(met["hit_rate@10"]),
                    fmt(met["ndcg@10"]),
                    fmt(met["hit_rate@20"]),
                    fmt(met["ndcg@20"]),
                    f"{fmt(fit['seconds'], 1)} ({fmt(fit.get('cpu_seconds'), 1)})",
                    fmt(fit["peak_mb"], 0),
                    f"{fmt(score['seconds'], 1)} ({fmt(score.get('cpu_seconds'), 1)})",
                    fmt(score["peak_mb"], 0),
                    tuned or "defaults",
                ]
            )
    return table


def rich_table(out: dict[str, Any]) -> Table:
    t = Table(title="baselines: leave-one-out, full ranking, own history excluded")
    for c in COLUMNS:
        t.add_column(c, justify="left" if c in ("dataset", "model") or "tuned" in c else "right")
    for row in rows(out):
        t.add_row(*row)
    return t


def markdown(out: dict[str, Any]) -> str:
    """The table for docs/benchmarks.md, with the command that reproduces each row."""
    lines = ["| " + " | ".join([*COLUMNS, "command"]) + " |"]
    lines.append("|" + "---|" * (len(COLUMNS) + 1))
    for row in rows(out):
        cmd = out["runs"][row[0]]["commands"][row[1]]
        lines.append("| " + " | ".join([*row, f"`{cmd}`"]) + " |")
    return "\n".join(lines) + "\n"


def pop_counts(dataset: str = "beauty") -> list[tuple[str, float, float]]:
    """Pop's HR@10 / NDCG@10 (leave-one-out, own history excluded, ties to the lower index) with
    item counts from three parts of the data, computed here without the runner."""
    data = load(dataset)
    n = data.n_items
    index = np.arange(n)
    out = []
    parts = (
        ("training part only (all but the last two items)", -2),
        ("everything but the test item", -1),
        ("everything, test items included (a leak)", 0),
    )
    for label, cut in parts:
        counts = np.bincount(
            np.concatenate([s[:cut] if cut else s for s in data.sequences]), minlength=n
        ).astype(np.float64)
        hr, ndcg = [], []
        for seq in data.sequences:
            c = counts.copy()
            c[seq[:-1]] = -np.inf  # own history excluded
            t = seq[-1]
            rank = int((c > c[t]).sum() + ((c == c[t]) & (index < t)).sum())
            hr.append(rank < 10)
            ndcg.append(1 / np.log2(rank + 2) if rank < 10 else 0.0)
        out.append((label, float(np.mean(hr)), float(np.mean(ndcg))))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(PLAN), help="comma-separated")
    parser.add_argument("--models", default=None, help="comma-separated subset (default all)")
    parser.add_argument("--no-tune", action="store_true", help="defaults only")
    parser.add_argument("--out", type=Path, default=RESULTS / "baselines.json")
    parser.add_argument(
        "--render", type=Path, default=None, help="only print the tables of this results file"
    )
    parser.add_argument(
        "--pop-counts", action="store_true", help="only Pop on Beauty with three count sources"
    )
    args = parser.parse_args(argv)
    if args.pop_counts:
        for label, hr, ndcg in pop_counts():
            sys.stdout.write(f"| {label} | {hr:.4f} | {ndcg:.6f} |\n")
        return 0
    if args.render is not None:
        out = json.loads(args.render.read_text())
        Console().print(rich_table(out))
        sys.stdout.write(markdown(out))
        return 0
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(datasets) - set(PLAN))
    if unknown:
        parser.error(f"unknown dataset(s) {unknown}; known: {', '.join(PLAN)}")
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    out = run(datasets, models, args.no_tune)
    out["argv"] = sys.argv
    if args.out.is_file() and models is None:  # keep the other datasets' runs of the file
        previous = json.loads(args.out.read_text())
        out["runs"] = {**previous.get("runs", {}), **out["runs"]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(out))
    Console().print(rich_table(out))
    Console().print(f"written: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
