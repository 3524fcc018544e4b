"""Serving paths of the sequential model: one-user latency, accuracy change and memory of each.

Paths (an encoder behind ``sasrec_runtime.Encoder`` + an index behind ``retrieval.ItemIndex``):

- ``torch + exact``   — ``SASRecModel.encode`` (PyTorch, eval mode) and the exact matrix product;
- ``torch + HNSW``    — the same states through ``FaissIndex(kind="hnsw")``;
- ``ONNX + exact``    — ONNX Runtime on the exported encoder (``sasrec_export.export_onnx``);
- ``int8 ONNX + exact`` — ONNX Runtime dynamic int8 (``sasrec_export.quantize_onnx``);
- ``int8 torch + exact`` — ``torch.ao`` dynamic int8 Linear layers (``TorchInt8Encoder``).

Latency: one request = one user (batch of 1) with the user's latest history (the leave-one-out
test history): encode + top-10 with the history excluded; requests of all paths are interleaved
user by user, after a warm-up, so that a neighbour's load hits every path alike. Accuracy: test
HR@10 / NDCG@10 on every leave-one-out test user (full ranking, history excluded), and the overlap
of each path's top 10 with the exact one. Memory: the model's files on disk, and the resident set
(VmRSS) of a fresh process that imports only what the path needs, then loads the model, builds
the index and answers one request (``--probe``). Everything runs on one thread.

Usage::

    .venv/bin/python bench/sequential_latency.py --epochs 10      # train here, then measure
    .venv/bin/python bench/sequential_latency.py --model DIR      # a model saved by
                                                  # bench/sequential.py --save DIR
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = "1"  # one thread everywhere, before numpy / torch / faiss load

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

PATHS = ("torch + exact", "torch + HNSW", "ONNX + exact", "int8 ONNX + exact", "int8 torch + exact")
PROBES = {  # path → probe kind (what a serving process of that path loads)
    "torch + exact": "torch",
    "torch + HNSW": "torch_hnsw",
    "ONNX + exact": "onnx",
    "int8 ONNX + exact": "onnx_int8",
    "int8 torch + exact": "torch_int8",
}


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe(kind: str, directory: Path) -> None:
    """Child process: RSS after imports, then after loading the path and answering one request."""
    history = [np.array([1, 2, 3], dtype=np.int64)]
    if kind.startswith("onnx"):
        from shopflow.models.sasrec_runtime import OnnxEncoder, recommend
        from shopflow.retrieval import ExactIndex

        before = rss_mib()
        name = "sasrec.int8.onnx" if kind == "onnx_int8" else "sasrec.onnx"
        encoder: Any = OnnxEncoder(directory / name)
        index: Any = ExactIndex().build(np.load(directory / "item_vectors.npy"))
    else:
        import torch

        from shopflow.models.sasrec_export import TorchInt8Encoder
        from shopflow.models.sasrec_model import SASRecModel
        from shopflow.models.sasrec_runtime import recommend
        from shopflow.retrieval import ExactIndex, FaissIndex

        torch.set_num_threads(1)
        before = rss_mib()
        encoder = SASRecModel.load(directory / "torch")
        vectors = encoder.item_vectors()
        if kind == "torch_int8":
            encoder = TorchInt8Encoder(encoder)  # the float model is let go
        gc.collect()
        index = (FaissIndex(kind="hnsw") if kind == "torch_hnsw" else ExactIndex()).build(vectors)
    recommend(encoder, index, history, k=10)
    print(json.dumps({"rss_imports_mib": before, "rss_loaded_mib": rss_mib()}))


def measure_memory(directory: Path) -> dict[str, dict[str, float]]:
    out = {}
    for path, kind in PROBES.items():
        cmd = [sys.executable, __file__, "--probe", kind, "--model", str(directory)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[path] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def top10(encoder: Any, index: Any, histories: list[np.ndarray], batch: int = 1024) -> np.ndarray:
    """Top-10 ids (U, 10) of every history, own items excluded, in batches."""
    out = []
    for lo in range(0, len(histories), batch):
        chunk = histories[lo : lo + batch]
        ids, _ = index.search(encoder.encode(chunk), k=10, exclude=chunk)
        out.append(ids)
    return np.concatenate(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", default="beauty")
    p.add_argument("--model", type=Path, default=None, help="a saved SASRecModel directory")
    p.add_argument("--epochs", type=int, default=200, help="when training here")
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--val-users", type=int, default=2000)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--users", type=int, default=1000, help="one-user requests per path")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--probe", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.probe:
        probe(args.probe, args.model)
        return

    import torch
    from rich.console import Console
    from rich.table import Table

    from shopflow.datasets import load
    from shopflow.eval.metrics import hit_rate_at_k, mean_metric, ndcg_at_k
    from shopflow.eval.split import LOO_PROTOCOL, leave_one_out
    from shopflow.models.sasrec_export import TorchInt8Encoder, export_onnx, quantize_onnx
    from shopflow.models.sasrec_model import SASRecModel
    from shopflow.models.sasrec_runtime import OnnxEncoder, recommend
    from shopflow.retrieval import ExactIndex, FaissIndex

    torch.set_num_threads(1)
    console = Console(width=200)
    load_start = os.getloadavg()
    data = load(args.dataset)
    split = leave_one_out(data)
    train_info: dict[str, Any] = {"loaded_from": str(args.model) if args.model else None}
    if args.model is not None:
        model = SASRecModel.load(args.model)
    else:
        model = SASRecModel(
            epochs=args.epochs,
            patience=args.patience,
            max_val_users=args.val_users,
            max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
            seed=args.seed,
            progress=True,
        ).fit(split.train_with_validation())
        assert model.result is not None
        train_info.update(best_epoch=model.result.best_epoch, seconds=model.result.seconds)
        train_info["epochs_run"] = len(model.history)
    if model.n_items != data.n_items:
        raise SystemExit(f"the model knows {model.n_items} items, {data.name} has {data.n_items}")

    work = Path(tempfile.mkdtemp(prefix="sasrec_latency_"))
    model.save(work / "torch")
    t0 = time.perf_counter()
    export_onnx(model, work / "sasrec.onnx")
    export_s = time.perf_counter() - t0
    quantize_onnx(work / "sasrec.onnx", work / "sasrec.int8.onnx")
    vectors = model.item_vectors()
    np.save(work / "item_vectors.npy", vectors)
    int8_torch = TorchInt8Encoder(model)
    torch.save(int8_torch.net.state_dict(), work / "int8_torch.pt")
    import faiss

    faiss.omp_set_num_threads(1)
    exact, hnsw = ExactIndex().build(vectors), FaissIndex(kind="hnsw").build(vectors)
    paths: dict[str, tuple[Any, Any]] = {
        "torch + exact": (model, exact),
        "torch + HNSW": (model, hnsw),
        "ONNX + exact": (OnnxEncoder(work / "sasrec.onnx"), exact),
        "int8 ONNX + exact": (OnnxEncoder(work / "sasrec.int8.onnx"), exact),
        "int8 torch + exact": (int8_torch, exact),
    }
    safetensors = sum(f.stat().st_size for f in (work / "torch").iterdir())
    files = {
        "torch + exact": safetensors,
        "torch + HNSW": safetensors,
        "ONNX + exact": (work / "sasrec.onnx").stat().st_size,
        "int8 ONNX + exact": (work / "sasrec.int8.onnx").stat().st_size,
        "int8 torch + exact": (work / "int8_torch.pt").stat().st_size,
    }
    hnsw_bytes = int(faiss.serialize_index(hnsw._index).nbytes)

    # accuracy on every test user
    hist, targets = split.test_histories, split.test_targets
    recs = {name: top10(enc, idx, hist) for name, (enc, idx) in paths.items()}
    accuracy = {}
    for name, ids in recs.items():
        same = [len(set(a) & set(b)) / 10 for a, b in zip(ids, recs["torch + exact"], strict=True)]
        accuracy[name] = {
            "hr@10": mean_metric(hit_rate_at_k(ids, targets, 10)),
            "ndcg@10": mean_metric(ndcg_at_k(ids, targets, 10)),
            "top10_overlap_vs_exact": float(np.mean(same)),
        }

    # one-user latency, interleaved
    rng = np.random.default_rng(args.seed)
    users = rng.choice(len(hist), size=min(args.users, len(hist)), replace=False)
    times: dict[str, list[float]] = {name: [] for name in paths}
    for u in users[:50]:  # warm-up
        for enc, idx in paths.values():
            recommend(enc, idx, [hist[u]], k=10)
    for u in users:
        for name in rng.permutation(list(paths)):
            enc, idx = paths[name]
            start = time.perf_counter()
            recommend(enc, idx, [hist[u]], k=10)
            times[name].append(time.perf_counter() - start)
    memory = measure_memory(work)
    shutil.rmtree(work, ignore_errors=True)

    rows = {}
    for name in paths:
        t = np.array(times[name]) * 1000
        rows[name] = {
            "p50_ms": float(np.percentile(t, 50)),
            "p99_ms": float(np.percentile(t, 99)),
            "mean_ms": float(t.mean()),
            **accuracy[name],
            "model_file_bytes": files[name],
            "index_bytes": hnsw_bytes if name == "torch + HNSW" else int(vectors.nbytes),
            **memory[name],
        }
    result = {
        "dataset": data.name,
        "protocol": LOO_PROTOCOL,
        "n_test_users": len(hist),
        "latency_users": len(users),
        "threads": 1,
        "model_config": dict(vars(model.config)),
        "train": train_info,
        "export_seconds": export_s,
        "paths": rows,
        "loadavg_start": load_start,
        "loadavg_end": os.getloadavg(),
        "versions": _versions(),
    }
    out = args.out or Path(__file__).parent / "results" / f"sequential_latency_{args.dataset}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))

    base = rows["torch + exact"]["ndcg@10"]
    table = Table(title=f"SASRec serving paths on {data.name}: one user, top-10, one thread")
    cols = ["path", "p50 ms", "p99 ms", "NDCG@10", "Δ NDCG", "HR@10", "top-10 overlap",
            "model file KiB", "RSS MiB (imports + load)"]  # fmt: skip
    for col in cols:
        table.add_column(col, justify="left" if col == "path" else "right")
    for name, r in rows.items():
        table.add_row(
            name,
            f"{r['p50_ms']:.2f}",
            f"{r['p99_ms']:.2f}",
            f"{r['ndcg@10']:.4f}",
            f"{(r['ndcg@10'] - base) / base:+.1%}",
            f"{r['hr@10']:.4f}",
            f"{r['top10_overlap_vs_exact']:.3f}",
            f"{r['model_file_bytes'] / 1024:.0f}",
            f"{r['rss_loaded_mib']:.0f} ({r['rss_imports_mib']:.0f} + "
            f"{r['rss_loaded_mib'] - r['rss_imports_mib']:.0f})",
        )
    console.print(table)
    console.print(f"load average {load_start} → {os.getloadavg()}; written to {out}")


def _versions() -> dict[str, str]:
    import faiss
    import onnxruntime
    import torch

    return {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "faiss": faiss.__version__, "python": sys.version.split()[0]}  # fmt: skip


if __name__ == "__main__":
    main()
