"""Hybrid product search: BM25 (bm25s) and dense retrieval, fused by reciprocal rank fusion.

Lexical: BM25 (Robertson & Zaragoza 2009) over title, brand, category path and description, with
plurals folded and CJK text split into character unigrams and bigrams. Dense: the sentence
encoder's item embeddings, scored exactly by one matrix product. Fusion: reciprocal rank fusion
(Cormack, Clarke & Büttcher, SIGIR 2009), ``score(d) = sum_r w_r / (k + rank_r(d))``; equal
retriever scores share a rank (competition ranking), so that two items with the same evidence get
the same fused score. With a user vector the fused candidates are re-ranked by
``(1 - w) * fused / fused_max + w * cos(user, item)``.

``add`` and ``remove`` take effect for the next search: the dense part and the filters at once; the
BM25 statistics (idf, average length) are rebuilt lazily before the first search after a change
(about 0.1 s per 10,000 short titles; ``bench/text.py`` measures it).

Example
-------
>>> index = SearchIndex.build(items, encoder)  # doctest: +SKIP
>>> index.search("red running shoes", k=5, filters=SearchFilters(max_price=50))  # doctest: +SKIP
[SearchHit(item_id='i7', score=0.98, parts={'lexical': 1, 'dense': 2}), ...]
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol, TypeVar

import numpy as np

from shopflow.ingest.schema import Item
from shopflow.text.query import ParsedQuery, normalise_token

log = logging.getLogger(__name__)
K = TypeVar("K", bound=Hashable)

_STOPWORDS_TEXT = (
    "a an and are as at be by for from has in is it its of on or that the this to with"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
_WORD = re.compile(r"[^\W_]+")
_CJK = re.compile(r"[\u3040-\u9fff\uf900-\ufaff]")


class Encoder(Protocol):
    """The part of :class:`shopflow.text.encoder.TextEncoder` the index uses."""

    def encode(
        self, texts: list[str], batch_size: int = ..., show_progress: bool = ...
    ) -> np.ndarray: ...


def lexical_tokens(text: str) -> list[str]:
    """BM25 tokens: lower-cased words, stopwords dropped, plurals folded, CJK as uni- and bigrams.

    >>> lexical_tokens("The Red Shoes, 2-pack")
    ['red', 'shoe', '2', 'pack']
    >>> lexical_tokens("红色跑鞋")
    ['红', '色', '跑', '鞋', '红色', '色跑', '跑鞋']
    """
    out: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            chars = list(word)
            out.extend(chars)
            out.extend(a + b for a, b in itertools.pairwise(chars))
        elif word not in STOPWORDS:
            out.append(normalise_token(word))
    return out


def item_text(item: Item, description_chars: int = 1000) -> str:
    """The text an item is found by: title, brand, category path and (the start of) description."""
    parts = [item.title, item.brand or "", " ".join(item.categories)]
    parts.append(item.description[:description_chars])
    return " . ".join(p for p in parts if p)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[K] | Mapping[K, int]],
    k: float = 60.0,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[K, float, dict[str, int]]]:
    """Fuse rankings: ``score(d) = sum_r weight_r / (k + rank_r(d))``, ranks starting at 1.

    Parameters
    ----------
    rankings:
        Retriever name to an ordered list of keys (rank = position + 1) or to a mapping of key
        to rank (equal ranks for ties).
    k:
        The RRF constant; larger values flatten the difference between top and lower ranks.
    weights:
        Per retriever weight, 1 when absent.

    Returns
    -------
    list of (key, fused score, {retriever: rank})
        Best first; equal scores keep the order in which keys were first seen.

    >>> reciprocal_rank_fusion({"a": ["x", "y"], "b": ["y"]}, k=1)
    [('y', 0.8333333333333333, {'a': 2, 'b': 1}), ('x', 0.5, {'a': 1})]
    """
    scores: dict[K, float] = {}
    parts: dict[K, dict[str, int]] = {}
    for name, ranking in rankings.items():
        w = 1.0 if weights is None else weights.get(name, 1.0)
        pairs = (
            ranking.items()
            if isinstance(ranking, Mapping)
            else zip(ranking, range(1, len(ranking) + 1), strict=True)
        )
        for key, rank in pairs:
            scores[key] = scores.get(key, 0.0) + w / (k + rank)
            parts.setdefault(key, {})[name] = rank
    order = sorted(scores, key=lambda key: -scores[key])  # stable: first seen wins a tie
    return [(key, scores[key], parts[key]) for key in order]


@dataclass(frozen=True)
class SearchConfig:
    """How the index retrieves and fuses. ``candidates`` is the depth taken from each retriever.

    ``rrf_k=10`` and ``dense_weight=0.5`` were chosen on 1,500 Home Depot queries and checked on
    1,500 others (NDCG@10 0.387 against 0.384 for BM25 alone and 0.363 for k=60 with equal
    weights); all-MiniLM-L6-v2 is weaker than BM25 on product specifications and model numbers.
    """

    rrf_k: float = 10.0
    lexical_weight: float = 1.0
    dense_weight: float = 0.5
    candidates: int = 100
    personalisation_weight: float = 0.2
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    description_chars: int = 1000
    batch_size: int = 64


@dataclass(frozen=True)
class SearchFilters:
    """Hard filters; ``category`` matches any level of an item's category path (case ignored)."""

    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = False

    @classmethod
    def from_query(cls, query: ParsedQuery, base: SearchFilters | None = None) -> SearchFilters:
        """The filters a parsed query implies, on top of ``base`` (explicit filters win)."""
        b = base or cls()
        return cls(
            category=b.category or query.category,
            brand=b.brand or query.brand,
            min_price=b.min_price if b.min_price is not None else query.min_price,
            max_price=b.max_price if b.max_price is not None else query.max_price,
            in_stock=b.in_stock,
        )


class SearchHit(NamedTuple):
    """One result. ``parts``: rank per retriever that found it (``lexical``, ``dense``) and, when
    personalised, ``user``: the cosine similarity to the user vector."""

    item_id: str
    score: float
    parts: dict[str, float]


@dataclass
class _Rows:
    """Per-row item data used by filters, grown as items are added."""

    ids: list[str] = field(default_factory=list)
    alive: list[bool] = field(default_factory=list)
    price: list[float] = field(default_factory=list)
    in_stock: list[bool] = field(default_factory=list)
    brand: list[str] = field(default_factory=list)
    categories: list[frozenset[str]] = field(default_factory=list)
    tokens: list[list[str]] = field(default_factory=list)


class SearchIndex:
    """Lexical + dense item search with filters, fusion and optional personal re-ranking."""

    def __init__(self, encoder: Encoder, config: SearchConfig | None = None) -> None:
        self.encoder = encoder
        self.config = config or SearchConfig()
        self._rows = _Rows()
        self._row_of: dict[str, int] = {}
        self._buf = np.zeros((0, 0), dtype=np.float32)  # embeddings; rows beyond len(ids) are spare
        self._arrays: dict[str, np.ndarray] | None = None  # filter columns, rebuilt after a change
        self._bm25 = None  # bm25s.BM25 over rows [0, _bm25_rows)
        self._bm25_rows = 0
        self._dirty = False
        self.last_rebuild_seconds = 0.0

    @classmethod
    def build(
        cls,
        items: Sequence[Item],
        encoder: Encoder,
        config: SearchConfig | None = None,
        embeddings: np.ndarray | None = None,
    ) -> SearchIndex:
        """Index ``items``; ``embeddings`` (n, d), row-aligned with items, skips encoding them."""
        index = cls(encoder, config)
        index.add(items, embeddings=embeddings)
        index.refresh()
        return index

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row_of

    def add(self, items: Sequence[Item], embeddings: np.ndarray | None = None) -> None:
        """Add or replace items; they are searchable by the next :meth:`search`."""
        if not items:
            return
        if embeddings is None:
            texts = [item_text(it, self.config.description_chars) for it in items]
            embeddings = self.encoder.encode(texts, batch_size=self.config.batch_size)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.shape[0] != len(items):
            raise ValueError(f"{emb.shape[0]} embeddings for {len(items)} items")
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        self._append_embeddings(emb)
        rows = self._rows
        for item in items:
            self.remove(item.item_id)
            self._row_of[item.item_id] = len(rows.ids)
            rows.ids.append(item.item_id)
            rows.alive.append(True)
            rows.price.append(np.nan if item.price is None else float(item.price))
            rows.in_stock.append(item.in_stock)
            rows.brand.append((item.brand or "").lower())
            rows.categories.append(frozenset(c.lower() for c in item.categories))
            rows.tokens.append(lexical_tokens(item_text(item, self.config.description_chars)))
        self._dirty, self._arrays = True, None

    def _append_embeddings(self, emb: np.ndarray) -> None:
        used = len(self._rows.ids)
        if self._buf.shape[1] not in (0, emb.shape[1]):
            raise ValueError(
                f"embedding size {emb.shape[1]} differs from the index's {self._buf.shape[1]}"
            )
        if used + len(emb) > len(self._buf):  # grow by doubling: appending one item is O(d)
            grown = np.zeros((max(2 * len(self._buf), used + len(emb)), emb.shape[1]), np.float32)
            if used:
                grown[:used] = self._buf[:used]
            self._buf = grown
        self._buf[used : used + len(emb)] = emb

    @property
    def _emb(self) -> np.ndarray:
        return self._buf[: len(self._rows.ids)]

    def remove(self, item_id: str) -> bool:
        """Take an item out of every result from now on; False when it was not indexed."""
        row = self._row_of.pop(item_id, None)
        if row is None:
            return False
        self._rows.alive[row] = False
        self._rows.tokens[row] = []
        self._dirty, self._arrays = True, None
        return True

    def refresh(self) -> float:
        """Rebuild the BM25 statistics now if items changed; returns the seconds it took."""
        if not self._dirty:
            return 0.0
        import bm25s

        start = time.perf_counter()
        bm25 = bm25s.BM25(k1=self.config.bm25_k1, b=self.config.bm25_b)
        bm25.index(self._rows.tokens, show_progress=False)
        self._bm25, self._bm25_rows, self._dirty = bm25, len(self._rows.tokens), False
        self.last_rebuild_seconds = time.perf_counter() - start
        log.debug("BM25 rebuilt over %d rows in %.3fs", self._bm25_rows, self.last_rebuild_seconds)
        return self.last_rebuild_seconds

    def embedding(self, item_id: str) -> np.ndarray:
        """The normalised embedding of an indexed item."""
        return self._emb[self._row_of[item_id]]

    def user_vector(self, item_ids: Sequence[str]) -> np.ndarray | None:
        """Mean embedding of the indexed ones of ``item_ids`` (a user's recent items), or None."""
        rows = [self._row_of[i] for i in item_ids if i in self._row_of]
        return self._emb[rows].mean(axis=0) if rows else None

    def _columns(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            rows = self._rows
            codes: dict[str, int] = {}
            self._arrays = {
                "alive": np.array(rows.alive, dtype=bool),
                "price": np.array(rows.price, dtype=np.float64),
                "in_stock": np.array(rows.in_stock, dtype=bool),
                "brand": np.array([codes.setdefault(b, len(codes)) for b in rows.brand], np.int64),
            }
            self._brand_codes = codes
        return self._arrays

    def _mask(self, filters: SearchFilters | None) -> np.ndarray:
        cols = self._columns()
        mask = cols["alive"].copy()
        if filters is None:
            return mask
        if filters.min_price is not None:
            mask &= cols["price"] >= filters.min_price  # an item without a price fails the filter
        if filters.max_price is not None:
            mask &= cols["price"] <= filters.max_price
        if filters.in_stock:
            mask &= cols["in_stock"]
        if filters.brand:
            mask &= cols["brand"] == self._brand_codes.get(filters.brand.lower(), -1)
        if filters.category:
            cat = filters.category.lower()
            cats = self._rows.categories
            mask &= np.fromiter((cat in c for c in cats), bool, len(cats))
        return mask

    def lexical_scores(self, text: str) -> np.ndarray:
        """BM25 score of every row (0 for rows that share no token with ``text``)."""
        self.refresh()
        tokens = lexical_tokens(text)
        if not tokens or self._bm25 is None:
            return np.zeros(len(self._rows.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)

    def dense_scores(self, text: str, query_vector: np.ndarray | None = None) -> np.ndarray:
        """Cosine similarity of every row to ``query_vector``, or to the encoded ``text``."""
        if query_vector is None:
            query_vector = self.encoder.encode([text], batch_size=1)[0]
        q = np.asarray(query_vector, dtype=np.float32)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        return self._emb @ q

    def search(
        self,
        query: str | ParsedQuery,
        k: int = 10,
        filters: SearchFilters | None = None,
        user_vector: np.ndarray | None = None,
        personalisation_weight: float | None = None,
        query_vector: np.ndarray | None = None,
    ) -> list[SearchHit]:
        """Rank items for a query.

        Parameters
        ----------
        query:
            Raw text, or a :class:`ParsedQuery` whose price, brand and category become filters and
            whose ``search_text`` is searched; when its brand and category leave no item, they are
            searched as words instead (price bounds kept).
        k:
            How many hits to return.
        filters:
            Hard filters; they win over those of a parsed query.
        user_vector:
            E.g. the mean embedding of the user's recent items; re-ranks the fused candidates.
        personalisation_weight:
            Weight of the user similarity in [0, 1]; the config's default when None.
        query_vector:
            The query's embedding when the caller has it already (saves one encoder call).

        Returns
        -------
        list of SearchHit
            Best first, at most ``k``.
        """
        if isinstance(query, ParsedQuery):
            text = query.search_text or (query.brand or "")
            parsed = SearchFilters.from_query(query, filters)
            hits = self._search(text, k, parsed, user_vector, personalisation_weight, query_vector)
            if hits or (query.brand is None and query.category is None):
                return hits
            # The parsed brand or category may be a misreading: search them as words instead of
            # filtering on them, and keep the price bounds.
            relaxed = SearchFilters.from_query(replace(query, brand=None, category=None), filters)
            loose = " ".join(p for p in (query.brand, query.search_text) if p)
            return self._search(loose, k, relaxed, user_vector, personalisation_weight, None)
        return self._search(query, k, filters, user_vector, personalisation_weight, query_vector)

    def _search(
        self,
        text: str,
        k: int,
        filters: SearchFilters | None,
        user_vector: np.ndarray | None,
        weight: float | None,
        query_vector: np.ndarray | None,
    ) -> list[SearchHit]:
        cfg = self.config
        mask = self._mask(filters)
        if not mask.any() or k <= 0:
            return []
        if not text.strip():
            return [SearchHit(self._rows.ids[r], 0.0, {}) for r in np.flatnonzero(mask)[:k]]
        lex = self.lexical_scores(text)
        n = max(cfg.candidates, k)
        rankings = {
            "lexical": competition_ranks(np.where(mask & (lex > 0), lex, -np.inf), n),
            "dense": competition_ranks(
                np.where(mask, self.dense_scores(text, query_vector), -np.inf), n
            ),
        }
        weights = {"lexical": cfg.lexical_weight, "dense": cfg.dense_weight}
        fused = reciprocal_rank_fusion(rankings, k=cfg.rrf_k, weights=weights)
        top = sum(weights.values()) / (cfg.rrf_k + 1.0)
        w = cfg.personalisation_weight if weight is None else weight
        hits: list[SearchHit] = []
        if user_vector is not None and w > 0 and fused:
            u = np.asarray(user_vector, dtype=np.float32)
            u = u / max(float(np.linalg.norm(u)), 1e-12)
            sims = self._emb[[row for row, _, _ in fused]] @ u
            for (row, score, parts), sim in zip(fused, sims, strict=True):
                blended = (1.0 - w) * score / top + w * float(sim)
                hits.append(SearchHit(self._rows.ids[row], blended, {**parts, "user": float(sim)}))
            hits.sort(key=lambda h: -h.score)
        else:
            hits = [SearchHit(self._rows.ids[row], s / top, dict(p)) for row, s, p in fused]
        return hits[:k]


def competition_ranks(scores: np.ndarray, n: int, tol: float = 1e-6) -> dict[int, int]:
    """Row -> competition rank (1, 2, 2, 4) of the ``n`` best finite scores."""
    finite = np.isfinite(scores)
    count = int(finite.sum())
    if count == 0:
        return {}
    n = min(n, count)
    top = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    top = top[np.isfinite(scores[top])]
    top = top[np.lexsort((top, -scores[top]))]
    ranks: dict[int, int] = {}
    prev = np.inf
    rank = 0
    for pos, row in enumerate(top.tolist()):
        if scores[row] < prev - tol:
            rank, prev = pos + 1, float(scores[row])
        ranks[row] = rank
    return ranks
