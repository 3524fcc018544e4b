"""What a request of the recommend service knows about its user and item, and how events teach it.

:class:`RequestContext` turns a user id into a :class:`~shopflow.serving.state.UserView` (consent
first: without consent to personalisation nothing personal is read), an item id into its dense index
(or a 404 that says what to do), keeps the online trending list for a second, and feeds accepted
events to the co-visitation tables (:meth:`RequestContext.learn`). Small caches, each with a short
lifetime, keep the database off the request path: consent (``serving.consent``: who withheld it,
polled every ``user_seconds``), trending for ``trending_seconds``; both change at once when this
process sees the change.
"""

from __future__ import annotations

import bisect
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shopflow.config import Settings
from shopflow.errors import NotFound
from shopflow.ingest.schema import Event
from shopflow.serving.consent import ConsentView
from shopflow.serving.shared import SharedLearning
from shopflow.serving.state import POSITIVE, RecommendConfig, ServingState, UserView, user_view
from shopflow.store.online import OnlineState, RecentEvent, to_recent
from shopflow.store.store import Store

log = logging.getLogger(__name__)

Encoder = Any  # .encode(texts, batch_size=...) → (B, E) vectors in the space of the item vectors


class RequestContext:
    """Users, items and trending as the scenarios see them (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        online: OnlineState,
        settings: Settings,
        config: RecommendConfig,
        encoder: Encoder | None = None,
    ) -> None:
        self.store, self.online, self.settings, self.config = store, online, settings, config
        self.encoder = encoder
        self._encoder_loading = False
        self._trend: tuple[float, list[tuple[str, float]]] = (0.0, [])
        self.consent = ConsentView(store, config.user_seconds)
        self.shared = SharedLearning(online)  # co-visitation learned by the other workers

    def user(self, st: ServingState, user_id: str | None) -> UserView:
        """The user's recent behaviour in ``st``'s item ids (empty without consent)."""
        if not user_id:
            return UserView.anonymous()
        if not self.personal(user_id):
            return UserView.anonymous(user_id, personal=False)
        return user_view(
            st,
            user_id,
            self.online.recent(user_id),
            self.settings.event_weights,
            self.config,
            self.settings.online.session_timeout_seconds,
        )

    def personal(self, user_id: str) -> bool:
        """The user's consent to personalisation (no record: consent by default)."""
        return self.consent.personal(user_id)

    def forget(self, user_id: str) -> None:
        """The record of ``user_id`` changed or was erased here: read its consent again now."""
        self.consent.forget(user_id)

    def item(self, st: ServingState, item_id: str) -> tuple[int, np.ndarray | None]:
        """Dense index of ``item_id`` (-1 when the state lacks it) and its leaf-category mask.

        Raises
        ------
        NotFound
            When the item is neither in the state nor in the catalogue.
        """
        i = st.table.ids.get(item_id)
        if i >= 0 and st.table.available[i]:
            leaf = st.table.leaf_name(i)
            return i, st.table.category_mask(leaf) if leaf else None
        record = self.store.catalogue.get(item_id)
        if record is None:
            raise NotFound(
                f"item {item_id!r} is not in the catalogue; add it with PUT /v1/items/{{id}}"
            )
        leaf = record.categories[-1] if record.categories else None
        return i, st.table.category_mask(leaf) if leaf else None

    def trending(self) -> list[tuple[str, float]]:
        """The online trending list (item id, weighted count), reused for ``trending_seconds``."""
        at, cached = self._trend
        now = time.monotonic()
        if now - at < self.config.trending_seconds:
            return cached
        fresh = self.online.trending(n=2_000)
        if fresh == cached and at > 0.0:  # unchanged: the same object, so that what was derived
            fresh = cached  # from it (trending hits, their unions with kept lists) stays valid
        self._trend = (now, fresh)
        return fresh

    def learn(self, st: ServingState, events: Sequence[Event]) -> None:
        """Add accepted events to the co-visitation tables (each paired with the user's earlier
        items, read from the online state, which already holds the events) and expire trending."""
        self._trend = (0.0, [])
        covisit = st.sources.covisit
        if covisit is None:
            return
        by_user: dict[str, list[Event]] = defaultdict(list)
        for e in events:
            if e.item_id is not None and e.type.value in POSITIVE:
                by_user[e.user_id].append(e)
        window = covisit.config.window
        learned: list[tuple[int, str, np.ndarray, np.ndarray]] = []
        for user_id, evs in by_user.items():
            learned += self._learn_user(st, evs, self.online.recent(user_id), window)
        for item, kind, before, types in learned:
            st.sources.learn(before, types, item, kind)
        self.shared.publish(st, learned)  # the other workers replay it (Redis only)

    @staticmethod
    def _learn_user(
        st: ServingState, evs: list[Event], recent: list[RecentEvent], window: int
    ) -> list[tuple[int, str, np.ndarray, np.ndarray]]:
        """What the user's events ``evs`` teach: ``(item, type, items before, their types)``,
        each with the last ``window`` known positive items before it in ``recent`` (the user's
        sequence, sorted, holding ``evs``).

        Each event is found by bisection and only the items just before it are read, so a
        batch costs O(events × window), not a pass over every user's whole sequence.
        """
        ids = st.table.ids
        out = []
        for e in evs:
            probe = to_recent(e)
            p = bisect.bisect_left(recent, probe)
            item = ids.get(str(e.item_id))
            if p >= len(recent) or recent[p].event_id != e.event_id or item < 0:
                continue  # not in the sequence (already beyond max_sequence), or unknown item
            before: list[int] = []
            types: list[str] = []
            q = p - 1
            while q >= 0 and len(before) < window:
                r = recent[q]
                q -= 1
                if r.item_id and r.type in POSITIVE:
                    i = ids.get(r.item_id)
                    if i >= 0:
                        before.append(i)
                        types.append(r.type)
            out.append(
                (
                    item,
                    e.type.value,
                    np.array(before[::-1], dtype=np.int64),
                    np.array(types[::-1], dtype=str),
                )
            )
        return out

    def load_encoder(self, state: ServingState, current: Callable[[], ServingState]) -> None:
        """Load, in the background, the query encoder ``state``'s item vectors need (named in its
        manifest, ``text.model``), then build the search index of the ``current`` state; search
        is lexical until then. Nothing to do without item vectors or with an encoder already."""
        name = (state.manifest.get("text") or {}).get("model")
        if state.sources.text is None or not name or self.encoder is not None:
            return
        if self._encoder_loading:
            return
        self._encoder_loading = True

        def load() -> None:
            try:
                from shopflow.text.encoder import TextEncoder

                encoder = TextEncoder(None if "MiniLM-L6" in str(name) else str(name))
                encoder.encode(["warm up"])
                current().search_index(encoder)
                self.encoder = encoder
                log.info("query encoder ready", extra={"model": str(name)})
            except Exception:
                log.exception("query encoder not loaded; search stays lexical")
            finally:
                self._encoder_loading = False

        threading.Thread(target=load, name="shopflow-encoder", daemon=True).start()
