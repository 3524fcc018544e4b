"""The item-page and cart scenarios of the recommend service: similar, complementary, cart.

:class:`ItemScenarios` is a mixin of :class:`~shopflow.serving.recommend.RecommendService`: the
scenarios that start from items (an item page, a cart) rather than from a user's feed. They share
the service's pipeline (``_answer``), state (``keeper``) and request context (``context``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from shopflow.errors import ValidationFailed
from shopflow.ranking.rules import Filters
from shopflow.serving.state import Recommendation, ServingState, UserView

if TYPE_CHECKING:
    from shopflow.serving.context import RequestContext
    from shopflow.serving.reload import StateKeeper


class ItemScenarios:
    """Items like this one, bought with this one, and what completes a cart."""

    # the service's own (RecommendService): its state, request context, pool size and pipeline
    keeper: StateKeeper
    context: RequestContext
    _pool: Callable[[int, int], int]
    _answer: Callable[..., Recommendation]

    def similar(
        self,
        item_id: str,
        n: int = 20,
        offset: int = 0,
        filters: Filters | None = None,
        user_id: str | None = None,
    ) -> Recommendation:
        """Items like this one (item page)."""
        st, f = self.keeper.state, filters or Filters()
        i, leaf_mask = self.context.item(st, item_id)
        u, k = self.context.user(st, user_id), self._pool(n, offset)
        hits = st.sources.similar(i, k) if i >= 0 else []
        mode = "item" if any(len(h) for h in hits) else "category"
        hits.append(st.sources.trending(self.context.trending(), k, leaf_mask))
        blocked = np.concatenate([[i] if i >= 0 else [], u.purchased]).astype(np.int64)
        return self._answer(st, "similar", mode, hits, n, offset, f, blocked, u)

    def complementary(
        self,
        item_id: str,
        n: int = 20,
        offset: int = 0,
        filters: Filters | None = None,
        user_id: str | None = None,
    ) -> Recommendation:
        """Items bought together with this one."""
        st, f = self.keeper.state, filters or Filters()
        i, leaf_mask = self.context.item(st, item_id)
        return self._cart(
            st,
            "complementary",
            [i] if i >= 0 else [],
            leaf_mask,
            n,
            offset,
            f,
            self.context.user(st, user_id),
        )

    def cart(
        self,
        item_ids: Sequence[str],
        user_id: str | None = None,
        n: int = 20,
        offset: int = 0,
        filters: Filters | None = None,
    ) -> Recommendation:
        """What completes this cart."""
        st, f = self.keeper.state, filters or Filters()
        if not item_ids:
            raise ValidationFailed([("item_ids", "the cart is empty: name at least one item")])
        anchors: list[int] = []
        same: np.ndarray | None = None  # the cart's leaf categories
        for item_id in dict.fromkeys(item_ids):
            i, mask = self.context.item(st, item_id)
            if mask is not None:
                same = mask.copy() if same is None else same | mask
            if i >= 0:
                anchors.append(i)
        return self._cart(st, "cart", anchors, same, n, offset, f, self.context.user(st, user_id))

    def _cart(
        self,
        st: ServingState,
        scenario: str,
        anchors: list[int],
        same_leaf: np.ndarray | None,
        n: int,
        offset: int,
        f: Filters,
        u: UserView,
    ) -> Recommendation:
        k, src = self._pool(n, offset), st.sources
        hits = [src.bought_together(anchors, k), src.viewed_together_elsewhere(anchors, k)]
        mode = (
            "bought_together"
            if len(hits[0])
            else "viewed_together"
            if len(hits[1])
            else ("fallback")
        )
        if scenario == "cart" and u.personal and len(u.history) + len(anchors):
            hits.append(src.sequential(np.concatenate([u.history, anchors]).astype(np.int64), k))
        other = None if same_leaf is None else ~same_leaf  # fallback: popular elsewhere
        hits.append(src.trending(self.context.trending(), k, other))
        blocked = np.concatenate([anchors, u.purchased]).astype(np.int64)
        return self._answer(st, scenario, mode, hits, n, offset, f, blocked, u)
