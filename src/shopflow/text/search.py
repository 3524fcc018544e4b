"""Hybrid product search: BM25 (bm25s) and dense retrieval, fused by reciprocal rank fusion.

Lexical: BM25 (Robertson & Zaragoza 2009) over title, brand, category path and description, with
plurals folded and CJK text split into character unigrams and bigrams (``text.lexical``). Dense:
the sentence encoder's item embeddings, scored exactly by one matrix product. Fusion: reciprocal
rank fusion with tied ranks (``text.fusion``). With a :class:`~shopflow.text.personal.UserTaste`
(text profile, liked brands and categories, a sequential model's scores) the fused candidates are
re-ranked by ``(1 - w) * fused / fused_max + w * personal`` (``text.personal``).

``add`` and ``remove`` take effect for the next search, without rebuilding BM25: new rows go to a
delta scored at query time, and the main BM25 index is rebuilt in a background thread once the delta
and the removed rows reach a tenth of it (``text.lexical``; ``bench/search.py`` measures both).

Example
-------
>>> index = SearchIndex.build(items, encoder)  # doctest: +SKIP
>>> index.search("red running shoes", k=5, filters=SearchFilters(max_price=50))  # doctest: +SKIP
[SearchHit(item_id='i7', score=0.98, parts={'lexical': 1, 'dense': 2}), ...]
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

import numpy as np

from shopflow.ingest.schema import Item
from shopflow.text.fusion import competition_ranks, reciprocal_rank_fusion
from shopflow.text.lexical import STOPWORDS, LexicalIndex, lexical_tokens
from shopflow.text.personal import TasteWeights, UserTaste, taste_scores
from shopflow.text.query import ParsedQuery

log = logging.getLogger(__name__)

__all__ = [
    "STOPWORDS",
    "SearchConfig",
    "SearchFilters",
    "SearchHit",
    "SearchIndex",
    "UserTaste",
    "competition_ranks",
    "item_text",
    "lexical_tokens",
    "reciprocal_rank_fusion",
]


class Encoder(Protocol):
    """The part of :class:`shopflow.text.encoder.TextEncoder` the index uses."""

    def encode(
        self, texts: list[str], batch_size: int = ..., show_progress: bool = ...
    ) -> np.ndarray: ...


def item_text(item: Item, description_chars: int = 1000) -> str:
    """The text an item is found by: title, brand, category path and (the start of) description."""
    parts = [item.title, item.brand or "", " ".join(item.categories)]
    parts.append(item.description[:description_chars])
    return " . ".join(p for p in parts if p)


@dataclass(frozen=True)
class SearchConfig:
    """How the index retrieves and fuses. ``candidates`` is the depth taken from each retriever.

    ``rrf_k=10`` and ``dense_weight=0.5`` were chosen on 1,500 Home Depot queries and checked on
    1,500 others (NDCG@10 0.387 against 0.384 for BM25 alone and 0.363 for k=60 with equal
    weights); all-MiniLM-L6-v2 is weaker than BM25 on product specifications and model numbers.
    ``personalisation_weight`` and ``taste`` (and their ``_no_model`` twins, used when a taste has
    no sequence model scores) were chosen on the validation targets of Amazon Scientific
    (``bench/search.py``). ``fold_fraction`` / ``fold_min``: when the BM25 delta and
    the removed rows reach ``max(fold_min, fold_fraction * indexed rows)``, BM25 is rebuilt.
    """

    rrf_k: float = 10.0
    lexical_weight: float = 1.0
    dense_weight: float = 0.5
    candidates: int = 100
    personalisation_weight: float = 0.5
    taste: TasteWeights = field(default_factory=lambda: TasteWeights(1.0, 1.0, 0.0, 2.0))
    personalisation_weight_no_model: float = 0.4  # when the taste has no sequence model scores
    taste_no_model: TasteWeights = field(default_factory=lambda: TasteWeights(1.0, 0.5, 0.0, 0.0))
    bm25_k1: float = 1.5
    bm25_b: float = 0.75
    fold_fraction: float = 0.1
    fold_min: int = 500
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
    personalised, ``user``: its personal score (see ``text.personal``)."""

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


class SearchIndex:
    """Lexical + dense item search with filters, fusion and optional personal re-ranking.

    Thread-safe: :meth:`add` and :meth:`remove` may run while searches do; a search sees the rows
    that existed when it started.
    """

    def __init__(self, encoder: Encoder, config: SearchConfig | None = None) -> None:
        self.encoder = encoder
        self.config = config or SearchConfig()
        cfg = self.config
        self._rows = _Rows()
        self._row_of: dict[str, int] = {}
        self._buf = np.zeros((0, 0), dtype=np.float32)  # embeddings; rows beyond len(ids) are spare
        self._arrays: dict[str, np.ndarray] | None = None  # filter columns, rebuilt after a change
        self._lexical = LexicalIndex(cfg.bm25_k1, cfg.bm25_b, cfg.fold_fraction, cfg.fold_min)
        self._lock = threading.RLock()
        self._folding: threading.Thread | None = None  # a background BM25 rebuild in progress

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
        index.add(items, embeddings=embeddings, fold=False)
        index.refresh()
        return index

    def __len__(self) -> int:
        return len(self._row_of)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._row_of

    @property
    def last_rebuild_seconds(self) -> float:
        """Seconds the last full BM25 rebuild took."""
        return self._lexical.last_fold_seconds

    @property
    def delta_rows(self) -> int:
        """Rows searchable through the BM25 delta, not yet in the main BM25 index."""
        return self._lexical.delta_rows

    def add(
        self, items: Sequence[Item], embeddings: np.ndarray | None = None, fold: bool = True
    ) -> None:
        """Add or replace items; they are searchable by the next :meth:`search`.

        ``embeddings`` (n, d), row-aligned with ``items``; encoded here when None. With ``fold``,
        once enough rows changed since the last BM25 build the main index is rebuilt in a
        background thread; searches go on over the old main index and the delta meanwhile.
        """
        if not items:
            return
        texts = [item_text(it, self.config.description_chars) for it in items]
        if embeddings is None:
            embeddings = self.encoder.encode(texts, batch_size=self.config.batch_size)
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.shape[0] != len(items):
            raise ValueError(f"{emb.shape[0]} embeddings for {len(items)} items")
        emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
        with self._lock:
            rows = self._rows
            for item, vector, text in zip(items, emb, texts, strict=True):
                self.remove(item.item_id)
                self._append_embeddings(vector[None, :])
                rows.alive.append(True)
                rows.price.append(np.nan if item.price is None else float(item.price))
                rows.in_stock.append(item.in_stock)
                rows.brand.append((item.brand or "").lower())
                rows.categories.append(frozenset(c.lower() for c in item.categories))
                self._lexical.append([lexical_tokens(text)])
                self._row_of[item.item_id] = len(rows.ids)
                rows.ids.append(item.item_id)  # last: a search snapshot counts rows by ids
            self._arrays = None
            start = fold and self._lexical.needs_fold() and self._folding is None
            if start:
                self._folding = threading.Thread(target=self._fold, name="bm25-fold", daemon=True)
        if start and self._folding is not None:
            self._folding.start()

    def _fold(self) -> None:
        try:
            self.refresh()
        except Exception:
            log.exception("BM25 rebuild failed; the delta keeps serving new rows")
        finally:
            self._folding = None

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
        with self._lock:
            row = self._row_of.pop(item_id, None)
            if row is None:
                return False
            self._rows.alive[row] = False
            self._lexical.clear(row)
            self._arrays = None
            return True

    def refresh(self) -> float:
        """Fold the BM25 delta into the main index now; returns the seconds it took."""
        seconds = self._lexical.fold()
        log.debug("BM25 rebuilt over %d rows in %.3fs", len(self._lexical), seconds)
        return seconds

    def embedding(self, item_id: str) -> np.ndarray:
        """The normalised embedding of an indexed item."""
        return self._emb[self._row_of[item_id]]

    def user_vector(self, item_ids: Sequence[str]) -> np.ndarray | None:
        """Mean embedding of the indexed ones of ``item_ids`` (a user's recent items), or None."""
        rows = [self._row_of[i] for i in item_ids if i in self._row_of]
        return self._emb[rows].mean(axis=0) if rows else None

    def _columns(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._arrays is None:
                rows = self._rows
                codes: dict[str, int] = {}
                self._arrays = {
                    "alive": np.array(rows.alive, dtype=bool),
                    "price": np.array(rows.price, dtype=np.float64),
                    "in_stock": np.array(rows.in_stock, dtype=bool),
                    "brand": np.array(
                        [codes.setdefault(b, len(codes)) for b in rows.brand], np.int64
                    ),
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
            cats = self._rows.categories[: len(mask)]
            mask &= np.fromiter((cat in c for c in cats), bool, len(cats))
        return mask

    def lexical_scores(self, text: str, n_rows: int | None = None) -> np.ndarray:
        """BM25 score of every row (0 for rows that share no token with ``text``)."""
        return self._lexical.scores(lexical_tokens(text), n_rows)

    def dense_scores(
        self, text: str, query_vector: np.ndarray | None = None, n_rows: int | None = None
    ) -> np.ndarray:
        """Cosine similarity of every row to ``query_vector``, or to the encoded ``text``."""
        if query_vector is None:
            query_vector = self.encoder.encode([text], batch_size=1)[0]
        q = np.asarray(query_vector, dtype=np.float32)
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        emb = self._emb
        return emb[: len(emb) if n_rows is None else n_rows] @ q

    def search(
        self,
        query: str | ParsedQuery,
        k: int = 10,
        filters: SearchFilters | None = None,
        user_vector: np.ndarray | None = None,
        personalisation_weight: float | None = None,
        query_vector: np.ndarray | None = None,
        taste: UserTaste | None = None,
        depth: int | None = None,
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
            E.g. the mean embedding of the user's recent items (shorthand for
            ``taste=UserTaste(vector=user_vector)``).
        personalisation_weight:
            Weight of the personal score in [0, 1]; when None the config's, the ``_no_model`` one
            for a taste without model scores.
        query_vector:
            The query's embedding when the caller has it already (saves one encoder call).
        taste:
            The user's state (text profile, liked brands and categories, model scores); re-ranks
            the fused candidates.
        depth:
            Candidates taken from each retriever; ``max(config.candidates, k)`` when None.

        Returns
        -------
        list of SearchHit
            Best first, at most ``k``.
        """
        if taste is None and user_vector is not None:
            taste = UserTaste(vector=user_vector)
        if taste is not None and user_vector is not None and taste.vector is None:
            taste = replace(taste, vector=user_vector)
        cfg = self.config
        plain = taste is None or taste.model_scores is None
        w = cfg.personalisation_weight_no_model if plain else cfg.personalisation_weight
        w = w if personalisation_weight is None else personalisation_weight
        if isinstance(query, ParsedQuery):
            text = query.search_text or (query.brand or "")
            parsed = SearchFilters.from_query(query, filters)
            hits = self._search(text, k, parsed, taste, w, query_vector, depth)
            if hits or (query.brand is None and query.category is None):
                return hits
            # The parsed brand or category may be a misreading: search them as words instead of
            # filtering on them, and keep the price bounds.
            relaxed = SearchFilters.from_query(replace(query, brand=None, category=None), filters)
            loose = " ".join(p for p in (query.brand, query.search_text) if p)
            return self._search(loose, k, relaxed, taste, w, None, depth)
        return self._search(query, k, filters, taste, w, query_vector, depth)

    def _search(
        self,
        text: str,
        k: int,
        filters: SearchFilters | None,
        taste: UserTaste | None,
        w: float,
        query_vector: np.ndarray | None,
        depth: int | None,
    ) -> list[SearchHit]:
        cfg = self.config
        mask = self._mask(filters)
        n_rows = len(mask)
        if not mask.any() or k <= 0:
            return []
        ids = self._rows.ids
        if not text.strip():
            return [SearchHit(ids[r], 0.0, {}) for r in np.flatnonzero(mask)[:k]]
        lex = self.lexical_scores(text, n_rows)
        dense = self.dense_scores(text, query_vector, n_rows)
        n = max(cfg.candidates, k) if depth is None else depth
        rankings = {
            "lexical": competition_ranks(np.where(mask & (lex > 0), lex, -np.inf), n),
            "dense": competition_ranks(np.where(mask, dense, -np.inf), n),
        }
        weights = {"lexical": cfg.lexical_weight, "dense": cfg.dense_weight}
        fused = reciprocal_rank_fusion(rankings, k=cfg.rrf_k, weights=weights)
        top = sum(weights.values()) / (cfg.rrf_k + 1.0)
        if taste is None or taste.empty or w <= 0 or not fused:
            return [SearchHit(ids[row], s / top, dict(p)) for row, s, p in fused][:k]
        rows = [row for row, _, _ in fused]
        personal, _ = taste_scores(
            taste,
            [ids[r] for r in rows],
            self._emb[rows],
            [self._rows.brand[r] for r in rows],
            [self._rows.categories[r] for r in rows],
            cfg.taste_no_model if taste.model_scores is None else cfg.taste,
        )
        hits = [
            SearchHit(ids[row], (1.0 - w) * score / top + w * float(p), {**parts, "user": float(p)})
            for (row, score, parts), p in zip(fused, personal, strict=True)
        ]
        hits.sort(key=lambda h: -h.score)
        return hits[:k]
