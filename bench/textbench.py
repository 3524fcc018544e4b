"""Helpers shared by the text benchmarks (``bench/text.py``, ``bench/search.py``)."""

from __future__ import annotations

import csv
import gzip
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from shopflow.text.encoder import TextEncoder

console = Console()


def cached_encode(encoder: TextEncoder, texts: list[str], cache_dir: Path, name: str) -> np.ndarray:
    """Embeddings of ``texts`` (n, 384); read from ``cache_dir/NAME-KEY.npy`` when seen before."""
    key = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
    path = cache_dir / f"{name}-{key}.npy"
    if path.is_file():
        return np.load(path)
    chunks = []
    for start in track(range(0, len(texts), 1024), description=f"encoding {name}", console=console):
        chunks.append(encoder.encode(texts[start : start + 1024], batch_size=64))
    emb = np.concatenate(chunks) if chunks else np.zeros((0, 384), np.float32)
    np.save(path, emb)
    return emb


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    """Print a rich table; floats with four decimals."""
    t = Table(title=title)
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*[f"{x:.4f}" if isinstance(x, float) else str(x) for x in r])
    console.print(t)


def read_homedepot(datasets: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """Products (uid -> title, first-seen order) and judgements (query -> uid -> relevance)."""
    path = datasets / "homedepot_search_relevance" / "train.csv.gz"
    products: dict[str, str] = {}
    qrels: dict[str, dict[str, float]] = {}
    with gzip.open(path, "rt", encoding="latin-1") as f:
        for row in csv.DictReader(f):
            products.setdefault(row["product_uid"], row["product_title"])
            qrels.setdefault(row["search_term"], {})[row["product_uid"]] = float(row["relevance"])
    return products, qrels
