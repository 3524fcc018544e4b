"""Text benchmarks: encoder throughput, review sentiment (search: ``bench/search.py``).

Throughput: items per second of the packaged all-MiniLM-L6-v2 on Home Depot product titles, with
no cache (every text goes through the model).

Sentiment: binary accuracy and macro-F1 (score > 0 is positive) on MARC en/zh (1-2 stars negative,
4-5 positive, 3 dropped) and waimai_10k, and the Spearman correlation of the score with the stars
on all 5,000 MARC reviews. VADER and SnowNLP need no training. Trained classifiers: Chinese ones on
online_shopping_10_cats (hotels dropped) only, evaluated on MARC zh and waimai; English ones by
5-fold cross-validation on MARC en, each fold scored by a model fitted on the other four folds
(1-2 vs 4-5 stars).

Usage::

    .venv/bin/python bench/text.py                                  # both parts
    .venv/bin/python bench/text.py --only throughput --throughput-n 500
    .venv/bin/python bench/text.py --only reviews        # reviews scored per second on arrival

Embeddings are cached in ``--cache-dir`` (one ``.npy`` per text list, and the encoder's SQLite
cache), so a second run only ranks. Results go to ``bench/results/text.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from shopflow.text.encoder import TextEncoder
from shopflow.text.sentiment import (
    EmbeddingClassifier,
    NgramClassifier,
    SnowNLPScorer,
    VaderScorer,
    train_ngram_classifier,
)
from textbench import cached_encode, console, read_homedepot, table

ROOT = Path(__file__).resolve().parents[1]


# -- helpers ---------------------------------------------------------------------------------


# -- Home Depot ------------------------------------------------------------------------------------


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


def bench_review_ingest(args: argparse.Namespace) -> dict[str, Any]:
    """Reviews scored per second on arrival (``serving.reviews.ReviewSignals.learn``: sentiment,
    then the per-item totals), MARC reviews as ``review`` events with their stars, 100 a batch."""
    from datetime import UTC, datetime

    from shopflow.ingest.schema import Event
    from shopflow.serving.reviews import ReviewSignals
    from shopflow.store.online import MemoryState
    from shopflow.text.sentiment import ZH_MODEL_FILE

    if not (args.cache_dir / ZH_MODEL_FILE).is_file():  # the Chinese model the service would use
        train_ngram_classifier(args.datasets_dir, args.cache_dir / ZH_MODEL_FILE)
    out: dict[str, Any] = {}
    now = datetime.now(UTC)
    for lang in ("en", "zh"):
        texts, stars = read_marc(args.datasets_dir, lang, args.review_n, args.seed)
        events = [
            Event(event_id=f"{lang}{j}", type="review", user_id=f"u{j}", item_id=f"i{j % 50}",
                  timestamp=now, text=t, value=float(s))
            for j, (t, s) in enumerate(zip(texts, stars, strict=True))
        ]  # fmt: skip
        signals = ReviewSignals(MemoryState(), model_dir=args.cache_dir)  # trained zh model there
        signals.learn(events[:1])  # load the scorer before timing
        t0 = time.perf_counter()
        for start in range(0, len(events), 100):
            signals.learn(events[start : start + 100])
        seconds = time.perf_counter() - t0
        out[lang] = {
            "reviews": len(events),
            "seconds": seconds,
            "per_second": len(events) / seconds,
        }
    table(
        "Reviews scored on arrival (sentiment + per-item totals)",
        ["language", "reviews", "seconds", "reviews/s"],
        [[k, v["reviews"], v["seconds"], v["per_second"]] for k, v in out.items()],
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--datasets-dir",
        type=Path,
        default=Path(os.environ.get("SHOPFLOW_DATASETS_DIR", ROOT.parent / "shared" / "datasets")),
    )
    p.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / "results" / "cache")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "text.json")
    p.add_argument("--only", default="throughput,sentiment")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--throughput-n", type=int, default=1000)
    p.add_argument(
        "--marc-limit", type=int, default=0, help="seeded sample per language; 0 = 5,000"
    )
    p.add_argument("--waimai-limit", type=int, default=0, help="seeded sample; 0 = all 11,987")
    p.add_argument("--zh-embed-train", type=int, default=5000)
    p.add_argument("--review-n", type=int, default=2000, help="reviews: MARC reviews a language")
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
        "sentiment": ("sentiment", lambda: bench_sentiment(args, encoder)),
        "review_ingest": ("reviews", lambda: bench_review_ingest(args)),
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
