"""The assistant's plan and words: which constraints can be met, and the template reply.

:func:`plan` checks each hard constraint of the needs against the live catalogue (the item
table's masks, so a sold-out or deleted item does not count): a category with nothing in stock or a
brand absent from it is reported and dropped, a budget nothing meets is widened to the ``n``
nearest prices and reported with them. :func:`compose_reply` writes the offline reply from the
structured result; every sentence about an item comes from its catalogue data and its reason.

Example
-------
>>> import numpy as np
>>> from shopflow.retrieval.items import ItemTable
>>> from shopflow.store.idmap import IdMap
>>> t = ItemTable.build(IdMap(["a", "b"]), paths=[["Socks"], ["Socks"]], price=[5.99, 9.99])
>>> f, applied, unmet = plan(Needs(category="Socks", max_price=5.0), t, n=1)
>>> f.max_price, unmet[0].text
(5.99, 'nothing in Socks costs at most 5; the nearest start at 5.99, so these go up to 5.99')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from shopflow.ingest.schema import Item
from shopflow.ranking.rules import Filters
from shopflow.retrieval.items import ItemTable
from shopflow.text.assistant_needs import Needs, colour_spellings

SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}
RECIPIENT_NAMES = {"self": "you", "parents": "your parents"}  # else "your <recipient>"
# Occasion as a noun after "your father's"; PROPER ones stand alone, the others take "a".
OCCASION_NAMES = {
    "christmas": "Christmas",
    "valentines": "Valentine's Day",
    "mothers_day": "Mother's Day",
    "fathers_day": "Father's Day",
    "baby_shower": "baby shower",
    "new_job": "new job",
    "secret_santa": "Secret Santa",
    "thank_you": "thank-you",
    "new_year": "New Year",
    "hanukkah": "Hanukkah",
    "diwali": "Diwali",
    "eid": "Eid",
    "easter": "Easter",
    "thanksgiving": "Thanksgiving",
}  # else the occasion itself ("birthday")
PROPER = frozenset(v for v in OCCASION_NAMES.values() if v[0].isupper())


@dataclass
class Finding:
    """One constraint in the answer: its name, value and how it was applied or why it was not.

    ``nearest`` is set when a budget was widened: the bounds actually used.
    """

    name: str
    value: Any
    text: str
    nearest: dict[str, float | None] | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"name": self.name, "value": self.value, "text": self.text}
        if self.nearest is not None:
            out["nearest"] = self.nearest
        return out

    def amounts(self) -> list[float]:
        """Every number in the value and the nearest bounds (what a reply may quote)."""
        parts = [self.value, *(self.nearest or {}).values()]
        if isinstance(self.value, dict):
            parts += list(self.value.values())
        return [float(p) for p in parts if isinstance(p, int | float) and not isinstance(p, bool)]


def number(v: float) -> str:
    """``50`` for 50.0, ``49.99`` for 49.99."""
    return f"{v:g}" if float(v).is_integer() else f"{v:.2f}"


def money(v: float | None, currency: str | None) -> str:
    """``$42.99`` (known symbols) or ``42.99 CHF``; ``price unknown`` for None."""
    if v is None:
        return "price unknown"
    sym = SYMBOLS.get((currency or "").upper())
    return f"{sym}{v:.2f}" if sym else f"{v:.2f} {currency}".strip()


def budget_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"between {number(lo)} and {number(hi)}"
    if hi is not None:
        return f"at most {number(hi)}"
    return f"at least {number(lo or 0.0)}"


def plan(
    needs: Needs, table: ItemTable, n: int, inferred: str | None = None
) -> tuple[Filters, list[Finding], list[Finding]]:
    """The filters that can be met for ``needs``, what was applied and what was not.

    Parameters
    ----------
    needs:
        The needs so far (its ``category`` may be ``inferred`` from the keywords).
    table:
        The live item table (prices, stock, categories, brands).
    n:
        Picks wanted: a widened budget covers the ``n`` nearest prices.
    """
    applied: list[Finding] = []
    unmet: list[Finding] = []
    cat, brand = needs.category, needs.brand
    if cat is not None:
        if Filters(cat).item_mask(table).any():
            how = f"inferred from “{' '.join(needs.keywords)}”" if inferred else "filter"
            applied.append(Finding("category", cat, how))
        else:
            unmet.append(Finding("category", cat, f"nothing in {cat} is in stock"))
            cat = None
    if brand is not None:
        if Filters(cat, brand).item_mask(table).any():
            applied.append(Finding("brand", brand, "filter"))
        else:
            where = f" in {cat}" if cat else ""
            unmet.append(Finding("brand", brand, f"no {brand} item{where} is in stock"))
            brand = None
    lo, hi = needs.min_price, needs.max_price
    if lo is None and hi is None:
        return Filters(cat, brand), applied, unmet
    value = {"min_price": lo, "max_price": hi}
    if Filters(cat, brand, lo, hi).item_mask(table).any():
        applied.append(Finding("budget", value, budget_text(lo, hi)))
        return Filters(cat, brand, lo, hi), applied, unmet
    finding, lo, hi = _nearest_budget(table, Filters(cat, brand), lo, hi, n)
    unmet.append(finding)
    return Filters(cat, brand, lo, hi), applied, unmet


def _nearest_budget(
    table: ItemTable, base: Filters, lo: float | None, hi: float | None, n: int
) -> tuple[Finding, float | None, float | None]:
    """The bounds widened to the ``n`` prices nearest to ``[lo, hi]`` among what ``base`` allows."""
    value = {"min_price": lo, "max_price": hi}
    where = " in " + base.category if base.category else ""
    if base.brand:
        where = f" from {base.brand}{where}"
    prices = table.price[base.item_mask(table)]
    prices = prices[~np.isnan(prices)]
    if not len(prices):
        return Finding("budget", value, f"nothing{where} has a price"), None, None
    low, high = (0.0 if lo is None else lo), (np.inf if hi is None else hi)
    dist = np.where(prices < low, low - prices, np.where(prices > high, prices - high, 0.0))
    near = prices[np.argsort(dist, kind="stable")[:n]]  # (n,)
    new_lo = None if lo is None else round(min(lo, float(near.min())), 2)
    new_hi = None if hi is None else round(max(hi, float(near.max())), 2)
    said = f"nothing{where} costs {budget_text(lo, hi)}"
    if hi is not None and near.min() > hi:
        text = f"{said}; the nearest start at {number(float(near.min()))}"
        text += f", so these go up to {number(new_hi or 0.0)}"
    elif lo is not None and near.max() < lo:
        text = f"{said}; the dearest is {number(float(near.max()))}"
        text += f", so these start at {number(new_lo or 0.0)}"
    else:
        text = f"{said}; these are the nearest prices, {budget_text(new_lo, new_hi)}"
    nearest = {"min_price": new_lo, "max_price": new_hi}
    return Finding("budget", value, text, nearest), new_lo, new_hi


def attribute_matches(item: dict[str, Any], record: Item | None, key: str, value: str) -> bool:
    """Whether an item has attribute ``key`` = ``value``: the catalogue attribute when it has one,
    else the words of its title and description (colours in any spelling, "size 10")."""
    want = value.lower()
    if record is not None:
        for k, v in record.attributes.items():
            if k.lower() in (key, "colour" if key == "color" else key):
                vals = v if isinstance(v, list) else [v]
                return any(str(x).lower() == want for x in vals)
    text = " ".join(
        [item.get("title") or "", *((record.description,) if record is not None else ())]
    ).lower()
    if key == "color":
        return any(re.search(rf"\b{re.escape(s)}\b", text) for s in colour_spellings(want))
    return re.search(rf"\b{re.escape(key)}\s*{re.escape(want)}\b", text) is not None


def describe_pick(item: dict[str, Any], record: Item | None) -> dict[str, Any]:
    """The service's item with its currency and ``why``: one sentence from its catalogue data."""
    currency = record.currency if record is not None else None
    facts = ", ".join(
        x
        for x in (item.get("brand"), item.get("category"), money(item.get("price"), currency))
        if x
    )
    reason = item["reasons"][0]["text"] if item.get("reasons") else None
    why = f"{item.get('title') or item['item_id']} ({facts})"
    return {**item, "currency": currency, "why": f"{why}: {reason}." if reason else f"{why}."}


def compose_reply(needs: Needs, picks: list[dict[str, Any]], unmet: list[Finding]) -> str:
    """The offline reply: what the picks are for, one line per pick, what could not be met."""
    missed = {f.name for f in unmet} | {k for f in unmet if f.name == "attribute" for k in f.value}
    one = len(picks) == 1
    category = needs.category if "category" not in missed else None
    head = ("gift idea" if one else "gift ideas") if needs.gift else ("pick" if one else "picks")
    if category:
        head += f" in {category}"
    elif needs.keywords:
        head += f" for “{' '.join(needs.keywords)}”"
    head += _for_whom(needs.recipient, needs.occasion)
    extras = []
    if needs.brand and "brand" not in missed:
        extras.append(f"from {needs.brand}")
    if needs.attributes.get("color") and "color" not in missed:
        extras.append(f"in {needs.attributes['color']}")
    if needs.attributes.get("size") and "size" not in missed:
        extras.append(f"in size {needs.attributes['size']}")
    if (needs.min_price is not None or needs.max_price is not None) and "budget" not in missed:
        extras.append(budget_text(needs.min_price, needs.max_price))
    head = ", ".join([head, *extras])
    notes = [f"Note: {f.text}." for f in unmet]
    if not picks:
        return " ".join([f"I found no {head}.", *notes, "Try a wider budget or another category."])
    lines = [f"Here {'is' if one else 'are'} {len(picks)} {head}:"]
    lines += [f"{i}. {p['why']}" for i, p in enumerate(picks, 1)]
    lines += notes
    if not (needs.category or needs.keywords or needs.brand or needs.attributes):
        lines.append(
            "Tell me what kind of product, who it is for or your budget to narrow it down."
        )
    return "\n".join(lines)


def _for_whom(recipient: str | None, occasion: str | None) -> str:
    """`` for your father's birthday``, `` for you``, `` for Christmas``, or nothing."""
    name = OCCASION_NAMES.get(occasion, occasion) if occasion else None
    if recipient is None:
        if name is None:
            return ""
        return f" for {name}" if name in PROPER else f" for a {name}"
    whom = RECIPIENT_NAMES.get(recipient, f"your {recipient}")
    if name is None:
        return f" for {whom}"
    owner = "your" if recipient == "self" else f"{whom}'" if whom.endswith("s") else f"{whom}'s"
    return f" for {owner} {name}"
