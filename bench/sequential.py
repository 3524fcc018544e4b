"""Sequential transformer on the Amazon leave-one-out benchmarks: quality, training time, latency.

Protocol (DESIGN.md §6): leave-one-out, full ranking — per user the last item is the test target and
the one before it the validation target; the model trains on everything before, early-stops on
validation NDCG@10, and is tested with history = all but the last item; every item is ranked,
the user's own history excluded. Reports HR@{5,10,20} and NDCG@{5,10,20} on test, the best epoch,
seconds per epoch, seconds (wall and CPU) to the best epoch, peak memory, and one-user latency
(encode + top-10 with history excluded) through the exact index and a FAISS HNSW index.

Wall-clock numbers depend on how busy the host is; ``cpu_seconds`` (all threads) and the load
average at start and end are recorded so that a run on a shared machine can be read correctly.

The defaults are the model's: full softmax up to 30,000 items (``--loss auto``), a moving average
of the weights validated and kept (``--ema 0.999``), side tokens, validation on 3,000 users.
``--side-text`` fuses item text vectors where the dataset has item text (the S3-Rec Beauty and
Sports files have none: there it changes nothing).

Usage::

    .venv/bin/python bench/sequential.py --dataset beauty --threads 1 --test-curve
    .venv/bin/python bench/sequential.py --dataset sports --threads 1 --patience 4 --test-curve
    .venv/bin/python bench/sequential.py --dataset beauty --epochs 3 --latency-users 100   # smoke
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from shopflow.datasets import load
from shopflow.eval.metrics import hit_ndcg_from_scores
from shopflow.eval.split import LOO_PROTOCOL, leave_one_out
from shopflow.models.base import mask_seen
from shopflow.models.sasrec_model import SASRecModel
from shopflow.retrieval import ExactIndex, FaissIndex

KS = (5, 10, 20)


def test_metrics(model: SASRecModel, histories: list[np.ndarray], targets: np.ndarray) -> dict:
    """Full-ranking HR@K / NDCG@K on the test targets, history excluded, in chunks of users."""
    sums = {f"{m}@{k}": 0.0 for k in KS for m in ("hr", "ndcg")}
    for lo in range(0, len(histories), 2048):
        hist = histories[lo : lo + 2048]
        scores = model.score(hist)
        mask_seen(scores, hist)
        for k in KS:
            hr, ndcg = hit_ndcg_from_scores(scores, targets[lo : lo + 2048], k)
            sums[f"hr@{k}"] += float(hr.sum())
            sums[f"ndcg@{k}"] += float(ndcg.sum())
    return {key: value / len(histories) for key, value in sums.items()}


def latency(model: SASRecModel, histories: list[np.ndarray], n_users: int, seed: int) -> dict:
    """p50 / p99 milliseconds of one user's top-10 (encode + search, history excluded)."""
    vectors = model.item_vectors()
    t0 = time.perf_counter()
    exact = ExactIndex().build(vectors)
    exact_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    hnsw = FaissIndex(kind="hnsw").build(vectors)
    hnsw_build = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    users = rng.choice(len(histories), size=min(n_users, len(histories)), replace=False)
    out: dict[str, Any] = {"users": len(users), "k": 10}
    overlap = []
    for name, index in (("exact", exact), ("faiss_hnsw", hnsw)):
        times = []
        for u in users:
            hist = histories[u]
            start = time.perf_counter()
            state = model.encode([hist])
            ids, _ = index.search(state, k=10, exclude=[hist])
            times.append(time.perf_counter() - start)
            if name == "faiss_hnsw":
                want, _ = exact.search(state, k=10, exclude=[hist])
                overlap.append(len(set(ids[0]) & set(want[0])) / 10)
        out[name] = {
            "p50_ms": 1000 * float(np.percentile(times, 50)),
            "p99_ms": 1000 * float(np.percentile(times, 99)),
        }
    out["exact"]["build_s"] = exact_build
    out["faiss_hnsw"]["build_s"] = hnsw_build
    out["faiss_hnsw"]["recall@10_vs_exact"] = float(np.mean(overlap))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="beauty", help="beauty | sports (any shopflow dataset)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--max-minutes", type=float, default=None, help="training time budget")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=1)
    p.add_argument("--max-len", type=int, default=50)
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--attn-dropout", type=float, default=0.5)
    p.add_argument(
        "--loss",
        default="auto",
        choices=["full", "sampled", "auto"],
        help="auto: full softmax up to 30,000 items, sampled beyond",
    )
    p.add_argument("--negatives", type=int, default=2048)
    p.add_argument(
        "--side-tokens",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="fuse attribute tokens into item vectors",
    )
    p.add_argument("--rel-bias", action="store_true", help="learned relative attention bias")
    p.add_argument(
        "--side-text", action="store_true", help="fuse frozen all-MiniLM-L6-v2 item text vectors"
    )
    p.add_argument("--patience", type=int, default=6)
    p.add_argument(
        "--val-users",
        type=int,
        default=3000,
        help="validate on this many random users; the others also train on their last "
        "training item (0: every user validates, none trains on its last item)",
    )
    p.add_argument("--lr-patience", type=int, default=2, help="halve lr after this many flat evals")
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument(
        "--ema",
        type=float,
        default=0.999,
        help="validate/keep a moving average of the weights (decay; 0: off)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--latency-users", type=int, default=500)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--save", type=Path, default=None, help="also save the trained model here")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--quality-target", type=float, default=0.05, help="test NDCG@10 to time")
    p.add_argument(
        "--test-curve",
        action="store_true",
        help="also log test metrics per epoch (monitor_*; never used for early stopping) to read "
        "the time needed to reach a quality",
    )
    args = p.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    console = Console(width=200)
    load_start = os.getloadavg()
    data = load(args.dataset)
    split = leave_one_out(data)
    model = SASRecModel(
        hidden=args.hidden,
        n_layers=args.layers,
        n_heads=args.heads,
        max_len=args.max_len,
        dropout=args.dropout,
        attn_dropout=args.attn_dropout,
        side_tokens=args.side_tokens,
        rel_bias=args.rel_bias,
        side_text=args.side_text,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        loss=args.loss,
        n_negatives=args.negatives,
        patience=args.patience,
        lr_patience=args.lr_patience,
        ema_decay=args.ema,
        eval_every=args.eval_every,
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
        seed=args.seed,
        progress=args.progress,
        max_val_users=args.val_users or None,
    )
    # train = all but the last two items; fit() holds out each sequence's last item (= the
    # validation target) for early stopping, so it is given all but the last item.
    monitor = (split.test_histories, split.test_targets) if args.test_curve else None
    model.fit(split.train_with_validation(), monitor=monitor)
    assert model.result is not None
    hist = model.history
    best = next(r for r in hist if r["epoch"] == model.result.best_epoch)
    metrics = test_metrics(model, split.test_histories, split.test_targets)
    lat = latency(model, split.test_histories, args.latency_users, args.seed)
    if args.save is not None:
        model.save(args.save)
    result = {
        "dataset": data.name,
        "protocol": LOO_PROTOCOL,
        "n_users": data.n_users,
        "n_items": data.n_items,
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "model_config": {k: v for k, v in vars(model.config).items()},
        "test": metrics,
        "best_epoch": model.result.best_epoch,
        "best_val_ndcg@10": model.result.best_score,
        "epochs_run": len(hist),
        "seconds_per_epoch": float(np.mean([r["train_seconds"] for r in hist])),
        "seconds_to_best": best["seconds"],
        "cpu_seconds_to_best": best["cpu_seconds"],
        "train_seconds_total": model.result.seconds,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "latency": lat,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "host": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "cpus": os.cpu_count(),
        },
        "history": hist,
    }
    if args.test_curve:  # time to quality, read off the logged test curve (not used for stopping)
        reached = [r for r in hist if r.get("monitor_ndcg@10", 0.0) >= args.quality_target]
        result["time_to_quality"] = {
            "test_ndcg@10_target": args.quality_target,
            "epoch": reached[0]["epoch"] if reached else None,
            "seconds": reached[0]["seconds"] if reached else None,
            "cpu_seconds": reached[0]["cpu_seconds"] if reached else None,
        }
    out = args.out or Path(__file__).parent / "results" / f"sequential_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))

    table = Table(title=f"SASRec on {data.name} — {LOO_PROTOCOL}")
    for col in (
        "HR@10",
        "HR@20",
        "NDCG@10",
        "NDCG@20",
        "best epoch",
        "s/epoch",
        "s to best",
        "CPU s to best",
        "peak MiB",
        "exact p50/p99 ms",
        "HNSW p50/p99 ms",
    ):
        table.add_column(col)
    table.add_row(
        f"{metrics['hr@10']:.4f}",
        f"{metrics['hr@20']:.4f}",
        f"{metrics['ndcg@10']:.4f}",
        f"{metrics['ndcg@20']:.4f}",
        str(model.result.best_epoch),
        f"{result['seconds_per_epoch']:.1f}",
        f"{best['seconds']:.0f}",
        f"{best['cpu_seconds']:.0f}",
        f"{result['peak_rss_mib']:.0f}",
        f"{lat['exact']['p50_ms']:.2f}/{lat['exact']['p99_ms']:.2f}",
        f"{lat['faiss_hnsw']['p50_ms']:.2f}/{lat['faiss_hnsw']['p99_ms']:.2f}",
    )
    console.print(table)
    console.print(f"written to {out}")


if __name__ == "__main__":
    main()
