"""Query understanding: price bounds, brand, category, attributes and free text from a search query.

The vocabulary comes from the catalogue (:meth:`QueryVocabulary.from_items`): known brands,
category names (every level of every category path) and attribute values such as colours and
sizes. Phrases are matched longest first, exactly (case, hyphens and plurals ignored) and then
with a bounded edit distance (rapidfuzz), so that "addidas" finds "Adidas" but "bike" never becomes
"Nike": a token of four letters or fewer must match exactly, and a token that is an ordinary word
of the catalogue is never corrected.

Example
-------
>>> vocab = QueryVocabulary(brands=["Adidas"], categories=["Shoes"], attributes={"color": ["red"]})
>>> q = parse_query("red addidas running shoes under $50", vocab)
>>> (q.brand, q.category, q.attributes, q.max_price, q.text)
('Adidas', 'Shoes', {'color': 'red'}, 50.0, 'running')
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from rapidfuzz import process
from rapidfuzz.distance import Levenshtein

from shopflow.ingest.schema import Item

# Attribute keys read from item attributes by default, with their spelling variants.
ATTRIBUTE_ALIASES: dict[str, str] = {"color": "color", "colour": "color", "size": "size"}
LETTER_SIZES = frozenset({"xxs", "xs", "xl", "xxl", "xxxl", "2xl", "3xl", "4xl"})
# Words that glue a query together but say nothing about the product.
FILLER_WORDS = frozenset(
    {"a", "an", "the", "for", "in", "with", "and", "of", "on", "size", "price", "priced", "by"}
)

_NUM = r"(\d+(?:[.,]\d{1,2})?)"
_CUR = r"(?:[$€£]\s*)?"
_UNIT = r"(?:\s*(?:\$|€|£|usd|eur|gbp|dollars?|euros?|bucks))?"
_END = r"(?![\w/-]|[.,]\d)"  # "2-3/4 in." and "12-gauge" are not prices
_RANGE = re.compile(
    rf"(?:between\s+|from\s+)?(?<![\w/.]){_CUR}{_NUM}{_UNIT}\s*(?:-|–|—|to|and)\s*{_CUR}{_NUM}{_UNIT}{_END}"
)
_MAX = re.compile(
    rf"\b(?:under|below|less\s+than|cheaper\s+than|up\s+to|at\s+most|max(?:imum)?)\s*{_CUR}{_NUM}{_UNIT}{_END}"
)
_MIN = re.compile(
    rf"\b(?:over|above|more\s+than|from|at\s+least|min(?:imum)?|starting\s+at)\s*{_CUR}{_NUM}{_UNIT}{_END}"
)
_SIZE = re.compile(r"\bsize\s+([a-z0-9][a-z0-9.½/]*)")
_TOKEN = re.compile(r"[\w][\w'&.+]*(?:-[\w'&.+]+)*")


def normalise_token(token: str) -> str:
    """A matching key: lower case, no hyphens or apostrophes, English plural and -y/-ie folded.

    >>> [normalise_token(t) for t in ["Shoes", "T-Shirts", "dresses", "Batteries", "battery"]]
    ['shoe', 'tshirt', 'dress', 'batteri', 'batteri']
    """
    t = token.lower().replace("-", "").replace("'", "").rstrip(".")
    if len(t) > 4 and t.endswith("ies"):
        t = t[:-3] + "i"
    elif len(t) > 4 and t.endswith(("sses", "shes", "ches", "xes")):
        t = t[:-2]
    elif len(t) > 3 and t.endswith("s") and not t.endswith(("ss", "us", "is")):
        t = t[:-1]
    if len(t) > 2 and t.endswith("ie"):  # hoodie, hoodies -> hoodi
        t = t[:-1]
    elif len(t) > 2 and t.endswith("y") and t[-2] not in "aeiou":  # battery, batteries -> batteri
        t = t[:-1] + "i"
    return t


def tokenize(text: str) -> list[str]:
    """Split text into word tokens (hyphenated words such as "t-shirt" stay one token)."""
    return _TOKEN.findall(text.lower())


def _key(phrase: str) -> str:
    return " ".join(normalise_token(t) for t in tokenize(phrase))


def max_edits(length: int) -> int:
    """Edits tolerated for a phrase of ``length`` characters: 0 up to 4, 1 up to 8, else 2."""
    return 0 if length <= 4 else 1 if length <= 8 else 2


@dataclass
class QueryVocabulary:
    """What the catalogue knows: brands, category names, attribute values and ordinary words.

    Parameters
    ----------
    brands, categories:
        Canonical names as the catalogue writes them ("New Balance", "T-Shirts").
    attributes:
        Attribute name to its known values, e.g. ``{"color": ["red", "navy blue"]}``.
    words:
        Ordinary words of the catalogue (titles, descriptions); these are never spelling-corrected.
    """

    brands: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    attributes: dict[str, list[str]] = field(default_factory=dict)
    words: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        # Normalised phrase -> (kind, canonical value); kind is "brand", "category" or "attr:NAME".
        self._phrases: dict[str, tuple[str, str]] = {}
        for kind, values in (
            *((f"attr:{name}", vals) for name, vals in self.attributes.items()),
            ("category", self.categories),
            ("brand", self.brands),  # last, so a brand wins a clash of names
        ):
            for value in values:
                key = _key(str(value))
                if key:
                    self._phrases[key] = (kind, str(value))
        # Phrases long enough to be spelling-corrected, by number of tokens.
        self._fuzzy: dict[int, list[str]] = {}
        for key in self._phrases:
            if max_edits(len(key)) > 0:
                self._fuzzy.setdefault(len(key.split()), []).append(key)
        self._words = {normalise_token(w) for w in self.words}
        self.max_phrase_tokens = max((len(k.split()) for k in self._phrases), default=1)

    @classmethod
    def from_items(
        cls, items: Iterable[Item], attribute_keys: Mapping[str, str] = ATTRIBUTE_ALIASES
    ) -> QueryVocabulary:
        """Collect brands, category path names, attribute values and title words from items.

        ``attribute_keys`` maps an item attribute key (any spelling) to the attribute name used in
        :attr:`ParsedQuery.attributes`.
        """
        brands: dict[str, None] = {}
        categories: dict[str, None] = {}
        attrs: dict[str, dict[str, None]] = {}
        words: set[str] = set()
        for item in items:
            if item.brand:
                brands.setdefault(item.brand, None)
            for name in item.categories:
                categories.setdefault(name, None)
            for key, value in item.attributes.items():
                attr = attribute_keys.get(key.lower())
                if attr is None:
                    continue
                for v in value if isinstance(value, list) else [value]:
                    if isinstance(v, str) and v.strip():
                        attrs.setdefault(attr, {}).setdefault(v.strip(), None)
            words.update(tokenize(f"{item.title} {item.description}"))
        return cls(
            brands=list(brands),
            categories=list(categories),
            attributes={k: list(v) for k, v in attrs.items()},
            words=words,
        )

    def lookup(self, tokens: list[str]) -> tuple[str, str, int] | None:
        """Match a run of normalised tokens: ``(kind, canonical value, edits)`` or None."""
        key = " ".join(tokens)
        hit = self._phrases.get(key)
        if hit is not None:
            return (*hit, 0)
        if len(tokens) == 1 and tokens[0] in self._words:
            return None  # an ordinary word is never "corrected" into a brand
        budget = max_edits(len(key))
        if budget == 0:
            return None
        found = process.extractOne(
            key, self._fuzzy.get(len(tokens), []), scorer=Levenshtein.distance, score_cutoff=budget
        )
        if found is None:
            return None
        return (*self._phrases[found[0]], int(found[1]))


@dataclass
class ParsedQuery:
    """What a query asks for. ``text`` is what is left once everything recognised is taken out."""

    raw: str
    text: str = ""
    min_price: float | None = None
    max_price: float | None = None
    brand: str | None = None
    category: str | None = None
    attributes: dict[str, str] = field(default_factory=dict)
    corrections: list[tuple[str, str]] = field(default_factory=list)

    @property
    def search_text(self) -> str:
        """Text for retrieval: free text, category and attributes (price and brand are filters)."""
        parts = [self.text, self.category or "", *self.attributes.values()]
        return " ".join(p for p in parts if p).strip()


def _number(text: str) -> float:
    return float(text.replace(",", "."))


def _take(pattern: re.Pattern[str], text: str) -> tuple[re.Match[str] | None, str]:
    match = pattern.search(text)
    if match is None:
        return None, text
    return match, f"{text[: match.start()]} {text[match.end() :]}"


def parse_query(text: str, vocab: QueryVocabulary) -> ParsedQuery:
    """Parse a shopper's query against the catalogue's vocabulary.

    Parameters
    ----------
    text:
        The query as typed.
    vocab:
        Brands, categories and attribute values known to the catalogue.

    Returns
    -------
    ParsedQuery
        Price bounds, brand, category, attributes (``{"color": "red", "size": "XL"}``), the
        remaining free text and the spelling corrections made (``[("addidas", "Adidas")]``).
    """
    out = ParsedQuery(raw=text)
    rest = f" {text.lower()} "
    match, rest = _take(_SIZE, rest)
    if match is not None:
        out.attributes["size"] = _canonical_size(match.group(1), vocab)
    match, rest = _take(_RANGE, rest)
    if match is not None:
        low, high = sorted((_number(match.group(1)), _number(match.group(2))))
        out.min_price, out.max_price = low, high
    else:
        match, rest = _take(_MAX, rest)
        if match is not None:
            out.max_price = _number(match.group(1))
        match, rest = _take(_MIN, rest)
        if match is not None:
            out.min_price = _number(match.group(1))

    tokens = tokenize(rest)
    keys = [normalise_token(t) for t in tokens]
    # Segments in query order: (kind or None for free text, canonical value, words as typed, edits).
    segments: list[tuple[str | None, str, str, int]] = []
    i = 0
    while i < len(tokens):
        hit = _longest_match(keys, i, vocab)
        if hit is None:
            kind = "attr:size" if keys[i] in LETTER_SIZES else None
            segments.append((kind, tokens[i].upper() if kind else tokens[i], tokens[i], 0))
            i += 1
            continue
        n, kind, value, edits = hit
        segments.append((kind, value, " ".join(tokens[i : i + n]), edits))
        i += n
    # The first brand and the first value of each attribute count; of several categories the last
    # one does ("running shoes" is a kind of shoe); everything else stays free text.
    last_category = max((j for j, seg in enumerate(segments) if seg[0] == "category"), default=-1)
    free: list[str] = []
    for j, (kind, value, typed, edits) in enumerate(segments):
        if kind == "brand" and out.brand is None:
            out.brand = value
        elif kind == "category" and j == last_category:
            out.category = value
        elif kind is not None and kind.startswith("attr:") and kind[5:] not in out.attributes:
            out.attributes[kind[5:]] = value
        else:
            if typed not in FILLER_WORDS:
                free.append(typed)
            continue
        if edits:
            out.corrections.append((typed, value))
    out.text = " ".join(free)
    return out


def _longest_match(
    keys: list[str], start: int, vocab: QueryVocabulary
) -> tuple[int, str, str, int] | None:
    longest = min(vocab.max_phrase_tokens, len(keys) - start)
    for n in range(longest, 0, -1):
        found = vocab.lookup(keys[start : start + n])
        if found is not None:
            return (n, *found)
    return None


def _canonical_size(raw: str, vocab: QueryVocabulary) -> str:
    for value in vocab.attributes.get("size", []):
        if str(value).lower() == raw.lower():
            return str(value)
    return raw.upper() if raw.isalpha() else raw
