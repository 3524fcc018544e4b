"""Incremental update of the sequential model against a full retrain, on a leave-one-out dataset.

Beauty has no timestamps, so "later" is simulated by users: a seeded random ``--late`` share of the
users arrive after the base model was trained, with all their events; the items that only they
touched (or nobody did) are the new items. Protocol (DESIGN.md §6): leave-one-out, full ranking,
own history excluded — every model is tested on every user's last item, trained on what comes
before it (all but the last item; early stopping on ``--val-users`` held-out items).

- **base**: trained from scratch on the early users, over the old items only;
- **base, items added**: ``sasrec_update.extend_items`` (rows from side information), no training;
- **warm start**: that, then ``sasrec_update.fine_tune`` for ``--fine-tune-epochs`` on the late
  users' sequences plus ``--replay`` × as many early users' sequences (against forgetting);
- **full retrain**: trained from scratch on everyone, same settings as the base.

Reports test HR@10 / NDCG@10 over all users, over the late users, and over test targets that are new
items; training seconds (wall and CPU) of each step. One thread.

Usage::

    .venv/bin/python bench/sequential_update.py --epochs 4 --fine-tune-epochs 2   # short settings
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from dataclasses import replace  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402


def permute_items(data: Any, early: np.ndarray) -> tuple[np.ndarray, int]:
    """New ids: items in the early users' sequences first (old), then the rest (new).

    Returns ``new_id`` (N,) mapping original → permuted ids, and the number of old items.
    """
    seen = np.zeros(data.n_items, dtype=bool)
    for u in early:
        seen[data.sequences[u]] = True
    order = np.concatenate([np.flatnonzero(seen), np.flatnonzero(~seen)])
    new_id = np.empty(data.n_items, dtype=np.int64)
    new_id[order] = np.arange(data.n_items)
    return new_id, int(seen.sum())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--late", type=float, default=0.1, help="share of users arriving later")
    p.add_argument("--epochs", type=int, default=200, help="most epochs of base and retrain")
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--val-users", type=int, default=2000)
    p.add_argument("--fine-tune-epochs", type=int, default=2)
    p.add_argument("--fine-tune-lr", type=float, default=None, help="default: the model's lr")
    p.add_argument("--replay", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--limit-users", type=int, default=None, help="first N users only (smoke run)")
    args = p.parse_args()

    import torch
    from rich.console import Console
    from rich.table import Table

    from shopflow.datasets import load
    from shopflow.eval.metrics import hit_rate_at_k, mean_metric, ndcg_at_k
    from shopflow.eval.split import LOO_PROTOCOL, leave_one_out
    from shopflow.models.sasrec_model import SASRecModel
    from shopflow.models.sasrec_update import extend_items, fine_tune, side_rows
    from shopflow.retrieval import ExactIndex
    from shopflow.store.idmap import IdMap

    torch.set_num_threads(1)
    console = Console(width=200)
    load_start = os.getloadavg()
    rng = np.random.default_rng(args.seed)
    data = load(args.dataset)
    if args.limit_users:
        data = replace(data, users=IdMap(data.users.external_ids[: args.limit_users]),
                       sequences=data.sequences[: args.limit_users], timestamps=None)  # fmt: skip
    split = leave_one_out(data)
    full = split.train_with_validation()  # all but each user's test item
    n_users = full.n_users
    late = np.sort(rng.choice(n_users, round(args.late * n_users), replace=False))
    is_late = np.zeros(n_users, dtype=bool)
    is_late[late] = True
    early = np.flatnonzero(~is_late)
    new_id, n_old = permute_items(full, early)
    order = np.argsort(new_id)  # permuted id → original id
    side = side_rows(full.side, order)
    seqs = [new_id[s] for s in full.sequences]
    items = IdMap([full.items.external_ids[i] for i in order])
    everyone = replace(full, items=items, sequences=seqs, timestamps=None, side=side)

    def model() -> SASRecModel:
        return SASRecModel(epochs=args.epochs, patience=args.patience,
                           max_val_users=args.val_users, seed=args.seed, progress=True)  # fmt: skip

    def timed(work: Any) -> tuple[Any, float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        out = work()
        return out, time.perf_counter() - wall, time.process_time() - cpu

    base_data = replace(
        everyone,
        users=IdMap([everyone.users.external_ids[u] for u in early]),
        items=IdMap(items.external_ids[:n_old]),
        sequences=[seqs[u] for u in early],
        side=side_rows(side, np.arange(n_old)),
    )
    base, base_s, base_cpu = timed(lambda: model().fit(base_data))
    added = extend_items(base, everyone.n_items - n_old, side=side)
    warm = extend_items(base, everyone.n_items - n_old, side=side)
    replay = rng.choice(early, round(args.replay * len(late)), replace=False)
    tune_seqs = [seqs[u] for u in np.concatenate([late, replay])]
    _, tune_s, tune_cpu = timed(
        lambda: fine_tune(warm, tune_seqs, epochs=args.fine_tune_epochs, lr=args.fine_tune_lr)
    )
    retrain, full_s, full_cpu = timed(lambda: model().fit(everyone))

    test_hist = [new_id[h] for h in split.test_histories]
    targets = new_id[split.test_targets]
    groups = {
        "all users": np.ones(len(targets), dtype=bool),
        "late users": is_late[split.users],
        "new-item targets": targets >= n_old,
    }

    def metrics(m: SASRecModel) -> dict[str, dict[str, float]]:
        index = ExactIndex().build(m.item_vectors())
        recs = np.concatenate([
            index.search(m.encode(test_hist[lo : lo + 2048]), k=10,
                         exclude=test_hist[lo : lo + 2048])[0]
            for lo in range(0, len(test_hist), 2048)
        ])  # fmt: skip
        hr, ndcg = hit_rate_at_k(recs, targets, 10), ndcg_at_k(recs, targets, 10)
        return {
            g: {"hr@10": mean_metric(hr[mask]), "ndcg@10": mean_metric(ndcg[mask]),
                "users": int(mask.sum())}
            for g, mask in groups.items()
        }  # fmt: skip

    rows = {
        "base + items added (no training)": {"metrics": metrics(added), "seconds": base_s,
                                          "cpu_seconds": base_cpu, "epochs": len(base.history)},
        "warm start (items added + fine-tune)": {"metrics": metrics(warm), "seconds": tune_s,
                                                 "cpu_seconds": tune_cpu,
                                                 "epochs": args.fine_tune_epochs},
        "full retrain (everyone)": {"metrics": metrics(retrain), "seconds": full_s,
                                    "cpu_seconds": full_cpu, "epochs": len(retrain.history)},
    }  # fmt: skip
    result = {
        "dataset": data.name,
        "protocol": LOO_PROTOCOL,
        "scenario": f"{len(late)} of {n_users} users arrive later ({args.late:.0%}); "
        f"{everyone.n_items - n_old} of {everyone.n_items} items are new",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "fine_tune_sequences": len(tune_seqs),
        "rows": rows,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "threads": 1,
    }
    out = args.out or Path(__file__).parent / "results" / f"sequential_update_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))

    table = Table(title=f"SASRec incremental update on {data.name} — {result['scenario']}")
    cols = ["model", "NDCG@10", "HR@10", "NDCG@10 late users", "NDCG@10 new-item targets",
            "train s", "train CPU s", "epochs"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "model" else "right")
    for name, r in rows.items():
        m = r["metrics"]
        table.add_row(
            name,
            f"{m['all users']['ndcg@10']:.4f}",
            f"{m['all users']['hr@10']:.4f}",
            f"{m['late users']['ndcg@10']:.4f}",
            f"{m['new-item targets']['ndcg@10']:.4f}",
            f"{r['seconds']:.0f}",
            f"{r['cpu_seconds']:.0f}",
            str(r["epochs"]),
        )
    console.print(table)
    console.print(f"load average {load_start} → {os.getloadavg()}; written to {out}")


if __name__ == "__main__":
    main()
