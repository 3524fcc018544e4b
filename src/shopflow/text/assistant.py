"""The shopping assistant: a message and the conversation so far → needs, picks and a reply.

Framework-free; the HTTP route (``serving/routes/assistant.py``) is a thin wrapper. One answer:

1. **Needs.** The user turns are read and added up (``text.assistant_needs``): category, brand,
   budget, attributes (colour, size), recipient, occasion and keywords. With no category named,
   the keywords' lexical search hits name one when most of them agree ("running shoes" →
   Sneakers on the demo shop).
2. **Plan.** Each hard constraint is checked against the live catalogue; one nothing satisfies is
   reported as not met and relaxed: a category all sold out or a brand absent from it is dropped,
   a budget nothing meets is widened to the nearest prices (:func:`plan`).
3. **Picks.** The recommend service does the ranking: ``search`` when there are words to search
   (keywords, attribute values), topped up by ``home`` (the user's history, trending for a cold
   user) under the same filters; colour and size are then matched in the item text. Every pick
   keeps the service's reasons.
4. **Reply.** A template writes it from the structured result (deterministic); with an LLM
   configured (``assistant.llm_url``), the LLM may refine the needs and writes the reply, which
   must name only the picks (``text.assistant_llm``). Any failure falls back to the offline path,
   and ``engine`` says which path answered.

Example
-------
>>> assistant = Assistant(recommend_service, settings.assistant)       # doctest: +SKIP
>>> a = assistant.answer("running shoes under 50", user_id="u-42")      # doctest: +SKIP
>>> a.engine, a.needs.category, [it["price"] <= 50 for it in a.items]   # doctest: +SKIP
('offline', 'Sneakers', [True, True, True, True, True])
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shopflow.config import AssistantSettings
from shopflow.errors import ValidationFailed
from shopflow.ingest.schema import Item
from shopflow.ranking.rules import Filters
from shopflow.text.assistant_llm import (
    ChatEndpoint,
    Grounding,
    LLMFailure,
    normalise_title,
    refine_needs,
    write_reply,
)
from shopflow.text.assistant_needs import Needs, accumulate, read_turn
from shopflow.text.assistant_plan import (
    Finding,
    attribute_matches,
    compose_reply,
    describe_pick,
    plan,
)
from shopflow.text.query import QueryVocabulary, normalise_token, tokenize
from shopflow.text.search import SearchFilters

log = logging.getLogger(__name__)

MAX_N = 20  # most picks one answer may ask for
POOL_FACTOR, MIN_POOL = 4, 20  # candidates asked of the service: room for colour and size
PICK_FIELDS = ("item_id", "title", "brand", "category", "price", "currency")  # shown to an LLM
INFER_DEPTH, INFER_SHARE = 10, 0.6  # category inference: top lexical hits, share that must agree


class Ranked(Protocol):
    """What the recommend service answers (``serving.state.Recommendation``)."""

    strategy: str
    items: list[dict[str, Any]]


class RecommendLike(Protocol):
    """The part of ``serving.recommend.RecommendService`` the assistant uses."""

    store: Any
    impressions: Any
    config: Any

    @property
    def state(self) -> Any: ...

    @property
    def encoder(self) -> Any: ...

    def home(
        self, user_id: str, n: int = ..., offset: int = ..., filters: Filters | None = ...
    ) -> Ranked: ...

    def search(
        self,
        query: str,
        user_id: str | None = ...,
        n: int = ...,
        offset: int = ...,
        filters: Filters | None = ...,
    ) -> Ranked: ...


@dataclass
class Result:
    """The picks for some needs, with what was applied and what could not be met."""

    needs: Needs
    items: list[dict[str, Any]]
    applied: list[Finding]
    unmet: list[Finding]
    retrieval: list[str]


@dataclass
class AssistantAnswer:
    """One answer of the assistant; ``as_dict`` is the HTTP response body."""

    engine: str
    reply: str
    needs: Needs
    recognised: Needs
    items: list[dict[str, Any]]
    applied: list[Finding]
    unmet: list[Finding]
    recommendation_id: str
    strategy: str
    model_version: str | None
    retrieval: list[str] = field(default_factory=list)
    fallback_reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "fallback_reason": self.fallback_reason,
            "reply": self.reply,
            "constraints": self.needs.as_dict(),
            "recognised": self.recognised.as_dict(),
            "applied": [f.as_dict() for f in self.applied],
            "unmet": [f.as_dict() for f in self.unmet],
            "recommendation_id": self.recommendation_id,
            "scenario": "assistant",
            "strategy": self.strategy,
            "model_version": self.model_version,
            "retrieval": self.retrieval,
            "items": self.items,
        }


class Assistant:
    """Answers shoppers' messages with picks from ``service`` (see the module docstring).

    Parameters
    ----------
    service
        The recommend service (``serving.recommend.RecommendService``).
    settings
        The ``assistant`` settings; with ``llm_url`` set the LLM writes the replies.
    """

    def __init__(self, service: RecommendLike, settings: AssistantSettings | None = None) -> None:
        self.service = service
        self.settings = settings or AssistantSettings()
        self.chat = ChatEndpoint.from_settings(self.settings)
        self._titles: tuple[tuple[int, int], dict[str, str], int] | None = None
        self._lock = threading.Lock()

    def answer(
        self,
        message: str,
        conversation: Sequence[Mapping[str, str]] = (),
        user_id: str | None = None,
        n: int = 5,
    ) -> AssistantAnswer:
        """Needs, picks and a reply for ``message`` after ``conversation`` (oldest turn first,
        each ``{"role": "user" | "assistant", "content": ...}``)."""
        if not message.strip():
            raise ValidationFailed([("message", "is empty: say what you are looking for")])
        if not 1 <= n <= MAX_N:
            raise ValidationFailed([("n", f"must be between 1 and {MAX_N}, not {n}")])
        history = list(conversation)[-self.settings.max_turns :]
        st = self.service.state
        vocab = self._vocabulary(st)
        said = [t["content"] for t in history if t.get("role") == "user"]
        needs = accumulate([*said, message], vocab)
        recognised = read_turn(message, vocab).needs
        result, reply, engine, why = None, "", "offline", None
        wanted = needs
        if self.chat is not None:
            try:
                if self.settings.llm_refine:
                    wanted = refine_needs(self.chat, history, message, needs, vocab)
                result = self._result(wanted, st, user_id, n)
                payload, grounding = self._grounding(st, result, history, message)
                reply, engine = write_reply(self.chat, payload, grounding), "llm"
            except LLMFailure as e:
                why = str(e)
                log.warning("assistant LLM failed; answering offline", extra={"why": why})
                if wanted != needs:
                    result = None  # the offline path: the rules' needs, not the LLM's
        if result is None:
            result = self._result(needs, st, user_id, n)
        if engine == "offline":
            reply = compose_reply(result.needs, result.items, result.unmet)
        strategy = f"assistant:{engine}"
        ids = [it["item_id"] for it in result.items]
        rid = self.service.impressions.record("assistant", strategy, st.version, ids)
        return AssistantAnswer(
            engine, reply, result.needs, recognised, result.items, result.applied,
            result.unmet, rid, strategy, st.version, result.retrieval, why,
        )  # fmt: skip

    # -- needs → picks ----------------------------------------------------------------------------
    def _result(self, needs: Needs, st: Any, user_id: str | None, n: int) -> Result:
        needs = needs.copy()
        inferred = None
        if needs.category is None and needs.keywords:
            inferred = self._infer_category(st, needs)
            needs.category = inferred
        filters, applied, unmet = plan(needs, st.table, n, inferred)
        pool = min(int(self.service.config.max_n), max(POOL_FACTOR * n, MIN_POOL))
        attrs = dict(needs.attributes)
        items, retrieval = self._retrieve(needs.keywords, attrs, filters, user_id, pool)
        records = self._records(items)
        missing = {
            k: v
            for k, v in attrs.items()
            if not any(attribute_matches(it, records.get(it["item_id"]), k, v) for it in items)
        }
        if missing:  # nothing has it: search again without its words
            for key, value in missing.items():
                what = value if key == "color" else f"{key} {value}"
                unmet.append(Finding("attribute", {key: value}, f"no matching item is {what}"))
                del attrs[key]
            items, retrieval = self._retrieve(needs.keywords, attrs, filters, user_id, pool)
            records = self._records(items)
        for key, value in attrs.items():
            kept = [
                it for it in items if attribute_matches(it, records.get(it["item_id"]), key, value)
            ]
            if kept:
                items = kept
                applied.append(Finding("attribute", {key: value}, "matched in the item's data"))
            else:
                what = value if key == "color" else f"{key} {value}"
                unmet.append(Finding("attribute", {key: value}, f"no matching item is {what}"))
        if needs.keywords:
            applied.append(Finding("keywords", list(needs.keywords), "searched for"))
        for name in ("recipient", "occasion"):
            if getattr(needs, name):
                applied.append(Finding(name, getattr(needs, name), "used in the reply"))
        picks = [describe_pick(it, records.get(it["item_id"])) for it in items[:n]]
        return Result(needs, picks, applied, unmet, retrieval)

    def _retrieve(
        self,
        keywords: Sequence[str],
        attrs: Mapping[str, str],
        filters: Filters,
        user_id: str | None,
        pool: int,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Up to ``pool`` ranked items: a search for the words, then the user's home feed (their
        history, or what is popular) under the same filters; the strategies used."""
        words = " ".join([*keywords, *attrs.values()]).strip()
        items: list[dict[str, Any]] = []
        retrieval = []
        if words:
            rec = self.service.search(words, user_id, pool, 0, filters)
            items, retrieval = list(rec.items), [rec.strategy]
        if len(items) < pool:
            seen = frozenset(it["item_id"] for it in items)
            more = Filters(
                filters.category, filters.brand, filters.min_price, filters.max_price,
                exclude=filters.exclude | seen,
            )  # fmt: skip
            rec = self.service.home(user_id or "", pool - len(items), 0, more)
            items += rec.items
            retrieval.append(rec.strategy)
        return items, retrieval

    def _infer_category(self, st: Any, needs: Needs) -> str | None:
        """The leaf category that most top lexical hits of the keywords share, if enough agree;
        hits whose title holds every keyword count alone when there are any."""
        index, _ = st.search_index(self._encoder(st))
        hits = index.search(" ".join(needs.keywords), INFER_DEPTH, SearchFilters(brand=needs.brand))
        table = st.table
        rows = [table.ids.get(h.item_id) for h in hits if "lexical" in h.parts]
        rows = [i for i in rows if i >= 0]
        want = {normalise_token(w) for w in needs.keywords}
        full = [i for i in rows if want <= {normalise_token(t) for t in tokenize(table.titles[i])}]
        leaves = [table.leaf_name(i) for i in (full or rows)]
        if not leaves:
            return None
        leaf, count = Counter(leaves).most_common(1)[0]
        return leaf if leaf is not None and count >= INFER_SHARE * len(leaves) else None

    def _records(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Item]:
        """Catalogue records of the candidates (description, attributes, currency)."""
        if not items:
            return {}
        return self.service.store.catalogue.get_many([it["item_id"] for it in items])

    def _encoder(self, st: Any) -> Any:
        return self.service.encoder if st.sources.text is not None else None

    def _vocabulary(self, st: Any) -> QueryVocabulary:
        _, vocab = st.search_index(self._encoder(st))
        return vocab

    # -- grounding of an LLM reply ----------------------------------------------------------------
    def _grounding(
        self, st: Any, result: Result, history: Sequence[Mapping[str, str]], message: str
    ) -> tuple[dict[str, Any], Grounding]:
        picks = result.items
        ids = {p["item_id"] for p in picks}
        titles = {p["title"] for p in picks if p.get("title")}
        amounts = [float(p["price"]) for p in picks if p.get("price") is not None]
        for p in picks:
            for r in p["reasons"]:
                ev = r.get("evidence", {})
                if isinstance(ev.get("item_id"), str):
                    ids.add(ev["item_id"])
                if isinstance(ev.get("title"), str):
                    titles.add(ev["title"])
        for f in [*result.applied, *result.unmet]:
            amounts += [float(v) for v in f.amounts()]
        index, longest = self._title_index(st.table)
        grounding = Grounding(
            ids, titles, amounts, {p["item_id"] for p in picks},
            {p["title"] for p in picks if p.get("title")}, st.table.ids, index, longest,
        )  # fmt: skip
        payload = {
            "conversation": [dict(t) for t in history],
            "message": message,
            "constraints": result.needs.as_dict(),
            "applied": [f.as_dict() for f in result.applied],
            "unmet": [f.as_dict() for f in result.unmet],
            "picks": [
                {
                    k: p.get(k)
                    for k in ("item_id", "title", "brand", "category", "price", "currency")
                }
                | {"reason": p["reasons"][0]["text"] if p["reasons"] else None}
                for p in picks
            ],
        }
        return payload, grounding

    def _title_index(self, table: Any) -> tuple[dict[str, str], int]:
        """Normalised catalogue title (two words or more) → item id; built once per table."""
        key = (id(table), len(table))
        with self._lock:
            if self._titles is None or self._titles[0] != key:
                index: dict[str, str] = {}
                for item_id, title in zip(table.ids.external_ids, table.titles, strict=True):
                    t = normalise_title(title or "")
                    if " " in t:
                        index.setdefault(t, item_id)
                longest = max((t.count(" ") + 1 for t in index), default=2)
                self._titles = (key, index, min(longest, 16))
            return self._titles[1], self._titles[2]
