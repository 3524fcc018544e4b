"""What a shopper asks the assistant for: needs and constraints read from a conversation.

One user turn is read by :func:`read_turn`: gift occasions and recipients from the vocabularies
below, budget phrasings the search parser does not know ("no more than 40", "around 30"), then
:func:`shopflow.text.query.parse_query` for price bounds, brand, category and attributes against
the catalogue's vocabulary, colour names from :data:`COLOURS`, and what is left as keywords
(conversational words such as "I'm looking for" dropped). :func:`accumulate` folds the user turns
of a conversation, oldest first, into one :class:`Needs`: a later value replaces an earlier one
(a new budget replaces the old bound, "any brand" forgets the brand, "start over" forgets
everything), a new category starts the keywords afresh, and the rest adds up.

Everything here is deterministic: same conversation, same needs.

Example
-------
>>> from shopflow.text.query import QueryVocabulary
>>> vocab = QueryVocabulary(categories=["Sneakers"], brands=["Stride"])
>>> needs = accumulate(["a birthday gift for my dad", "grey sneakers under $50"], vocab)
>>> needs.recipient, needs.occasion, needs.category, needs.max_price, needs.attributes
('father', 'birthday', 'Sneakers', 50.0, {'color': 'grey'})
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from shopflow.text.query import QueryVocabulary, normalise_token, parse_query, tokenize


def _words(text: str) -> list[str]:
    return text.split()


# Typed word or phrase -> canonical recipient. Matched on word boundaries, longest first.
_RECIPIENT_WORDS: dict[str, str | None] = {
    **dict.fromkeys(["dad", "daddy", "father", "papa", "father in law", "stepdad"], "father"),
    **dict.fromkeys(["mom", "mum", "mommy", "mummy", "mother", "mama", "mother in law"], "mother"),
    **dict.fromkeys(["parents", "in laws", "in-laws"], "parents"),
    **dict.fromkeys(["husband", "hubby"], "husband"),
    "wife": "wife",
    **dict.fromkeys(["partner", "spouse"], "partner"),
    "boyfriend": "boyfriend",
    "girlfriend": "girlfriend",
    "son": "son",
    "daughter": "daughter",
    **dict.fromkeys(["kid", "kids", "child", "children", "toddler"], "child"),
    **dict.fromkeys(["teen", "teenager", "teens"], "teenager"),
    "baby": "baby",
    **dict.fromkeys(["grandpa", "grandfather", "granddad", "grandad"], "grandfather"),
    **dict.fromkeys(["grandma", "grandmother", "granny", "nana"], "grandmother"),
    **dict.fromkeys(["brother", "sister", "niece", "nephew", "uncle", "aunt", "cousin"], None),
    **dict.fromkeys(["friend", "best friend", "bff", "buddy"], "friend"),
    **dict.fromkeys(["colleague", "coworker", "co-worker", "boss"], "colleague"),
    "teacher": "teacher",
    **dict.fromkeys(["for me", "for myself", "myself"], "self"),
}
RECIPIENTS: dict[str, str] = {k: v or k for k, v in _RECIPIENT_WORDS.items()}  # None: itself
# Typed phrase -> canonical occasion (read before recipients: "father's day" is not a father).
_OCCASION_WORDS: dict[str, str | None] = {
    **dict.fromkeys(["birthday", "bday", "b-day", "birthday party"], "birthday"),
    **dict.fromkeys(["christmas", "xmas", "x-mas"], "christmas"),
    **dict.fromkeys(["anniversary", "wedding anniversary"], "anniversary"),
    "wedding": "wedding",
    **dict.fromkeys(["valentine", "valentines", "valentine's", "valentine's day"], "valentines"),
    **dict.fromkeys(["mother's day", "mothers day", "mother's-day"], "mothers_day"),
    **dict.fromkeys(["father's day", "fathers day", "father's-day"], "fathers_day"),
    **dict.fromkeys(["graduation", "graduating"], "graduation"),
    **dict.fromkeys(["housewarming", "house warming", "new home", "new flat"], "housewarming"),
    "baby shower": "baby_shower",
    **dict.fromkeys(["retirement", "retiring"], "retirement"),
    "new job": "new_job",
    "secret santa": "secret_santa",
    **dict.fromkeys(["thank you gift", "thank-you gift", "thank-you"], "thank_you"),
    **dict.fromkeys(["hanukkah", "chanukah"], "hanukkah"),
    **dict.fromkeys(["diwali", "eid", "easter", "thanksgiving"], None),
    **dict.fromkeys(["new year", "new year's"], "new_year"),
}
OCCASIONS: dict[str, str] = {k: v or k for k, v in _OCCASION_WORDS.items()}
# Colour words (spelling -> canonical) looked for when the catalogue has no colour attribute.
COLOURS: dict[str, str] = {
    **{c: c for c in _words("black white grey navy blue red green olive sand beige brown pink")},
    **{c: c for c in _words("purple yellow orange silver gold graphite cream teal burgundy khaki")},
    **{c: c for c in _words("charcoal tan ivory turquoise maroon lilac")},
    "gray": "grey",
}
COLOUR_SPELLINGS: dict[str, tuple[str, ...]] = {"grey": ("grey", "gray")}
GIFT_WORDS = frozenset({"gift", "gifts", "present", "presents", "surprise"})
# Words that carry the conversation, not the product.
CHAT_WORDS = frozenset(
    _words("""i i'm im i'd i'll i've me my mine we our us you your he he's him his she she's her
    hers they they're them their it it's its this that these those is are am be was were been do
    does did can could would will should shall want wants wanted need needs needed looking look find
    show get give buy buying purchase recommend suggest suggestion suggestions help please thanks
    thank hi hello hey something anything some any thing things stuff item items product products
    good nice great best like likes love loves enjoys enjoy really also too maybe perhaps actually
    instead just only what which who how about else other another one ones more less cheap cheaper
    affordable budget price under over below above around into so but or not no yes ok okay idea
    ideas gift gifts present presents what's there here now then let's lets go going got has have
    had ought might must very much many lot lots kind sort type prefer preferably ideally within
    spend spending cost costs costing pay paying dollars euros bucks""")
)
# Words the price parser reads ("under 50", "between 20 and 40"): never dropped before it runs.
PRICE_WORDS = frozenset(
    _words("under over below above less more than up to at most least from between and max min")
)

_NUM = r"[$€£]?\s*(\d+(?:[.,]\d{1,2})?)\s*(?:\$|€|£|usd|eur|gbp|dollars?|euros?|bucks)?"
_BUDGET_MAX = [
    re.compile(rf"\b(?:no|not)\s+more\s+than\s+{_NUM}"),
    re.compile(rf"{_NUM}\s+(?:or\s+less|or\s+under|or\s+below|max(?:imum)?|tops|at\s+most)\b"),
    re.compile(rf"\bbudget\s*(?:is|of|:)?\s*(?:about|around|roughly)?\s*{_NUM}"),
    re.compile(rf"\bspend\s+(?:up\s+to\s+|about\s+|around\s+)?{_NUM}"),
]
_BUDGET_MIN = [re.compile(rf"{_NUM}\s*(?:or\s+more|or\s+above|plus|\+)(?!\w)")]
_WORD = re.compile(r"[\w'][\w'-]*")
_AROUND = re.compile(rf"(?:\b(?:around|about|roughly|approximately|circa)\s*|~\s*){_NUM}")
AROUND_SHARE = 0.2  # "around 30" is 24..36
_RESETS: dict[str, re.Pattern[str]] = {
    "all": re.compile(
        r"\b(?:start\s+(?:over|again)|new\s+search|reset|forget\s+(?:it|that|everything))\b"
    ),
    "budget": re.compile(
        r"\b(?:any|no)\s+(?:price|budget)\b|\bprice\s+doesn'?t\s+matter\b|\bno\s+(?:price\s+)?limit\b"
    ),
    "brand": re.compile(r"\bany\s+brand\b|\bbrands?\s+(?:doesn'?t|don'?t)\s+matter\b"),
    "color": re.compile(r"\bany\s+colou?r\b"),
    "size": re.compile(r"\bany\s+size\b"),
}  # fmt: skip


@dataclass
class Needs:
    """Needs and constraints of one turn, or of a conversation so far.

    ``attributes`` maps an attribute name ("color", "size") to its value; ``keywords`` are the
    product words that matched nothing in the catalogue's vocabulary ("running", "waterproof").
    """

    category: str | None = None
    brand: str | None = None
    min_price: float | None = None
    max_price: float | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    recipient: str | None = None
    occasion: str | None = None
    gift: bool = False
    keywords: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def copy(self) -> Needs:
        return replace(self, attributes=dict(self.attributes), keywords=list(self.keywords))


@dataclass
class Turn:
    """What one message says: its needs, and what it asks to forget (``all``, ``budget``,
    ``brand``, ``color``, ``size``) before they apply."""

    needs: Needs
    resets: frozenset[str] = frozenset()


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    alts = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<![\w'])(" + "|".join(re.escape(p) for p in alts) + r")(?:'s)?(?![\w'])")


_OCCASION = _phrase_pattern(OCCASIONS)
_RECIPIENT = _phrase_pattern(RECIPIENTS)
_GIFT = _phrase_pattern(GIFT_WORDS)


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _cut(text: str, m: re.Match[str]) -> str:
    return f"{text[: m.start()]} {text[m.end() :]}"


def read_turn(text: str, vocab: QueryVocabulary) -> Turn:
    """Read one user message.

    Parameters
    ----------
    text:
        The message as typed.
    vocab:
        The catalogue's brands, categories and attribute values (``QueryVocabulary.from_items``).
    """
    rest = " " + text.lower().replace("’", "'") + " "
    resets = set()
    for name, pattern in _RESETS.items():
        m = pattern.search(rest)
        if m is not None:
            resets.add(name)
            rest = _cut(rest, m)
    out = Needs()
    m = _first(_OCCASION, rest, vocab)
    if m is not None:
        out.occasion, rest = OCCASIONS[m.group(1)], _cut_unless_catalogue(rest, m, vocab)
    m = _first(_RECIPIENT, rest, vocab)
    if m is not None:
        out.recipient, rest = RECIPIENTS[m.group(1)], _cut_unless_catalogue(rest, m, vocab)
    m = _first(_GIFT, rest, vocab)
    if m is not None:
        out.gift, rest = True, _cut_unless_catalogue(rest, m, vocab)
    out.gift = out.gift or out.occasion is not None or out.recipient not in (None, "self")
    rest = _drop_chat_words(_read_budget(rest, out), vocab)
    parsed = parse_query(rest, vocab)
    if out.min_price is None and out.max_price is None:
        out.min_price, out.max_price = parsed.min_price, parsed.max_price
    out.brand, out.category = parsed.brand, parsed.category
    out.attributes = dict(parsed.attributes)
    for word in tokenize(parsed.text):
        colour = COLOURS.get(word)
        if colour is not None and "color" not in out.attributes:
            out.attributes["color"] = colour
        elif colour is None and word not in CHAT_WORDS and not word.isdigit() and len(word) > 1:
            out.keywords.append(word)
    return Turn(out, frozenset(resets))


def _in_catalogue_phrase(rest: str, start: int, end: int, vocab: QueryVocabulary) -> bool:
    """True when the words at ``rest[start:end]`` are (part of) a brand, category or attribute
    value of the catalogue ("baby" in "baby shoes" when the shop has a "Baby Shoes" category)."""
    phrases = catalogue_phrases(vocab)
    longest = vocab.max_phrase_tokens
    before, inside = tokenize(rest[:start])[-longest:], tokenize(rest[start:end])
    keys = [normalise_token(t) for t in (*before, *inside, *tokenize(rest[end:])[:longest])]
    i0, i1 = len(before), len(before) + len(inside)
    return any(
        " ".join(keys[a:b]) in phrases
        for a in range(i0 + 1)
        for b in range(max(i1, a + 1), min(len(keys), a + longest) + 1)
    )


_PHRASES: dict[int, tuple[QueryVocabulary, frozenset[str]]] = {}
_PHRASES_KEPT = 4  # vocabularies (one per serving state) whose phrase sets are kept
_PHRASES_LOCK = threading.Lock()


def catalogue_phrases(vocab: QueryVocabulary) -> frozenset[str]:
    """The vocabulary's brands, categories and attribute values as matching keys (normalised
    words joined by spaces: "T-Shirts" → "tshirt"); computed once per vocabulary."""
    with _PHRASES_LOCK:
        hit = _PHRASES.get(id(vocab))
        if hit is not None and hit[0] is vocab:
            return hit[1]
    attrs = [v for values in vocab.attributes.values() for v in values]
    keys = frozenset(
        " ".join(normalise_token(t) for t in tokenize(str(v)))
        for v in (*vocab.brands, *vocab.categories, *attrs)
    )
    with _PHRASES_LOCK:
        while len(_PHRASES) >= _PHRASES_KEPT:
            _PHRASES.pop(next(iter(_PHRASES)))
        _PHRASES[id(vocab)] = (vocab, keys)  # the vocabulary is held, so its id stays its own
    return keys


def _first(pattern: re.Pattern[str], rest: str, vocab: QueryVocabulary) -> re.Match[str] | None:
    """The first match outside a catalogue phrase, else the first match ("sister" in "baby shoes
    for my sister", "baby" in "baby shoes")."""
    matches = list(pattern.finditer(rest))
    free = (m for m in matches if not _in_catalogue_phrase(rest, m.start(), m.end(), vocab))
    return next(free, matches[0] if matches else None)


def _cut_unless_catalogue(rest: str, m: re.Match[str], vocab: QueryVocabulary) -> str:
    return rest if _in_catalogue_phrase(rest, m.start(), m.end(), vocab) else _cut(rest, m)


def _drop_chat_words(rest: str, vocab: QueryVocabulary) -> str:
    """``rest`` without conversational words, so that none is misread as a brand ("please")."""
    out, last = [], 0
    for m in _WORD.finditer(rest):
        word = m.group(0)
        if (
            word in CHAT_WORDS
            and word not in PRICE_WORDS
            and not _in_catalogue_phrase(rest, m.start(), m.end(), vocab)
        ):
            out.append(rest[last : m.start()])
            last = m.end()
    out.append(rest[last:])
    return " ".join(out)


def _read_budget(rest: str, out: Needs) -> str:
    """Budget phrasings beyond the search parser's; sets ``out``'s bounds, returns the rest."""
    for pattern in _BUDGET_MAX:
        m = pattern.search(rest)
        if m is not None:
            out.max_price, rest = _number(m.group(1)), _cut(rest, m)
            break
    for pattern in _BUDGET_MIN:
        m = pattern.search(rest)
        if m is not None:
            out.min_price, rest = _number(m.group(1)), _cut(rest, m)
            break
    if out.min_price is None and out.max_price is None:
        m = _AROUND.search(rest)
        if m is not None:
            v = _number(m.group(1))
            out.min_price = round(v * (1 - AROUND_SHARE), 2)
            out.max_price = round(v * (1 + AROUND_SHARE), 2)
            rest = _cut(rest, m)
    return rest


def merge(before: Needs, turn: Turn) -> Needs:
    """``before`` with a later turn applied: later values replace earlier ones.

    A budget of the turn replaces the bound it names, and drops the other bound when the two
    would contradict; a range replaces both. A new category starts the keywords (and the size)
    afresh. Recipient, occasion, brand and attributes are replaced one by one.
    """
    out = Needs() if "all" in turn.resets else before.copy()
    if "budget" in turn.resets:
        out.min_price = out.max_price = None
    if "brand" in turn.resets:
        out.brand = None
    for key in ("color", "size"):
        if key in turn.resets:
            out.attributes.pop(key, None)
    new = turn.needs
    if new.category is not None and new.category != out.category:
        out.category, out.keywords = new.category, []
        out.attributes.pop("size", None)
    if new.min_price is not None and new.max_price is not None:
        out.min_price, out.max_price = new.min_price, new.max_price
    elif new.max_price is not None:
        out.max_price = new.max_price
        if out.min_price is not None and out.min_price > new.max_price:
            out.min_price = None
    elif new.min_price is not None:
        out.min_price = new.min_price
        if out.max_price is not None and out.max_price < new.min_price:
            out.max_price = None
    out.brand = new.brand or out.brand
    out.attributes.update(new.attributes)
    out.recipient = new.recipient or out.recipient
    out.occasion = new.occasion or out.occasion
    out.gift = out.gift or new.gift
    out.keywords += [w for w in new.keywords if w not in out.keywords]
    return out


def accumulate(messages: Iterable[str], vocab: QueryVocabulary) -> Needs:
    """The needs of a conversation: each user message, oldest first, merged into the last."""
    needs = Needs()
    for text in messages:
        needs = merge(needs, read_turn(text, vocab))
    return needs


def colour_spellings(value: str) -> tuple[str, ...]:
    """Every spelling of a colour an item text may use ("grey" → grey, gray)."""
    v = value.lower()
    return COLOUR_SPELLINGS.get(COLOURS.get(v, v), (v,))
