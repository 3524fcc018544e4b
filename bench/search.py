"""Search benchmarks: Home Depot judged queries, personalised search (Amazon Scientific), freshness.

**Home Depot** (``homedepot_search_relevance``, 74,067 judged (query, product) pairs):

- *full-index protocol*: the index holds every distinct product of the file (54,667 titles, or a
  ``--max-products`` subset that keeps every judged product of the evaluated queries); each query
  ranks the whole index; NDCG@10 with gain ``relevance - 1`` over the judged products, unjudged
  products gain 0; Recall@100 of the judged products with relevance >= 2. Queries whose judged
  products all have relevance 1 (ideal DCG 0) are left out and counted.
- *re-ranking protocol*: each query ranks only its own judged products; ties broken at random
  (seeded); a random-order baseline is given.

**Personalised search on Amazon Scientific** (``amazon_scientific_unisrec``: 8,442 users, 4,385
items with title, category path and brand): queries built from the text of each user's held-out
next item, as ``shopflow.eval.search`` describes (category queries: the last two words of the
category path; title queries: three title words); the one relevant item is that target; history
items are removed from every ranking; NDCG@10 over the whole catalogue.

- *validation*: target = second-to-last item, history = the items before it (``--tune-users``
  seeded users); *test*: target = last item, history = everything before it (every user, or
  ``--max-users``). Personalisation weights are chosen on validation only; test is reported, and
  the chosen setting is re-run through ``SearchIndex.search`` itself on 500 test users.
- personal state: the text profile of the last 8 history items (recency decay 0.7, as the service
  builds it), brand and category-path shares of the history, and, unless ``--sasrec-epochs 0``,
  the scores of a SASRec model trained on every user's sequence without its last two items (neither
  target is ever a training target).

**Freshness** over every Home Depot title (random item vectors: the cost does not depend on them):
one upsert (it goes to the BM25 delta, no rebuild), the first search after it, an edit found by its
new words only, a stream of ``--upserts`` upserts each followed by a search, and what one full BM25
rebuild (a fold) costs.

Usage::

    .venv/bin/python bench/search.py                                 # everything (long on 2 cores)
    .venv/bin/python bench/search.py --only personal --max-users 3000
    .venv/bin/python bench/search.py --only homedepot --max-queries 2000 --max-products 10000
    .venv/bin/python bench/search.py --only freshness

Embeddings are cached in ``--cache-dir``; results go to ``bench/results/search.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import track

from shopflow.eval.search import (
    KINDS,
    WEIGHT_GRID,
    Kept,
    SearchSet,
    collect,
    rerank_ndcg,
    served_check,
    split_text,
    taste_grid,
)
from shopflow.ingest.schema import Item
from shopflow.text.encoder import TextEncoder
from shopflow.text.personal import TasteWeights
from shopflow.text.search import SearchIndex, competition_ranks, item_text
from shopflow.text.search import reciprocal_rank_fusion as rrf
from textbench import cached_encode, console, read_homedepot, table

ROOT = Path(__file__).resolve().parents[1]


# -- helpers ---------------------------------------------------------------------------------


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


# -- Home Depot --------------------------------------------------------------------------------


def bench_homedepot(args: argparse.Namespace, encoder: TextEncoder) -> dict[str, Any]:
    products, qrels = read_homedepot(args.datasets_dir)
    queries = list(qrels)
    rng = random.Random(args.seed)
    if args.max_queries and args.max_queries < len(queries):
        queries = sorted(rng.sample(queries, args.max_queries), key=list(qrels).index)
    uids = list(products)
    if args.max_products and args.max_products < len(uids):
        judged = {u for q in queries for u in qrels[q]}
        others = [u for u in uids if u not in judged]
        keep = judged | set(rng.sample(others, max(0, args.max_products - len(judged))))
        uids = [u for u in uids if u in keep]
    items = [Item(item_id=u, title=products[u]) for u in uids]
    console.print(f"Home Depot: {len(items)} products, {len(queries)} queries")
    item_emb = cached_encode(encoder, [it.title for it in items], args.cache_dir, "hd-titles")
    query_emb = cached_encode(encoder, queries, args.cache_dir, "hd-queries")
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
        judged = [row_of[u] for u in qrels[query]]  # re-ranking: only the judged products
        rng.shuffle(judged)
        jl, jd = lex[judged], dense[judged]
        lranks = competition_ranks(np.where(jl > 0, jl, -np.inf), len(judged))
        fused = rrf(
            {
                "lexical": {judged[i]: r for i, r in lranks.items()},
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
        "index_build_seconds": build_s,
        "hybrid_search_ms_p50": float(np.percentile(lat, 50)),
        "hybrid_search_ms_p95": float(np.percentile(lat, 95)),
    }
    table(
        f"Home Depot search, NDCG@10 (gain = relevance - 1), {out['queries_evaluated']} queries",
        ["method", "full index", "Recall@100 full index", "re-rank judged only"],
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
    console.print(
        f"hybrid search p50 / p95: {out['hybrid_search_ms_p50']:.1f} / "
        f"{out['hybrid_search_ms_p95']:.1f} ms (query vector given)"
    )
    return out


def bench_freshness(args: argparse.Namespace, encoder: TextEncoder) -> dict[str, Any]:
    """Cost of keeping the index fresh over every Home Depot title: upserts go to the BM25 delta.

    Item embeddings are seeded random unit vectors (the cost does not depend on their values);
    the upserted items are encoded by the real encoder, which is part of the measured add.
    """
    products, _ = read_homedepot(args.datasets_dir)
    items = [Item(item_id=u, title=t) for u, t in products.items()]
    rng = np.random.default_rng(args.seed)
    emb = rng.normal(size=(len(items), 384)).astype(np.float32)
    t0 = time.perf_counter()
    index = SearchIndex.build(items, encoder, embeddings=emb)
    build_s = time.perf_counter() - t0
    fold_s = index.last_rebuild_seconds
    nonce = f"{time.time_ns():x}"  # texts no cache has seen: the add includes its encoding
    encoder.encode([f"load the model before timing {nonce}"])
    new = Item(item_id="bench-new", title=f"Cordless leaf blower with two batteries zqxa {nonce}")
    t0 = time.perf_counter()
    index.add([new])
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    found = index.search("cordless leaf blower zqxa", k=10)
    search_s = time.perf_counter() - t0
    index.add([new.model_copy(update={"title": "Brass garden sprinkler zqxb"})])
    by_new = [h.item_id for h in index.search("zqxb", k=10) if "lexical" in h.parts]
    by_old = [h.item_id for h in index.search("zqxa", k=10) if "lexical" in h.parts]
    searches, titles = [], list(products.values())[: args.upserts]
    for j, title in enumerate(titles):  # a stream of upserts, each followed by a search
        index.add([Item(item_id=f"bench-{j}", title=title + " zqxc")], embeddings=emb[:1])
        t0 = time.perf_counter()
        index.search(title, k=10, query_vector=emb[0])
        searches.append(time.perf_counter() - t0)
    out = {
        "items": len(items),
        "build_seconds": build_s,
        "bm25_full_rebuild_seconds": fold_s,
        "add_one_item_incl_encoding_seconds": add_s,
        "first_search_after_add_seconds": search_s,
        "new_item_rank_for_its_words": next(
            (i + 1 for i, h in enumerate(found) if h.item_id == new.item_id), None
        ),
        "edited_found_by_new_words": by_new == [new.item_id],
        "edited_found_by_old_words": new.item_id in by_old,
        "upserts": len(titles),
        "search_after_each_upsert_ms_p50": float(np.percentile(searches, 50) * 1000),
        "search_after_each_upsert_ms_max": float(np.max(searches) * 1000),
        "delta_rows_after_stream": index.delta_rows,
    }
    table(
        f"Index freshness over {len(items):,} Home Depot titles",
        ["measure", "value"],
        [[k, v] for k, v in out.items() if k != "items"],
    )
    return out


# -- Amazon Scientific, personalised ------------------------------------------------------------
def fit_sasrec(data: Any, args: argparse.Namespace) -> Any:
    """SASRec on every sequence without its last two items; None with ``--sasrec-epochs 0``."""
    if args.sasrec_epochs <= 0:
        return None
    from shopflow.models.sasrec_model import SASRecModel

    path = args.cache_dir / f"sci-sasrec-{args.sasrec_epochs}-{args.sasrec_seconds:g}-{args.seed}"
    if (path / "manifest.json").is_file():  # trained by an earlier run with the same settings
        return SASRecModel.load(path)
    train = data.with_sequences([s[:-2] for s in data.sequences])
    model = SASRecModel(
        hidden=64, n_layers=2, max_len=50, epochs=args.sasrec_epochs, device="cpu",
        seed=args.seed, max_seconds=args.sasrec_seconds, progress=True,
    )  # fmt: skip
    t0 = time.perf_counter()
    model.fit(train)
    model.save(path)
    console.print(f"SASRec trained in {time.perf_counter() - t0:.0f}s, {len(model.history)} epochs")
    return model


def load_scientific(args: argparse.Namespace, encoder: TextEncoder) -> SearchSet:
    from shopflow.datasets import load

    data = load("scientific", args.datasets_dir)
    parts = [split_text(t or "") for t in data.side.text]
    items = [
        Item(item_id=i, title=t, brand=b or None, categories=[c] if c else [])
        for i, (t, c, b) in zip(data.items.external_ids, parts, strict=True)
    ]
    emb = cached_encode(encoder, [item_text(it) for it in items], args.cache_dir, "sci-items")
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    index = SearchIndex.build(items, encoder, embeddings=emb)
    model = fit_sasrec(data, args)
    vecs = model.item_vectors() if model is not None else None
    return SearchSet(items, data.items, data.sequences, parts, emb, index, model, vecs)


def bench_personal(args: argparse.Namespace, encoder: TextEncoder) -> dict[str, Any]:
    sci = load_scientific(args, encoder)
    seqs, rng = sci.sequences, random.Random(args.seed)
    users = list(range(len(seqs)))
    splits = {
        "valid": sorted(rng.sample(users, min(args.tune_users, len(users)))),
        "test": sorted(rng.sample(users, args.max_users)) if args.max_users else users,
    }
    res: dict[str, Any] = {"items": len(sci.items), "users": {}, "ndcg@10": {}}
    if sci.model is not None:
        res["sasrec_epochs"] = len(sci.model.history)
    kept: dict[tuple[str, str], list[Kept | None]] = {}
    for split, us in splits.items():
        drop = 2 if split == "valid" else 1
        rows = [(seqs[u][:-drop], int(seqs[u][-drop])) for u in us]
        res["users"][split] = len(rows)
        for kind in KINDS:
            queries = sorted({sci.query(kind, t) for _, t in rows})
            vecs = cached_encode(encoder, queries, args.cache_dir, f"sci-{split}-{kind}")
            qv = dict(zip(queries, vecs, strict=True))
            base, kept[(split, kind)] = collect(sci, rows, kind, qv, split)
            res["ndcg@10"][f"{split}/{kind}"] = base
    grid = [(w, tw) for w in WEIGHT_GRID for tw in taste_grid(sci.model is not None)]
    tuned = {
        key: float(np.mean([rerank_ndcg(kept[("valid", k)], *key) for k in KINDS]))
        for key in track(grid, description=f"tuning {len(grid)} settings on validation")
    }
    best = max(tuned, key=lambda key: tuned[key])
    no_model = max((k for k in tuned if k[1].model == 0), key=lambda key: tuned[key])
    variants = {
        "hybrid + text profile (w 0.2, untuned)": (0.2, TasteWeights(1.0, 0.0, 0.0, 0.0)),
        "hybrid + personal, no sequence model (tuned)": no_model,
        "hybrid + personal, tuned setting without its model part": (
            best[0],
            replace(best[1], model=0.0),
        ),
        "hybrid + personal (tuned)": best,
    }
    for name, key in variants.items():
        for split, kind in itertools.product(splits, KINDS):
            res["ndcg@10"][f"{split}/{kind}"][name] = rerank_ndcg(kept[(split, kind)], *key)
    res["tuned"] = {"personalisation_weight": best[0], "taste": vars(best[1])}
    res["tuned_without_model"] = {"personalisation_weight": no_model[0], "taste": vars(no_model[1])}
    first = splits["test"][:500]
    res["served_check_first_500_test_users"] = {
        "SearchIndex.search": served_check(sci, first, *best),
        "grid formula": {k: rerank_ndcg(kept[("test", k)][: len(first)], *best) for k in KINDS},
    }
    table(
        "Amazon Scientific personalised search, NDCG@10 (history items excluded)",
        ["method", "test category", "test title", "valid category", "valid title"],
        [
            [m, *(res["ndcg@10"][f"{s}/{k}"][m] for s in ("test", "valid") for k in KINDS)]
            for m in ["lexical", "dense", "hybrid", *variants]
        ],
    )
    console.print(f"tuned {best}; served check {res['served_check_first_500_test_users']}")
    return res


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--datasets-dir",
        type=Path,
        default=Path(os.environ.get("SHOPFLOW_DATASETS_DIR", ROOT.parent / "shared" / "datasets")),
    )
    p.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / "results" / "cache")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search.json")
    p.add_argument("--only", default="homedepot,personal,freshness")
    p.add_argument("--upserts", type=int, default=200, help="freshness: upserts in the stream")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--max-queries", type=int, default=0, help="Home Depot; 0 = all 11,795")
    p.add_argument("--max-products", type=int, default=0, help="Home Depot; 0 = all 54,667")
    p.add_argument("--max-users", type=int, default=0, help="Scientific test users; 0 = all")
    p.add_argument("--tune-users", type=int, default=2000, help="Scientific validation users")
    p.add_argument("--sasrec-epochs", type=int, default=200, help="0: no sequence model")
    p.add_argument("--sasrec-seconds", type=float, default=900.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.datasets_dir.is_dir():
        console.print(f"[red]datasets folder {args.datasets_dir} not found (--datasets-dir)")
        return 2
    import torch

    torch.set_num_threads(args.threads)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    only = set(args.only.split(","))
    results: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    machine = {
        "cpus": os.cpu_count(),
        "torch_threads": args.threads,
        "load_average_at_start": os.getloadavg(),
        "python": platform.python_version(),
    }
    command = " ".join(["bench/search.py", *(argv if argv is not None else sys.argv[1:])])
    encoder = TextEncoder(cache_dir=args.cache_dir)
    sections = {
        "homedepot": lambda: bench_homedepot(args, encoder),
        "personal": lambda: bench_personal(args, encoder),
        "freshness": lambda: bench_freshness(args, encoder),
    }
    for name, run in sections.items():
        if name in only:
            started = time.perf_counter()
            results[name] = run()
            results[name].update(
                command=command, machine=machine, wall_seconds=time.perf_counter() - started
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
