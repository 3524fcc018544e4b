"""The catalogue as the request path sees it: per-item arrays by dense index, no database query.

:class:`ItemTable` holds, for every item a model bundle knows, its id, title, brand, category path,
price, stock, creation time and whether it is still in the catalogue. Filters, diversity rules and
explanations read these arrays; price and stock are *live* (updated in place when the catalogue
changes through the API, and refreshed from the database in the background), everything else is
fixed for the life of one bundle.

Example
-------
>>> from shopflow.ingest.schema import Item
>>> t = ItemTable.from_items([Item(item_id="a", brand="Acme", categories=["Tea", "Green"], price=3),
...                           Item(item_id="b", categories=["Tea"], stock=0)])
>>> t.category_mask("tea").tolist(), t.category_mask("green").tolist(), t.in_stock().tolist()
([True, True], [True, False], [True, False])
>>> t.leaf_name(0), t.brand_name(0), t.brand_name(1)
('Green', 'Acme', None)
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from shopflow.ingest.schema import Item
from shopflow.store.idmap import IdMap

NO_STOCK_TRACKING = -1  # stock value of items whose stock is not tracked (always available)


def _codes(values: Sequence[str | None]) -> tuple[np.ndarray, list[str]]:
    """Integer codes of ``values`` (-1 for None or empty) and the names in code order."""
    names: dict[str, int] = {}
    out = np.full(len(values), -1, dtype=np.int32)
    for i, v in enumerate(values):
        if v:
            out[i] = names.setdefault(v, len(names))
    return out, list(names)


@dataclass
class ItemTable:
    """Per-item arrays aligned with ``ids`` (dense index ``i`` is ``ids.external_ids[i]``)."""

    ids: IdMap
    titles: list[str]
    paths: list[tuple[str, ...]]  # category path, root first
    brand: np.ndarray  # int32 code, -1 unknown
    brand_names: list[str]
    leaf: np.ndarray  # int32 code of the last category of the path, -1 none
    top: np.ndarray  # int32 code of the first category of the path, -1 none
    category_names: list[str]  # names of every category level (leaf and top codes index it)
    price: np.ndarray  # float64, NaN unknown (live)
    stock: np.ndarray  # int64, NO_STOCK_TRACKING when untracked (live)
    available: np.ndarray  # bool: may be shown (live; False once deleted from the catalogue)
    created_at: np.ndarray  # float64 unix seconds, NaN unknown
    tracked: np.ndarray  # bool: the catalogue holds the item (untracked items are always shown)
    _masks: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @functools.cached_property
    def has_leaves(self) -> bool:
        """Whether any item has a category (``leaf`` is fixed once the table is built)."""
        return bool((self.leaf >= 0).any())

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        ids: IdMap,
        titles: Sequence[str | None] | None = None,
        paths: Sequence[Sequence[str] | None] | None = None,
        brands: Sequence[str | None] | None = None,
        price: Sequence[float | None] | np.ndarray | None = None,
        stock: Sequence[int | None] | np.ndarray | None = None,
        created_at: Sequence[float | None] | np.ndarray | None = None,
    ) -> ItemTable:
        """A table from plain per-item sequences (any may be None: unknown for every item)."""
        n = len(ids)
        path_list = [tuple(p or ()) for p in (paths or [()] * n)]
        brand_codes, brand_names = _codes(list(brands or [None] * n))
        vocab: dict[str, int] = {}
        leaf = np.full(n, -1, dtype=np.int32)
        top = np.full(n, -1, dtype=np.int32)
        for i, p in enumerate(path_list):
            if p:
                leaf[i] = vocab.setdefault(p[-1], len(vocab))
                top[i] = vocab.setdefault(p[0], len(vocab))
        return cls(
            ids=ids,
            titles=[t or "" for t in (titles or [""] * n)],
            paths=path_list,
            brand=brand_codes,
            brand_names=brand_names,
            leaf=leaf,
            top=top,
            category_names=list(vocab),
            price=_floats(price, n),
            stock=_stock(stock, n),
            available=np.ones(n, dtype=bool),
            created_at=_floats(created_at, n),
            tracked=np.ones(n, dtype=bool),
        )

    @classmethod
    def from_items(cls, items: Sequence[Item], ids: IdMap | None = None) -> ItemTable:
        """A table from catalogue records; with ``ids``, rows follow that map (absent: empty)."""
        ids = ids or IdMap([it.item_id for it in items])
        by_id = {it.item_id: it for it in items}
        rows = [by_id.get(e) for e in ids.external_ids]
        table = cls.build(
            ids,
            titles=[r.title if r else None for r in rows],
            paths=[list(r.categories) if r else None for r in rows],
            brands=[r.brand if r else None for r in rows],
            price=[r.price if r else None for r in rows],
            stock=[r.stock if r else None for r in rows],
            created_at=[r.created_at.timestamp() if r and r.created_at else None for r in rows],
        )
        table.available[:] = [r is not None for r in rows]
        return table

    def __len__(self) -> int:
        return len(self.ids)

    # -- live updates -----------------------------------------------------------------------------
    def set_live(
        self, item_id: str, price: float | None, stock: int | None, available: bool = True
    ) -> bool:
        """Record an item's current price, stock and presence; False when the table lacks it."""
        i = self.ids.get(item_id)
        if i < 0:
            return False
        self.price[i] = np.nan if price is None else float(price)
        self.stock[i] = NO_STOCK_TRACKING if stock is None else int(stock)
        self.available[i] = available
        return True

    def refresh_live(self, rows: Iterable[tuple[str, float | None, int | None]]) -> int:
        """Replace price and stock from ``(item_id, price, stock)`` rows of the whole catalogue.

        Tracked items of the table that ``rows`` does not name are marked unavailable (deleted);
        items the catalogue never held (known from events only) stay available. Returns how many
        items changed.
        """
        price = np.full(len(self), np.nan)
        stock = np.full(len(self), NO_STOCK_TRACKING, dtype=np.int64)
        seen = np.zeros(len(self), dtype=bool)
        for item_id, p, s in rows:
            i = self.ids.get(item_id)
            if i >= 0:
                price[i] = np.nan if p is None else p
                stock[i] = NO_STOCK_TRACKING if s is None else s
                seen[i] = True
        keep = ~self.tracked & ~seen  # known from events only: keep what the bundle says
        price[keep], stock[keep] = self.price[keep], self.stock[keep]
        seen |= ~self.tracked
        changed = (
            ~((price == self.price) | (np.isnan(price) & np.isnan(self.price)))
            | (stock != self.stock)
            | (seen != self.available)
        )
        self.price[:], self.stock[:], self.available[:] = price, stock, seen
        return int(changed.sum())

    # -- reading ----------------------------------------------------------------------------------
    def in_stock(self) -> np.ndarray:
        """Items that can be sold now: in the catalogue, and stock untracked or above zero."""
        return self.available & (self.stock != 0)

    def category_mask(self, name: str) -> np.ndarray:
        """Items with ``name`` at any level of their category path (case-insensitive); cached."""
        key = name.strip().lower()
        with self._lock:
            mask = self._masks.get(key)
        if mask is None:
            mask = np.fromiter(
                (any(c.lower() == key for c in p) for p in self.paths), bool, len(self)
            )
            with self._lock:
                self._masks[key] = mask
        return mask

    def brand_code(self, name: str) -> int:
        """Code of brand ``name`` (case-insensitive), -1 when no item has it."""
        key = name.strip().lower()
        for code, b in enumerate(self.brand_names):
            if b.lower() == key:
                return code
        return -1

    def brand_name(self, i: int) -> str | None:
        code = int(self.brand[i])
        return self.brand_names[code] if code >= 0 else None

    def leaf_name(self, i: int) -> str | None:
        code = int(self.leaf[i])
        return self.category_names[code] if code >= 0 else None

    def top_name(self, i: int) -> str | None:
        code = int(self.top[i])
        return self.category_names[code] if code >= 0 else None

    def labels(
        self, idx: np.ndarray
    ) -> tuple[list[str | None], list[str | None], list[str | None]]:
        """Title, brand and leaf category of each item of ``idx`` (None when missing): what an
        answer shows of an item beside its price, fixed for the table's life (the price is live)."""
        titles, brand_names, names = self.titles, self.brand_names, self.category_names
        return (
            [titles[i] or None for i in idx.tolist()],
            [brand_names[b] if b >= 0 else None for b in self.brand[idx].tolist()],
            [names[c] if c >= 0 else None for c in self.leaf[idx].tolist()],
        )


def _floats(values: Sequence[float | None] | np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, np.nan)
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _stock(values: Sequence[int | None] | np.ndarray | None, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, NO_STOCK_TRACKING, dtype=np.int64)
    out = np.full(n, NO_STOCK_TRACKING, dtype=np.int64)
    for i, v in enumerate(values):
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            out[i] = int(v)
    return out
