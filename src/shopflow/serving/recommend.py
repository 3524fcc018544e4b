"""The recommend service: one method per shop scenario, framework-free (tests and evaluation too).

Every scenario runs the same pipeline on the current :class:`~shopflow.serving.state.ServingState`:
candidate sources (``retrieval.sources``) → merge with provenance → filter (request filters, stock,
blocked items) → rank (``ranking.BlendRanker``) → diversify → explain → log the impression. When the
sources leave fewer items than asked, popularity over the filtered catalogue fills the page, so a
missing bundle, a missing model or a cold user still get an answer (``strategy`` says which).

Real time: :meth:`RecommendService.on_events` runs after each accepted batch (the online state is
already updated, so the next request sees the new history); it adds each event to the
co-visitation tables and invalidates the trending cache. Bundles swap atomically: :meth:`reload`
builds a complete new state, then replaces one reference.

Example
-------
>>> service = RecommendService(store, online, settings)        # doctest: +SKIP
>>> service.start()  # loads the current bundle                # doctest: +SKIP
>>> rec = service.home("u-42", n=10)                            # doctest: +SKIP
>>> rec.strategy, rec.items[0]["reasons"][0]["text"]            # doctest: +SKIP
('home:personal', 'Because you viewed Green tea, 100 g')
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shopflow.config import Settings
from shopflow.errors import ValidationFailed
from shopflow.ingest.schema import Event, Item
from shopflow.ranking import BlendRanker, RankContext, Ranker
from shopflow.ranking.explain import ExplainContext
from shopflow.ranking.pipeline import rank_page
from shopflow.ranking.rules import Filters
from shopflow.retrieval.merge import SourceHits
from shopflow.serving import metrics
from shopflow.serving.context import Encoder, RequestContext
from shopflow.serving.impressions import ImpressionLog
from shopflow.serving.intent import searched_hits, user_taste
from shopflow.serving.item_scenarios import ItemScenarios
from shopflow.serving.reload import StateKeeper, settle_heap
from shopflow.serving.reviews import ReviewSignals
from shopflow.serving.state import (
    Recommendation,
    RecommendConfig,
    ServingState,
    UserView,
)
from shopflow.store.bundles import BundleStore
from shopflow.store.online import OnlineState
from shopflow.store.store import Store

log = logging.getLogger(__name__)

REASON_CACHE = 100_000  # evidence-bound reasons a serving state keeps (ExplainContext.cache)


class RecommendService(ItemScenarios):
    """Scenarios (home, similar, complementary, cart, new_arrivals, trending, search), online
    updates (:meth:`on_events`, :meth:`on_items`, :meth:`on_user`), bundle swaps (:meth:`reload`).

    Parameters
    ----------
    store, online, settings
        The durable stores, the online state and the settings of the app.
    bundles
        Where model bundles are published (default ``<data_dir>/bundles``).
    loader
        Reads a bundle directory (default ``shopflow.models.bundle.load_bundle``).
    encoder
        Encodes search queries into the space of the bundle's item vectors; without it search is
        lexical (plus personalisation).
    """

    def __init__(
        self,
        store: Store,
        online: OnlineState,
        settings: Settings,
        bundles: BundleStore | None = None,
        config: RecommendConfig | None = None,
        impressions: ImpressionLog | None = None,
        loader: Callable[[Path], Any] | None = None,
        encoder: Encoder | None = None,
    ) -> None:
        self.store, self.online, self.settings = store, online, settings
        self.config = config or RecommendConfig()
        self.impressions = impressions or ImpressionLog(
            settings.data_dir / "impressions" / "impressions.jsonl", shared=online
        )
        self.ranker: Ranker = BlendRanker()
        self.keeper = StateKeeper(
            store,
            bundles or BundleStore(settings.data_dir / "bundles"),
            self.config,
            loader,
            on_install=self._warm,
        )
        self.context = RequestContext(store, online, settings, self.config, encoder)
        self.reviews = ReviewSignals(online, model_dir=settings.data_dir / "models")

    # -- lifecycle (the state keeper does the work) ---------------------------------------------
    @property
    def state(self) -> ServingState:
        return self.keeper.state

    @property
    def model_version(self) -> str | None:
        return self.keeper.model_version

    @property
    def bundles(self) -> BundleStore:
        return self.keeper.bundles

    @property
    def reloads(self) -> int:
        return self.keeper.reloads

    def start(self) -> None:
        """Limit the threads of one request's math, then load the current bundle (never raises).

        Requests run in parallel on the server's threads, so each one's forward pass and BLAS calls
        use ``torch_threads`` threads; BLAS inside implicit's OpenMP loop (the ALS fold-in) must be
        single-threaded, or OpenBLAS may hang ("Detect OpenMP Loop and this application may hang").
        """
        self._limit_threads()
        self.keeper.start()

    def _limit_threads(self) -> None:
        """One request's math on ``torch_threads`` threads (BLAS libraries loaded so far too)."""
        import torch
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(self.config.torch_threads)
        threadpool_limits(self.config.torch_threads, user_api="blas")

    def reload(self, bundle_path: str | Path | None = None) -> dict[str, Any]:
        """Load ``bundle_path`` (default: the current bundle) and swap it in atomically."""
        return self.keeper.reload(bundle_path)

    def install(self, bundle: Any | None) -> str | None:
        """Swap in an already loaded bundle (None: the bare catalogue)."""
        return self.keeper.install(bundle)

    def close(self) -> None:
        self.impressions.close()

    def _warm(self, state: ServingState) -> None:
        """After a swap: the version in ``/metrics``, thread limits, the query encoder if needed,
        and the new state's objects out of the garbage collector's full passes (``settle_heap``)."""
        self._limit_threads()  # the bundle's models may have loaded another BLAS library
        metrics.set_model_version(state.version)
        if self.config.freeze_heap:
            seconds = settle_heap()
            log.debug("heap settled after the swap", extra={"seconds": round(seconds, 3)})
        if self.config.load_text_encoder:
            self.context.load_encoder(state, lambda: self.keeper.state)
        if self.config.warm_search:  # build the search index now, not in the first search
            encoder = self.encoder if state.sources.text is not None else None
            threading.Thread(target=state.search_index, args=(encoder,), daemon=True).start()

    @property
    def encoder(self) -> Encoder | None:
        """Encodes search queries into the space of the bundle's item vectors (None: lexical)."""
        return self.context.encoder

    @encoder.setter
    def encoder(self, value: Encoder | None) -> None:
        self.context.encoder = value

    # -- online updates ---------------------------------------------------------------------------
    def on_events(self, events: Sequence[Event]) -> None:
        """Learn from accepted events (after the online state recorded them) and attribute those
        that carry a ``recommendation_id``."""
        if events:
            self.impressions.attribute(events)
            self.context.learn(self.keeper.state, events)
            try:  # review sentiment: scored once, on arrival
                self.reviews.learn(events)
            except Exception:
                log.exception("reviews not scored; their sentiment is left out")

    def on_items(self, items: Sequence[Item]) -> None:
        """Catalogue writes through the API: new price, stock and presence take effect at once;
        new and edited items are recommendable and searchable at once (``serving.fresh``)."""
        self.keeper.on_items(items, self.encoder)

    def on_user(self, user_id: str) -> None:
        """A user record changed or was erased: forget the cached consent."""
        self.context.forget(user_id)

    # -- scenarios --------------------------------------------------------------------------------
    def home(
        self, user_id: str, n: int = 20, offset: int = 0, filters: Filters | None = None
    ) -> Recommendation:
        """The personal feed from the user's latest behaviour; trending for a cold user."""
        st, f = self.keeper.state, filters or Filters()
        u, k = self.context.user(st, user_id), self._pool(n, offset)
        src, trend = st.sources, self.context.trending()
        hits = []
        if len(u.history):
            h = u.history
            hits = [
                src.sequential(h, k),
                src.covisit_history(h, k),
                src.als_history(h, k),
                src.content_history(h, k, u.weights),
                src.session(h, trend, k),
            ]
        if u.personal and u.queries:  # what the user searched for in this session
            hits.append(searched_hits(st, self.encoder, u.queries, k))
        hits.append(src.trending(trend, k))
        mode = "trending" if u.mode == "cold" else u.mode
        if mode == "trending" and len(hits) > 1 and len(hits[0]):
            mode = "searched"
        blocked = np.concatenate([u.history, u.purchased])
        return self._answer(st, "home", mode, hits, n, offset, f, blocked, u)

    def new_arrivals(
        self,
        user_id: str | None = None,
        n: int = 20,
        offset: int = 0,
        filters: Filters | None = None,
    ) -> Recommendation:
        """Recent items this user is likely to want (content, brand and category affinity)."""
        st, f = self.keeper.state, filters or Filters()
        u, k = self.context.user(st, user_id), self._pool(n, offset)
        src, t = st.sources, st.table
        personal = u.personal and len(u.history) > 0
        hits = [
            src.new_arrivals(
                k,
                src.profile(u.history, u.weights) if personal else None,
                u.brand_affinity(t) if personal else None,
                u.category_affinity(t) if personal else None,
                mask=f.item_mask(t),
            )
        ]
        mode = (
            "personal"
            if personal
            else "non_personal"
            if u.user_id and not u.personal
            else ("newest")
        )
        return self._answer(st, "new_arrivals", mode, hits, n, offset, f, u.purchased, u)

    def trending(
        self,
        category: str | None = None,
        user_id: str | None = None,
        n: int = 20,
        offset: int = 0,
        filters: Filters | None = None,
    ) -> Recommendation:
        """What is trending now, overall or in one category (not personal)."""
        st, f = self.keeper.state, filters or Filters()
        if category:
            f = Filters(category, f.brand, f.min_price, f.max_price, f.in_stock, f.exclude)
        u = self.context.user(st, user_id)
        k, trend = self._pool(n, offset), self.context.trending()
        hits = [st.sources.trending(trend, k, f.item_mask(st.table))]
        return self._answer(st, "trending", "trending", hits, n, offset, f, u.purchased, u)

    def search(
        self,
        query: str,
        user_id: str | None = None,
        n: int = 20,
        offset: int = 0,
        filters: Filters | None = None,
    ) -> Recommendation:
        """Product search (``text.search``: BM25 + dense, fused), personalised by the history.

        Query understanding turns "red shoes under $50" into filters; with an ``encoder`` the
        search is hybrid, without it lexical only. For a user with history the results are
        re-ranked by their taste (``serving.intent.user_taste``: text profile, liked brands and
        categories, the sequential model's scores). A page is never padded with unrelated items.
        """
        if not query.strip():
            raise ValidationFailed([("q", "the query is empty")])
        from shopflow.text.query import parse_query
        from shopflow.text.search import SearchFilters

        st, f = self.keeper.state, filters or Filters()
        u, k = self.context.user(st, user_id), self._pool(n, offset)
        src, table = st.sources, st.table
        dense = self.encoder is not None and src.text is not None
        index, vocab = st.search_index(self.encoder if dense else None)
        taste = user_taste(st, u, dense)
        prof = taste.vector if taste is not None else None
        found = index.search(
            parse_query(query, vocab),
            k,
            SearchFilters(f.category, f.brand, f.min_price, f.max_price, in_stock=False),
            taste=taste,
        )
        if not dense:  # the zero dense half ties every item: keep what the words found
            found = [h for h in found if "lexical" in h.parts]
        idx = table.ids.to_index((h.item_id for h in found), missing=-1)
        ok = idx >= 0
        hits = [SourceHits("search", idx[ok], np.array([h.score for h in found])[ok])]
        mode = "hybrid" if dense else "lexical"
        text = src.text
        if prof is not None and text is not None and dense:  # what it resembles: a second reason
            ev = src.history_evidence(text, idx[ok], u.history[-src.history_len :])
            hits.append(SourceHits("content", idx[ok], text[idx[ok]] @ prof, ev))
        if taste is not None:
            mode += "+personal"
        return self._answer(st, "search", mode, hits, n, offset, f, None, u, query, fill=False)

    # -- the shared pipeline ----------------------------------------------------------------------
    def _answer(
        self,
        st: ServingState,
        scenario: str,
        mode: str,
        hits: list[SourceHits],
        n: int,
        offset: int,
        f: Filters,
        blocked: np.ndarray | None,
        u: UserView,
        query: str | None = None,
        fill: bool = True,
    ) -> Recommendation:
        self._check_page(n, offset)
        ctx = RankContext(scenario, self.config.weights.get(scenario, {}))
        popular = st.sources.popular if fill else None
        reviews = self.reviews.feature(st.table)
        explain_ctx = self._explain_ctx(st, scenario, u, f, query, hits)
        explain_ctx.review_reason, explain_ctx.searches = reviews.reason, list(u.queries)
        items = rank_page(
            hits, st.table, popular, f, blocked, n, offset, self.ranker, ctx,
            explain_ctx, self.config.max_share, features=reviews,
        )  # fmt: skip
        strategy = f"{scenario}:{mode}"
        rid = self.impressions.record(scenario, strategy, st.version, [i["item_id"] for i in items])
        return Recommendation(rid, scenario, strategy, st.version, items)

    def _explain_ctx(
        self,
        st: ServingState,
        scenario: str,
        u: UserView,
        f: Filters,
        query: str | None,
        hits: list[SourceHits],
    ) -> ExplainContext:
        # the brands and categories a user likes name only new arrivals' reasons
        liked = len(u.history) > 0 and any(h.name == "new_arrivals" for h in hits)
        liked_b = set(u.brand_affinity(st.table)) if liked else set()
        liked_c = set(u.category_affinity(st.table)) if liked else set()
        if len(st.reasons) > REASON_CACHE:  # a bound on what the state keeps: start again
            st.reasons.clear()
        return ExplainContext(
            st.table, scenario, query, f.category, liked_b, liked_c, cache=st.reasons
        )

    def _check_page(self, n: int, offset: int) -> None:
        cfg, problems = self.config, []
        if not 1 <= n <= cfg.max_n:
            problems.append(("n", f"must be between 1 and {cfg.max_n}, not {n}"))
        if not 0 <= offset <= cfg.max_offset:
            problems.append(("offset", f"must be between 0 and {cfg.max_offset}, not {offset}"))
        if problems:
            raise ValidationFailed(problems)

    def _pool(self, n: int, offset: int) -> int:
        cfg = self.config
        return min(max(cfg.pool_factor * (offset + n), cfg.min_pool), cfg.max_pool)
