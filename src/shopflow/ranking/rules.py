"""Business rules: what must not be shown (filters) and how varied a list must be (diversity).

:class:`Filters` are the request's own (category, brand, price range, in stock, excluded ids);
:func:`allowed` applies them, the catalogue's availability and the scenario's blocked items (the
anchor item, the cart, items already bought where buying again makes no sense) to a candidate array.
:func:`diversify` re-orders a ranked list so that no leaf category and no brand takes more than a
share of the first ``n`` places.

Example
-------
>>> import numpy as np
>>> from shopflow.retrieval.items import ItemTable
>>> from shopflow.store.idmap import IdMap
>>> t = ItemTable.build(IdMap(list("abcd")), paths=[["X"], ["X"], ["X"], ["Y"]],
...                     price=[1.0, 5.0, None, 2.0])
>>> Filters(max_price=4.0).item_mask(t).tolist()
[True, False, False, True]
>>> diversify(np.arange(4), t, n=4, max_share=0.5).tolist()
[0, 1, 3, 2]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from shopflow.errors import ValidationFailed
from shopflow.retrieval.items import ItemTable


@dataclass(frozen=True)
class Filters:
    """Request filters. ``in_stock`` (default True) drops sold-out items; ``exclude`` names ids."""

    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = True
    exclude: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        problems = []
        for name in ("min_price", "max_price"):
            v = getattr(self, name)
            if v is not None and (not math.isfinite(v) or v < 0):
                problems.append((name, f"must be a non-negative number, not {v}"))
        if (
            self.min_price is not None
            and self.max_price is not None
            and self.min_price > self.max_price
        ):
            problems.append(
                ("min_price", f"{self.min_price} is above max_price {self.max_price}; swap them")
            )
        if problems:
            raise ValidationFailed(problems)

    @property
    def narrows(self) -> bool:
        """True when a filter beyond the defaults is set (category, brand or price)."""
        return any(
            v is not None for v in (self.category, self.brand, self.min_price, self.max_price)
        )

    def item_mask(self, table: ItemTable) -> np.ndarray:
        """(n_items,) bool: the items these filters (and the catalogue's availability) allow."""
        mask = table.in_stock() if self.in_stock else table.available.copy()
        if self.category:
            mask &= table.category_mask(self.category)
        if self.brand:
            code = table.brand_code(self.brand)
            mask &= table.brand == code if code >= 0 else False
        if self.min_price is not None:
            mask &= np.nan_to_num(table.price, nan=-np.inf) >= self.min_price
        if self.max_price is not None:
            mask &= np.nan_to_num(table.price, nan=np.inf) <= self.max_price
        if self.exclude:
            idx = table.ids.to_index(self.exclude, missing=-1)
            mask[idx[idx >= 0]] = False
        return mask


def allowed(
    items: np.ndarray, table: ItemTable, filters: Filters, blocked: np.ndarray | None = None
) -> np.ndarray:
    """(C,) bool for candidate ``items``: passes ``filters`` and is not in ``blocked``."""
    items = np.asarray(items, dtype=np.int64)
    ok = table.available[items]  # the candidates' rows only, not the whole catalogue
    if filters.in_stock:
        ok &= table.stock[items] != 0
    if filters.category:
        ok &= table.category_mask(filters.category)[items]
    if filters.brand:
        ok &= table.brand[items] == table.brand_code(filters.brand)
    if filters.min_price is not None:
        ok &= np.nan_to_num(table.price[items], nan=-np.inf) >= filters.min_price
    if filters.max_price is not None:
        ok &= np.nan_to_num(table.price[items], nan=np.inf) <= filters.max_price
    if filters.exclude:
        idx = table.ids.to_index(filters.exclude, missing=-1)
        ok &= ~np.isin(items, idx[idx >= 0])
    if blocked is not None and len(blocked):
        blocked = np.asarray(blocked, dtype=np.int64)
        n = len(table.available)
        if n <= MASK_ITEMS:  # a catalogue-sized mask: a few array calls
            if blocked.min() < 0 or blocked.max() >= n:  # no candidate is outside the catalogue
                blocked = blocked[(blocked >= 0) & (blocked < n)]
            hide = np.zeros(n, dtype=bool)
            hide[blocked] = True
            ok &= ~hide[items]
        else:  # a set of the few blocked items, read per candidate (no catalogue-sized array)
            out = set(blocked.tolist())
            ok &= np.fromiter((i not in out for i in items.tolist()), dtype=bool, count=len(items))
    return ok


# catalogues up to this size hide blocked items with a mask of the catalogue (about 1 µs at
# 12,000 items, 7 µs at a million); beyond it a set read per candidate costs less (about 14 µs)
MASK_ITEMS = 1_000_000


def diversify(ranked: np.ndarray, table: ItemTable, n: int, max_share: float = 0.5) -> np.ndarray:
    """The first ``n`` of ``ranked``, at most ``ceil(max_share * n)`` per leaf category and brand.

    Walks the ranking in order and defers an item whose category or brand is at its cap; when too
    few items pass, the deferred ones fill the remaining places in their original order. Items with
    no category or brand are never capped on it. ``max_share >= 1`` keeps the order as it is.
    """
    ranked = np.asarray(ranked, dtype=np.int64)
    return ranked[diversify_positions(ranked, table, n, max_share)]


def diversify_positions(
    ranked: np.ndarray, table: ItemTable, n: int, max_share: float = 0.5
) -> np.ndarray:
    """Positions in ``ranked`` of what :func:`diversify` returns, in its order.

    >>> from shopflow.store.idmap import IdMap
    >>> t = ItemTable.build(IdMap(list("abc")), paths=[["X"], ["X"], ["Y"]])
    >>> diversify_positions(np.array([1, 0, 2]), t, n=2, max_share=0.5).tolist()
    [0, 2]
    """
    if max_share >= 1.0 or n <= 0:
        return np.arange(min(max(n, 0), len(ranked)), dtype=np.int64)
    cap = max(1, math.ceil(max_share * n))
    taken: list[int] = []
    deferred: list[int] = []
    per_leaf: dict[int, int] = {}
    per_brand: dict[int, int] = {}
    # Python lists once: per-element numpy reads cost more than this whole loop
    leaves, brands = table.leaf[ranked].tolist(), table.brand[ranked].tolist()
    for pos, (leaf, brand) in enumerate(zip(leaves, brands, strict=True)):
        if (leaf >= 0 and per_leaf.get(leaf, 0) >= cap) or (
            brand >= 0 and per_brand.get(brand, 0) >= cap
        ):
            deferred.append(pos)
            continue
        taken.append(pos)
        if leaf >= 0:
            per_leaf[leaf] = per_leaf.get(leaf, 0) + 1
        if brand >= 0:
            per_brand[brand] = per_brand.get(brand, 0) + 1
        if len(taken) == n:
            break
    if len(taken) < n:
        taken += deferred[: n - len(taken)]
    return np.asarray(taken, dtype=np.int64)
