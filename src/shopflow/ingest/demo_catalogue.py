"""The demo shop's catalogue: items with readable titles, log-normal prices, stock, new arrivals,
and item-level complement links (this phone's cases) that the behaviour simulation buys together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from shopflow.ingest.demo_words import BRANDS, CATEGORY_TREE, COMPLEMENTS, TIER_PRICE, Subcategory
from shopflow.ingest.schema import Item

TIER_NAMES = ("budget", "mid-range", "premium")
COMPLEMENTS_PER_ANCHOR = 3
COMPLEMENT_WEIGHTS = np.array([0.8, 0.15, 0.05])
# Flat views of the tree: (top category, subcategory) and (top category, brand, tier).
SUBCATS: list[tuple[str, Subcategory]] = [
    (top, s) for top, subs in CATEGORY_TREE.items() for s in subs
]
TOPS: list[str] = list(CATEGORY_TREE)
SUB_INDEX: dict[str, int] = {s.name: i for i, (_, s) in enumerate(SUBCATS)}


@dataclass
class Link:
    """A complement rule of one anchor item: buy one with ``prob``, picked among ``items``."""

    prob: float
    items: np.ndarray  # (k,) item indices in the complement subcategory
    weights: np.ndarray  # (k,) summing to 1


@dataclass
class Catalogue:
    """Items and the per-item arrays the behaviour simulation samples from (index = position)."""

    items: list[Item]
    sub: np.ndarray  # (N,) subcategory index into SUBCATS
    top: np.ndarray  # (N,) top-category index into TOPS
    brand: list[str]
    price: np.ndarray  # (N,)
    rel_price: np.ndarray  # (N,) price / median price of its subcategory
    popularity: np.ndarray  # (N,) latent appeal, > 0
    quality: np.ndarray  # (N,) in (0, 1), drives ratings
    created: np.ndarray  # (N,) unix seconds
    in_stock: np.ndarray  # (N,) bool
    adjective: list[str]
    material: list[str]
    words: list[frozenset[str]]  # lower-case title words, for search queries
    brand_names: list[str] = field(default_factory=list)  # sorted
    brand_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))  # (N,) into it
    # Item indices of each subcategory, oldest first, and their creation times.
    by_sub: list[np.ndarray] = field(default_factory=list)
    sub_created: list[np.ndarray] = field(default_factory=list)
    sub_words: list[dict[str, np.ndarray]] = field(default_factory=list)  # word -> (n_sub,) bool
    links: dict[int, list[Link]] = field(default_factory=dict)  # anchor index -> complement rules

    def complement_pairs(self) -> list[tuple[str, str]]:
        """Ground truth ``(anchor item id, complement item id)`` pairs."""
        ids = [it.item_id for it in self.items]
        return [
            (ids[a], ids[int(c)]) for a, rules in self.links.items() for r in rules for c in r.items
        ]


def _price(rng: np.random.Generator, median: float, tier: int) -> float:
    raw = median * TIER_PRICE[tier] * float(rng.lognormal(0.0, 0.35))
    return float(np.floor(raw)) + 0.99 if raw >= 5 else round(raw, 2)


def _split_count(total: int, shares: np.ndarray) -> np.ndarray:
    """Integers proportional to ``shares`` summing exactly to ``total`` (largest remainders)."""
    raw = shares * total
    counts = np.floor(raw).astype(int)
    counts[np.argsort(counts - raw, kind="stable")[: total - counts.sum()]] += 1
    return counts


def _lower(text: str) -> str:
    """Lower-case the words of ``text`` but units and acronyms ("64 GB", "4K", "Vitamin C")."""
    keep = re.compile(r"\d+[A-Z]+|[A-Z]|.*[A-Z].*[A-Z].*")
    return " ".join(w if keep.fullmatch(w) else w.lower() for w in text.split())


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


def build_catalogue(
    rng: np.random.Generator,
    n_items: int,
    start: datetime,
    end: datetime,
    new_share: float,
    out_of_stock_share: float,
    id_prefix: str = "i",
) -> Catalogue:
    """Draw ``n_items`` items; ``new_share`` of them arrive during ``[start, end)``.

    Parameters
    ----------
    rng : numpy.random.Generator
        The shop's seeded generator; the only source of randomness.
    n_items : int
        Catalogue size; at least 3 items per subcategory (93) are made whatever the value.
    start, end : datetime
        The simulated period; older items were created up to two years before ``start``.
    new_share, out_of_stock_share : float
        Shares of new arrivals and of items with zero stock.
    id_prefix : str
        Item ids are ``f"{id_prefix}{n:05d}"``.
    """
    n_sub = len(SUBCATS)
    shares = rng.dirichlet(np.full(n_sub, 20.0))
    counts = _split_count(max(0, n_items - 3 * n_sub), shares) + 3  # at least 3 per subcategory
    rows: list[dict] = []
    seen_titles: set[str] = set()
    for s_idx, ((top, sub), count) in enumerate(zip(SUBCATS, counts, strict=True)):
        brands = BRANDS[top]
        brand_pop = rng.dirichlet(np.full(len(brands), 2.0))
        for _ in range(int(count)):
            name, tier = brands[int(rng.choice(len(brands), p=brand_pop))]
            adj, mat, noun = (
                _pick(rng, sub.adjectives),
                _pick(rng, sub.materials),
                _pick(rng, sub.nouns),
            )
            title = f"{name} {adj} {mat} {noun}"
            if title in seen_titles:
                title = f"{title} {name[0]}{int(rng.integers(2, 99))}"
            seen_titles.add(title)
            f1, f2 = rng.choice(len(sub.features), size=2, replace=False)
            article = "An" if adj[0] in "AEIOU" else "A"
            description = (
                f"{article} {_lower(adj)} {_lower(mat)} {_lower(noun)} from {name} with "
                f"{sub.features[f1]} and {sub.features[f2]}. Made for {sub.use}."
            )
            rows.append(
                {
                    "sub": s_idx,
                    "top": TOPS.index(top),
                    "brand": name,
                    "tier": tier,
                    "title": title,
                    "description": description,
                    "material": mat,
                    "adj": adj,
                    "price": _price(rng, sub.median_price, tier),
                }
            )
    n = len(rows)
    order = rng.permutation(n)  # ids carry no hint of the category
    rows = [rows[i] for i in order]
    period = (end - start).total_seconds()
    is_new = rng.random(n) < new_share
    # New arrivals land in the first 90% of the period so that they get some traffic.
    created = np.where(
        is_new,
        start.timestamp() + rng.random(n) * 0.9 * period,
        start.timestamp() - rng.random(n) * 730 * 86_400.0 - 3_600.0,
    ).round()
    quality = rng.beta(4.0, 1.6, size=n)
    popularity = rng.lognormal(0.0, 1.1, size=n) * (0.5 + quality)
    out_of_stock = rng.random(n) < out_of_stock_share
    stock = np.where(
        out_of_stock, 0, np.minimum(500, rng.lognormal(3.0, 1.0, size=n).astype(int) + 1)
    )
    items: list[Item] = []
    for k, r in enumerate(rows):
        top, sub = SUBCATS[r["sub"]]
        items.append(
            Item(
                item_id=f"{id_prefix}{k:05d}",
                title=r["title"],
                description=r["description"],
                brand=r["brand"],
                categories=[top, sub.name],
                price=r["price"],
                currency="USD",
                stock=int(stock[k]),
                created_at=datetime.fromtimestamp(created[k], tz=UTC),
                attributes={"material": r["material"], "tier": TIER_NAMES[r["tier"]]},
            )
        )
    sub_idx = np.array([r["sub"] for r in rows])
    price = np.array([r["price"] for r in rows])
    medians = np.array([SUBCATS[s][1].median_price for s in sub_idx])
    cat = Catalogue(
        items=items,
        sub=sub_idx,
        top=np.array([r["top"] for r in rows]),
        brand=[r["brand"] for r in rows],
        price=price,
        rel_price=price / medians,
        popularity=popularity,
        quality=quality,
        created=created,
        in_stock=~out_of_stock,
        adjective=[r["adj"] for r in rows],
        material=[r["material"] for r in rows],
        words=[frozenset(r["title"].lower().split()) for r in rows],
    )
    cat.brand_names = sorted(set(cat.brand))
    cat.brand_idx = np.array([cat.brand_names.index(b) for b in cat.brand])
    for s in range(n_sub):
        members = np.flatnonzero(sub_idx == s)
        members = members[np.argsort(created[members], kind="stable")]
        cat.by_sub.append(members)
        cat.sub_created.append(created[members])
        masks: dict[str, np.ndarray] = {}
        for pos, i in enumerate(members):
            for word in cat.words[i]:
                masks.setdefault(word, np.zeros(len(members), dtype=bool))[pos] = True
        cat.sub_words.append(masks)
    _link_complements(rng, cat)
    return cat


def _link_complements(rng: np.random.Generator, cat: Catalogue) -> None:
    """Give every anchor item a few specific complements: same brand likelier (compatibility)."""
    for anchor_sub, comp_sub, prob in COMPLEMENTS:
        for a in cat.by_sub[SUB_INDEX[anchor_sub]]:
            comps = cat.by_sub[SUB_INDEX[comp_sub]]
            comps = comps[comps != a]
            k = min(COMPLEMENTS_PER_ANCHOR, len(comps))
            same_brand = np.array([cat.brand[c] == cat.brand[a] for c in comps])
            w = cat.popularity[comps] * np.where(same_brand, 3.0, 1.0)
            chosen = rng.choice(comps, size=k, replace=False, p=w / w.sum())
            weights = COMPLEMENT_WEIGHTS[:k] / COMPLEMENT_WEIGHTS[:k].sum()
            cat.links.setdefault(int(a), []).append(Link(prob, chosen, weights))
