"""Text benchmarks: encoder throughput, hybrid search on Home Depot, review sentiment.

Search (``homedepot_search_relevance``, 74,067 judged (query, product) pairs):

- **full-index protocol**: the index holds every distinct product of the file (54,667 titles, or a
  ``--max-products`` subset that keeps every judged product of the evaluated queries); each query
  ranks the whole index; NDCG@10 with gain ``relevance - 1`` over the judged products, unjudged
  products gain 0 (so absolute values are low: about 6 judged products per query among 54,667);
  Recall@100 of the judged products with relevance >= 2. Queries whose judged products all have
  relevance 1 (ideal DCG 0) are left out and counted.
- **re-ranking protocol**: each query ranks only its own judged products (the Kaggle set's design);
  NDCG@10, same gains; ties broken at random (seeded); a random-order baseline is given.

Sentiment: binary accuracy and macro-F1 (score > 0 is positive) on MARC en/zh (1-2 stars negative,
4-5 positive, 3 dropped) and waimai_10k, and the Spearman correlation of the score with the stars
on all 5,000 MARC reviews. VADER and SnowNLP need no training. Trained classifiers: Chinese ones on
online_shopping_10_cats (hotels dropped) only, evaluated on MARC zh and waimai; English ones by
5-fold cross-validation on MARC en, each fold scored by a model fitted on the other four folds
(1-2 vs 4-5 stars).

Usage::

    .venv/bin/python bench/text.py                                  # everything (long on 2 cores)
    .venv/bin/python bench/text.py --only search --max-queries 2000 --max-products 10000
    .venv/bin/python bench/text.py --only sentiment,throughput

Embeddings are cached in ``--cache-dir`` (one ``.npy`` per text list, and the encoder's SQLite
cache), so a second run only ranks. Results go to ``bench/results/text.json``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import json
import math
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from shopflow.ingest.schema import Item
from shopflow.text.encoder import TextEncoder
from shopflow.text.search import SearchIndex, competition_ranks, reciprocal_rank_fusion
from shopflow.text.sentiment import (
    EmbeddingClassifier,
    NgramClassifier,
    SnowNLPScorer,
    VaderScorer,
    train_ngram_classifier,
)

ROOT = Path(__file__).resolve().parents[1]
console = Console()


# -- helpers ---------------------------------------------------------------------------------
def cached_encode(encoder: TextEncoder, texts: list[str], cache_dir: Path, name: str) -> np.ndarray:
    """Embeddings of ``texts``; read from ``cache_dir/NAME-KEY.npy`` when that list was seen."""
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


def dcg(gains: list[float]) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains))


def ndcg(ranked: list[int], gain: dict[int, float], k: int = 10) -> float:
    ideal = dcg(sorted(gain.values(), reverse=True)[:k])
    return dcg([gain.get(r, 0.0) for r in ranked[:k]]) / ideal


def top(scores: np.ndarray, n: int, positive_only: bool = False) -> list[int]:
    if positive_only:
        scores = np.where(scores > 0, scores, -np.inf)
    n = min(n, len(scores))
    idx = np.argpartition(-scores, n - 1)[:n]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [int(i) for i in idx if np.isfinite(scores[i])]


def table(title: str, header: list[str], rows: list[list[Any]]) -> None:
    t = Table(title=title)
    for h in header:
        t.add_column(h)
    for r in rows:
        t.add_row(*[f"{x:.4f}" if isinstance(x, float) else str(x) for x in r])
    console.print(t)


# -- Home Depot ------------------------------------------------------------------------------------
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


def bench_search(args: argparse.Namespace, encoder: TextEncoder) -> dict[str, Any]:
    products, qrels = read_homedepot(args.datasets_dir)
    queries = list(qrels)
    rng = random.Random(args.seed)
    if args.max_queries and args.max_queries < len(queries):
        queries = sorted(rng.sample(queries, args.max_queries), key=list(qrels).index)
    uids = list(products)
    if args.max_products and args.max_products < len(uids):
        judged = {u for q in queries for u in qrels[q]}
        others = [u for u in uids if u not in judged]
        extra = rng.sample(others, max(0, args.max_products - len(judged)))
        keep = judged | set(extra)
        uids = [u for u in uids if u in keep]
    items = [Item(item_id=u, title=products[u]) for u in uids]
    console.print(f"Home Depot: {len(items)} products, {len(queries)} queries")

    t0 = time.perf_counter()
    item_emb = cached_encode(encoder, [it.title for it in items], args.cache_dir, "hd-titles")
    query_emb = cached_encode(encoder, queries, args.cache_dir, "hd-queries")
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    index = SearchIndex.build(items, encoder, embeddings=item_emb)
    build_s = time.perf_counter() - t0
    cfg = index.config
    row_of = {u: i for i, u in enumerate(uids)}

    full: dict[str, list[float]] = {m: [] for m in ("lexical", "dense", "hybrid")}
    recall: dict[str, list[float]] = {m: [] for m in full}
    rerank: dict[str, list[float]] = {m: [] for m in (*full, "random")}
    latencies: list[float] = []
    skipped = 0
    for qi, query in enumerate(track(queries, description="ranking queries", console=console)):
        gain = {row_of[u]: r - 1.0 for u, r in qrels[query].items() if r > 1.0}
        if not gain:
            skipped += 1
            continue
        relevant = {row_of[u] for u, r in qrels[query].items() if r >= 2.0}
        lex = index.lexical_scores(query)
        dense = index.dense_scores(query, query_vector=query_emb[qi])
        t0 = time.perf_counter()
        hits = index.search(query, k=100, query_vector=query_emb[qi])
        latencies.append(time.perf_counter() - t0)
        ranked = {
            "lexical": top(lex, 100, positive_only=True),
            "dense": top(dense, 100),
            "hybrid": [row_of[h.item_id] for h in hits],
        }
        for m, rows in ranked.items():
            full[m].append(ndcg(rows, gain))
            if relevant:
                recall[m].append(len(relevant & set(rows[:100])) / len(relevant))
        # Re-ranking protocol: only the judged products; a seeded shuffle breaks score ties.
        judged = [row_of[u] for u in qrels[query]]
        rng.shuffle(judged)
        jl, jd = lex[judged], dense[judged]
        fused = reciprocal_rank_fusion(
            {
                "lexical": {
                    judged[i]: r
                    for i, r in competition_ranks(
                        np.where(jl > 0, jl, -np.inf), len(judged)
                    ).items()
                },
                "dense": {judged[i]: r for i, r in competition_ranks(jd, len(judged)).items()},
            },
            k=cfg.rrf_k,
            weights={"lexical": cfg.lexical_weight, "dense": cfg.dense_weight},
        )
        order = {
            "lexical": [judged[i] for i in np.argsort(-jl, kind="stable")],
            "dense": [judged[i] for i in np.argsort(-jd, kind="stable")],
            "hybrid": [row for row, _, _ in fused],
        }
        for m, rows in order.items():
            rerank[m].append(ndcg(rows, gain))
        shuffles = [
            ndcg(random.Random(args.seed + s).sample(judged, len(judged)), gain) for s in range(20)
        ]
        rerank["random"].append(float(np.mean(shuffles)))

    # Cost of keeping the index fresh: one upsert, then the search that rebuilds BM25.
    new = Item(item_id="bench-new", title="Cordless leaf blower with two batteries")
    encoder.encode(["load the model before timing"])
    t0 = time.perf_counter()
    index.add([new])
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = index.search("cordless leaf blower batteries", k=10)
    search_after_add_s = time.perf_counter() - t0
    lat = np.array(latencies) * 1000
    out = {
        "products": len(items),
        "queries": len(queries),
        "queries_evaluated": len(queries) - skipped,
        "queries_skipped_all_irrelevant": skipped,
        "config": {
            k: getattr(cfg, k)
            for k in ("rrf_k", "lexical_weight", "dense_weight", "candidates", "bm25_k1", "bm25_b")
        },
        "full_index_ndcg@10": {m: float(np.mean(v)) for m, v in full.items()},
        "full_index_recall@100_rel>=2": {m: float(np.mean(v)) for m, v in recall.items()},
        "rerank_judged_ndcg@10": {m: float(np.mean(v)) for m, v in rerank.items()},
        "encode_or_load_seconds": encode_s,
        "index_build_seconds": build_s,
        "bm25_rebuild_seconds": index.last_rebuild_seconds,
        "add_one_item_seconds": add_s,
        "first_search_after_add_seconds": search_after_add_s,
        "new_item_rank": next(
            (i + 1 for i, h in enumerate(found) if h.item_id == "bench-new"), None
        ),
        "hybrid_search_ms_p50": float(np.percentile(lat, 50)),
        "hybrid_search_ms_p95": float(np.percentile(lat, 95)),
    }
    table(
        f"Home Depot search, NDCG@10 (gain = relevance - 1), {out['queries_evaluated']} queries",
        [
            "method",
            "full index (all products ranked)",
            "Recall@100 full index",
            "re-rank judged only",
        ],
        [
            [
                m,
                out["full_index_ndcg@10"].get(m, "-"),
                out["full_index_recall@100_rel>=2"].get(m, "-"),
                out["rerank_judged_ndcg@10"][m],
            ]
            for m in ("lexical", "dense", "hybrid", "random")
        ],
    )
    table(
        "Index freshness and latency",
        ["measure", "value"],
        [
            ["BM25 rebuild over the whole index (s)", out["bm25_rebuild_seconds"]],
            ["add one item, incl. encoding (s)", out["add_one_item_seconds"]],
            ["first search after add, incl. rebuild (s)", out["first_search_after_add_seconds"]],
            ["rank of the new item for its own words", out["new_item_rank"]],
            [
                "hybrid search p50 / p95 (ms, query vector given)",
                f"{out['hybrid_search_ms_p50']:.1f} / {out['hybrid_search_ms_p95']:.1f}",
            ],
        ],
    )
    return out


# -- throughput ------------------------------------------------------------------------------------
def bench_throughput(args: argparse.Namespace) -> dict[str, Any]:
    products, _ = read_homedepot(args.datasets_dir)
    titles = list(products.values())[-args.throughput_n :]
    encoder = TextEncoder()  # no cache: every text goes through the model
    encoder.encode(["warm up"])
    t0 = time.perf_counter()
    encoder.encode(titles, batch_size=64)
    seconds = time.perf_counter() - t0
    out = {
        "texts": len(titles),
        "seconds": seconds,
        "items_per_second": len(titles) / seconds,
        "text": "Home Depot product titles",
        "batch_size": 64,
    }
    table(
        "Encoder throughput (all-MiniLM-L6-v2, CPU)",
        ["texts", "seconds", "items/s"],
        [[len(titles), seconds, out["items_per_second"]]],
    )
    return out


# -- sentiment -------------------------------------------------------------------------------------
def read_marc(datasets: Path, lang: str, limit: int, seed: int) -> tuple[list[str], np.ndarray]:
    """MARC test reviews and stars; ``limit`` > 0 keeps a seeded sample, the same share per star."""
    path = datasets / "marc_amazon_reviews_test_en_zh" / f"marc_{lang}_test.csv"
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    if limit and limit < len(rows):
        rng = random.Random(seed)
        rows = [
            r for star in "12345" for r in rng.sample([r for r in rows if r[2] == star], limit // 5)
        ]
    return [r[1] for r in rows], np.array([int(r[2]) for r in rows])


def read_waimai(datasets: Path, limit: int, seed: int) -> tuple[list[str], np.ndarray]:
    with open(datasets / "waimai_10k_zh" / "waimai_10k.csv", encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["review"].strip()]
    if limit and limit < len(rows):
        rows = random.Random(seed).sample(rows, limit)
    return [r["review"] for r in rows], np.array([int(r["label"]) for r in rows])


def binary_metrics(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    pred = (scores > 0).astype(int)
    return {
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, average="macro")),
        "n": len(labels),
    }


def marc_metrics(scores: np.ndarray, stars: np.ndarray) -> dict[str, float]:
    from scipy.stats import spearmanr

    keep = stars != 3
    out = binary_metrics(scores[keep], (stars[keep] >= 4).astype(int))
    out["spearman_stars"] = float(spearmanr(scores, stars).statistic)
    return out


def bench_sentiment(args: argparse.Namespace, encoder: TextEncoder) -> dict[str, Any]:
    from sklearn.model_selection import StratifiedKFold

    from shopflow.text.sentiment import read_online_shopping

    d = args.datasets_dir
    res: dict[str, dict[str, Any]] = {}
    en_text, en_stars = read_marc(d, "en", args.marc_limit, args.seed)
    zh_text, zh_stars = read_marc(d, "zh", args.marc_limit, args.seed)
    wm_text, wm_label = read_waimai(d, args.waimai_limit, args.seed)

    res["vader / marc_en"] = marc_metrics(VaderScorer().score_many(en_text), en_stars)
    snow = SnowNLPScorer()
    res["snownlp / marc_zh"] = marc_metrics(snow.score_many(zh_text), zh_stars)
    res["snownlp / waimai"] = binary_metrics(snow.score_many(wm_text), wm_label)

    t0 = time.perf_counter()
    ngram = train_ngram_classifier(d, args.cache_dir / "sentiment-zh-ngram.npz")
    train_s = time.perf_counter() - t0
    res["ngram-lr (online_shopping) / marc_zh"] = marc_metrics(ngram.score_many(zh_text), zh_stars)
    res["ngram-lr (online_shopping) / waimai"] = binary_metrics(ngram.score_many(wm_text), wm_label)

    os_text, os_label = read_online_shopping(
        d / "online_shopping_10_cats_zh" / "online_shopping_10_cats.csv.gz"
    )
    pick = random.Random(args.seed).sample(range(len(os_text)), args.zh_embed_train)
    train_emb = cached_encode(encoder, [os_text[i] for i in pick], args.cache_dir, "os-train")
    emb_clf = EmbeddingClassifier(encoder).fit_embeddings(train_emb, [os_label[i] for i in pick])
    zh_emb = cached_encode(encoder, zh_text, args.cache_dir, "marc-zh")
    wm_emb = cached_encode(encoder, wm_text, args.cache_dir, "waimai")
    name = f"minilm-lr ({args.zh_embed_train} online_shopping)"
    res[f"{name} / marc_zh"] = marc_metrics(emb_clf.score_embeddings(zh_emb), zh_stars)
    res[f"{name} / waimai"] = binary_metrics(emb_clf.score_embeddings(wm_emb), wm_label)

    # English: out-of-fold scores, each fold scored by a model fitted on the other four.
    en_emb = cached_encode(encoder, en_text, args.cache_dir, "marc-en")
    oof = {"minilm-lr": np.zeros(len(en_text)), "ngram-lr": np.zeros(len(en_text))}
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=args.seed)
    for train, test in folds.split(en_text, en_stars):
        train = train[en_stars[train] != 3]
        y = (en_stars[train] >= 4).astype(int)
        clf = EmbeddingClassifier(encoder).fit_embeddings(en_emb[train], y)
        oof["minilm-lr"][test] = clf.score_embeddings(en_emb[test])
        ng = NgramClassifier().fit([en_text[i] for i in train], y)
        oof["ngram-lr"][test] = ng.score_many([en_text[i] for i in test])
    for m, scores in oof.items():
        res[f"{m} (5-fold CV) / marc_en"] = marc_metrics(scores, en_stars)

    table(
        "Review sentiment (score > 0 = positive)",
        ["scorer / dataset", "accuracy", "macro-F1", "Spearman vs stars", "n (binary)"],
        [
            [k, v["accuracy"], v["macro_f1"], v.get("spearman_stars", "-"), v["n"]]
            for k, v in res.items()
        ],
    )
    return {
        "results": res,
        "zh_ngram_train_seconds": train_s,
        "waimai_limit": args.waimai_limit,
        "marc_limit_per_language": args.marc_limit,
        "zh_embedding_train_reviews": args.zh_embed_train,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--datasets-dir",
        type=Path,
        default=Path(os.environ.get("SHOPFLOW_DATASETS_DIR", ROOT.parent / "shared" / "datasets")),
    )
    p.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / "results" / "cache")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "text.json")
    p.add_argument("--only", default="throughput,search,sentiment")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--throughput-n", type=int, default=1000)
    p.add_argument("--max-queries", type=int, default=0, help="0 = all 11,795")
    p.add_argument("--max-products", type=int, default=0, help="0 = all 54,667")
    p.add_argument(
        "--marc-limit", type=int, default=0, help="seeded sample per language; 0 = 5,000"
    )
    p.add_argument("--waimai-limit", type=int, default=0, help="seeded sample; 0 = all 11,987")
    p.add_argument("--zh-embed-train", type=int, default=5000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.datasets_dir.is_dir():
        console.print(f"[red]datasets folder {args.datasets_dir} not found (--datasets-dir)")
        return 2
    import torch

    torch.set_num_threads(args.threads)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    results: dict[str, Any] = {}
    if args.out.is_file():
        results = json.loads(args.out.read_text())
    machine = {
        "cpus": os.cpu_count(),
        "torch_threads": args.threads,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
    }
    command = " ".join(["bench/text.py", *(argv if argv is not None else sys.argv[1:])])
    encoder = TextEncoder(cache_dir=args.cache_dir)
    sections = {
        "encoder_throughput": ("throughput", lambda: bench_throughput(args)),
        "homedepot_search": ("search", lambda: bench_search(args, encoder)),
        "sentiment": ("sentiment", lambda: bench_sentiment(args, encoder)),
    }
    for key, (name, run) in sections.items():
        if name in only:
            started = time.perf_counter()
            results[key] = run()
            results[key]["command"] = command
            results[key]["machine"] = machine
            results[key]["wall_seconds"] = time.perf_counter() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
