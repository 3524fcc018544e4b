"""Personalised search, measured: queries built from item text, the user's history as the state.

No labelled queries come with a catalogue that also has users, so :class:`SearchSet` builds them
from the text of each user's held-out next item (Amazon Scientific, ``bench/search.py``):

- the item text ``"title. Industrial & Scientific <category path>. brand. "`` is split at the last
  ``". Industrial & Scientific "`` and the last ``". "`` (:func:`split_text`);
- *category query* (:func:`category_query`): the last two words of the category path, ``&``
  ignored, lower-cased (about the leaf category's name: "machine screws", "duct tape");
- *title query* (:func:`title_query`): the first three distinct title words of three or more letters
  that are neither stopwords nor words of the brand, lower-cased ("steel pan head");
- the one relevant item is that target; history items are removed from every ranking.

:func:`collect` runs lexical, dense and hybrid search for each (history, target) row and keeps
each query's hybrid candidates with their fused scores and the parts of the personal score
(``text.personal``); :func:`rerank_ndcg` scores any personalisation setting on them with the formula
of :class:`~shopflow.text.search.SearchIndex`, so a grid of settings costs no further search;
:func:`served_check` runs the chosen setting through ``SearchIndex.search`` itself.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from rich.progress import track

from shopflow.ingest.schema import Item
from shopflow.text.lexical import STOPWORDS
from shopflow.text.personal import TasteWeights, UserTaste, shares, taste_scores
from shopflow.text.search import SearchIndex

MARKER = ". Industrial & Scientific "
KINDS = ("category", "title")
WEIGHT_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
Kept = tuple[list[int], np.ndarray, dict[str, np.ndarray], int]  # candidates, fused, parts, target


def split_text(text: str) -> tuple[str, str, str]:
    """(title, category path, brand) of a Scientific item text.

    >>> split_text("Duct Tape, Gray. Industrial & Scientific Tapes Duct Tape. Duck. ")
    ('Duct Tape, Gray', 'Tapes Duct Tape', 'Duck')
    """
    body = text.strip().removesuffix(".").strip()
    if MARKER not in body:
        return body, "", ""
    title, rest = body.rsplit(MARKER, 1)
    cats, sep, brand = rest.rpartition(". ")
    return (title.strip(), cats.strip(), brand.strip()) if sep else (title.strip(), rest, "")


def category_query(path: str) -> str:
    """The last two words of a category path, ``&`` ignored, lower-cased.

    >>> category_query("Lab Utensils Dispensing Needles & Accessories")
    'needles accessories'
    """
    return " ".join([w for w in path.split() if w != "&"][-2:]).lower()


def title_query(title: str, brand: str) -> str:
    """The first three distinct title words of 3+ letters, no stopwords, no brand words.

    >>> title_query("Duck Brand 394471 Advanced Strength Duct Tape, Gray", "Duck")
    'brand advanced strength'
    """
    brand_words = {w.lower() for w in re.findall(r"[A-Za-z]+", brand)}
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", title)]
    keep = [w for w in words if len(w) >= 3 and w not in STOPWORDS and w not in brand_words]
    return " ".join(list(dict.fromkeys(keep))[:3])


def profile(emb: np.ndarray, history: np.ndarray, n: int = 8, decay: float = 0.7) -> np.ndarray:
    """(E,) unit text profile of the last ``n`` history items, ``decay ** distance`` weighted
    (as ``retrieval.sources.SourceSet.profile``); ``emb`` is (n_items, E)."""
    recent = history[-n:]
    w = decay ** np.arange(len(recent) - 1, -1, -1, dtype=np.float64)
    vec = (w[:, None] * emb[recent]).sum(axis=0)
    return (vec / max(float(np.linalg.norm(vec)), 1e-12)).astype(np.float32)


def ndcg_one(ranked: Sequence[Any], target: Any, k: int = 10) -> float:
    """NDCG@k with one relevant item: ``1 / log2(rank + 1)`` when it is in the first ``k``."""
    for pos, item in enumerate(ranked[:k]):
        if item == target:
            return 1.0 / math.log2(pos + 2)
    return 0.0


def taste_grid(with_model: bool) -> list[TasteWeights]:
    """The part weights tried when tuning (text, brand, category, model), none all zero."""
    grid = itertools.product([0.0, 1.0], [0.0, 0.5, 1.0], [0.0, 0.5, 1.0], [0.0, 1.0, 2.0])
    return [TasteWeights(*w) for w in grid if any(w) and (with_model or w[3] == 0.0)]


@dataclass
class SearchSet:
    """A catalogue with user sequences, its search index and optionally a sequence model.

    ``emb`` (n_items, E) unit item embeddings; ``item_vecs`` (n_items, D) the model's output item
    vectors, so that ``model.encode([history]) @ item_vecs.T`` are its scores.
    """

    items: list[Item]
    ids: Any  # IdMap of the items (dense id = position)
    sequences: list[np.ndarray]
    parts: list[tuple[str, str, str]]  # (title, category path, brand) per item
    emb: np.ndarray
    index: SearchIndex
    model: Any | None = None
    item_vecs: np.ndarray | None = None
    brands: list[str] = field(init=False)
    cats: list[frozenset[str]] = field(init=False)

    def __post_init__(self) -> None:
        self.brands = [(it.brand or "").lower() for it in self.items]
        self.cats = [frozenset(c.lower() for c in it.categories) for it in self.items]

    def query(self, kind: str, item: int) -> str:
        title, path, brand = self.parts[item]
        return category_query(path) if kind == "category" else title_query(title, brand)

    def taste(self, hist: np.ndarray, state: np.ndarray | None) -> UserTaste:
        """The user's state as the service builds it: text profile, brand and category shares of
        the history, the model's scores after it (``state``: (D,) or None)."""
        vecs, ids = self.item_vecs, self.ids
        return UserTaste(
            vector=profile(self.emb, hist),
            brands=shares([self.items[i].brand for i in hist]),
            categories=shares([next(iter(self.items[i].categories), "") for i in hist]),
            model_scores=None
            if state is None or vecs is None
            else (lambda names: vecs[ids.to_index(names)] @ state),
        )


def collect(
    s: SearchSet,
    rows: Sequence[tuple[np.ndarray, int]],
    kind: str,
    query_vectors: Mapping[str, np.ndarray],
    label: str = "",
) -> tuple[dict[str, float], list[Kept | None]]:
    """Mean NDCG@10 of lexical, dense and hybrid search over ``rows`` (history, target), and per
    row the hybrid candidates (history removed), their fused scores and the personal parts (None
    for a row whose target yields an empty query: it is left out of every mean).

    ``query_vectors`` maps each query text to its (E,) embedding.
    """
    queries = [s.query(kind, t) for _, t in rows]
    states = s.model.encode([h for h, _ in rows]) if s.model is not None else None
    scores: dict[str, list[float]] = {m: [] for m in ("lexical", "dense", "hybrid")}
    kept: list[Kept | None] = []
    pairs = list(zip(rows, queries, strict=True))
    for r, ((hist, target), q) in enumerate(track(pairs, description=f"{label} {kind} queries")):
        if not q:
            kept.append(None)
            continue
        qv = query_vectors[q]
        lex = s.index.lexical_scores(q)
        dense = s.index.dense_scores(q, query_vector=qv)
        lex[hist], dense[hist] = 0.0, -np.inf
        lex_top = np.argsort(-np.where(lex > 0, lex, -np.inf), kind="stable")[:10]
        scores["lexical"].append(ndcg_one([i for i in lex_top if lex[i] > 0], target))
        scores["dense"].append(ndcg_one(np.argsort(-dense, kind="stable")[:10].tolist(), target))
        depth = max(s.index.config.candidates, 10 + len(hist))  # as the served search goes
        hits = s.index.search(q, k=400, query_vector=qv, personalisation_weight=0.0, depth=depth)
        every = np.array([s.ids.index_of(h.item_id) for h in hits], dtype=np.int64)
        fused = np.array([h.score for h in hits])
        # the personal parts are scaled over every candidate, as SearchIndex does; the history is
        # dropped afterwards, as the served page drops it
        taste = s.taste(hist, None if states is None else states[r])
        _, parts = taste_scores(
            taste,
            s.ids.to_external(every),
            s.emb[every],
            [s.brands[i] for i in every],
            [s.cats[i] for i in every],
            TasteWeights(),
        )
        keep = ~np.isin(every, hist)
        idx = every[keep].tolist()
        scores["hybrid"].append(ndcg_one(idx, target))
        kept.append((idx, fused[keep], {n: v[keep] for n, v in parts.items()}, target))
    return {m: float(np.mean(v)) for m, v in scores.items()}, kept


def rerank_ndcg(kept: Sequence[Kept | None], w: float, tw: TasteWeights) -> float:
    """Mean NDCG@10 of ``(1 - w) * fused + w * personal`` (the formula of ``SearchIndex``)."""
    vals = []
    for row in kept:
        if row is None:
            continue
        idx, fused, parts, target = row
        names = [n for n in parts if getattr(tw, n) > 0]
        if not names:
            vals.append(ndcg_one(idx, target))
            continue
        total = sum(getattr(tw, n) for n in names)
        personal = sum(getattr(tw, n) * parts[n] for n in names) / total
        order = np.argsort(-((1 - w) * fused + w * personal), kind="stable")
        vals.append(ndcg_one([idx[o] for o in order[:10]], target))
    return float(np.mean(vals))


def served_check(
    s: SearchSet, users: Sequence[int], w: float, tw: TasteWeights
) -> dict[str, float]:
    """Test NDCG@10 of one setting through ``SearchIndex.search`` itself, per query kind."""
    index, saved = s.index, s.index.config
    index.config = replace(saved, personalisation_weight=w, taste=tw)
    out: dict[str, float] = {}
    try:
        for kind in KINDS:
            vals = []
            for u in users:
                seq = s.sequences[u]
                hist, target = seq[:-1], s.ids.external_ids[int(seq[-1])]
                q = s.query(kind, int(seq[-1]))
                if not q:
                    continue
                state = s.model.encode([hist])[0] if s.model is not None else None
                seen = set(s.ids.to_external(hist))
                hits = index.search(q, k=10 + len(hist), taste=s.taste(hist, state))
                vals.append(ndcg_one([h.item_id for h in hits if h.item_id not in seen], target))
            out[kind] = float(np.mean(vals))
    finally:
        index.config = saved
    return out
