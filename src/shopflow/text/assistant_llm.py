"""The assistant's optional LLM: an OpenAI-compatible chat-completions endpoint, held to the facts.

Two calls, each answered in JSON: :func:`refine_needs` shows the LLM the conversation and the
needs read by the rules and takes back corrections that name real catalogue values (an unknown
category or brand is ignored); :func:`write_reply` gives it the structured result (the picks with
title, brand, category, price and reason, the constraints applied and those that could not be met)
and takes back the reply. :func:`check_reply` refuses a reply that names an item id or a catalogue
title that is not among the picks (or their reasons), that quotes a price no pick or budget has, or
that names no pick at all. Every failure (connection, timeout, HTTP status, invalid JSON, a refused
reply) raises :class:`LLMFailure` with the reason; the assistant then answers offline.

Example
-------
>>> chat = ChatEndpoint("http://127.0.0.1:8080/v1", "default", timeout=5.0)  # doctest: +SKIP
>>> write_reply(chat, {"task": "reply", "picks": [...]})                      # doctest: +SKIP
'The Stride Classic Grey Trainers ($44.99) fit your budget and ...'
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from shopflow.config import AssistantSettings
from shopflow.text.assistant_needs import OCCASIONS, RECIPIENTS, Needs
from shopflow.text.query import QueryVocabulary

MAX_REPLY_CHARS = 2_000
MAX_NAMES_SENT = 300  # category and brand names shown to the LLM (any known name is accepted)
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)
_ID_LIKE = re.compile(r"[\w][\w\-.:/#]*")
_AMOUNT = re.compile(r"[$€£]\s?(\d+(?:[.,]\d{1,2})?)|(?<![\w.,])(\d+[.,]\d{2})(?![\d])")
_WORDS = re.compile(r"\w+")

REFINE_PROMPT = (
    "You read a shopper's conversation with a shop assistant and correct the constraints a "
    "rule-based reader found. Answer with one JSON object and nothing else, with any of the keys "
    "category, brand, min_price, max_price, color, size, recipient, occasion, keywords. Use only "
    "category and brand names from the lists given; leave out a key you have no better value "
    "for. Prices are numbers; keywords is a list of product words."
)
REPLY_PROMPT = (
    "You are a shop assistant. Write a short, friendly reply (at most 5 sentences) to the "
    "shopper's last message that presents the picks given and explains why each one fits, using "
    "only the data given: title, brand, category, price and reason. Name items only by the titles "
    "given; never mention any other product, and never invent prices or facts. When a constraint "
    "could not be met, say so and what is offered instead. Answer with one JSON object and nothing "
    'else: {"reply": "..."}.'
)


class LLMFailure(Exception):
    """The LLM path failed; the message says why (the answer reports it as ``fallback_reason``)."""


@dataclass(frozen=True)
class ChatEndpoint:
    """An OpenAI-compatible ``POST <url>/chat/completions``, called with httpx."""

    url: str
    model: str
    api_key: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    max_tokens: int = 400

    @classmethod
    def from_settings(cls, s: AssistantSettings) -> ChatEndpoint | None:
        """The endpoint named by the settings, None when ``llm_url`` is unset."""
        if not s.llm_url:
            return None
        key = os.environ.get(s.llm_api_key_env) or None
        return cls(s.llm_url, s.llm_model, key, s.llm_timeout_seconds, s.llm_max_tokens)

    def complete(self, messages: Sequence[Mapping[str, str]]) -> str:
        """The content of the first choice; :class:`LLMFailure` on any failure."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body = {
            "model": self.model,
            "messages": list(messages),
            "temperature": 0,
            "max_tokens": self.max_tokens,
        }
        url = self.url.rstrip("/") + "/chat/completions"
        try:
            r = httpx.post(url, json=body, headers=headers, timeout=self.timeout)
        except httpx.TimeoutException as e:
            raise LLMFailure(f"timeout after {self.timeout:g} s ({type(e).__name__})") from e
        except httpx.HTTPError as e:
            raise LLMFailure(f"request failed: {type(e).__name__}: {e}") from e
        if r.status_code != 200:
            raise LLMFailure(f"HTTP {r.status_code}: {r.text[:200]}")
        try:
            content = r.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise LLMFailure("not a chat-completions answer (no choices[0].message.content)") from e
        if not isinstance(content, str):
            raise LLMFailure("choices[0].message.content is not text")
        return content

    def ask_json(self, system: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send ``payload`` as JSON after the ``system`` prompt; the JSON object answered."""
        messages = [
            {"role": "system", "content": system},
            {"role": "user", "content": json.dumps(payload, ensure_ascii=False)},
        ]
        content = self.complete(messages)
        m = _JSON_OBJECT.search(content)  # some models wrap the object in prose or a code fence
        try:
            out = json.loads(m.group(0) if m else content)
        except ValueError as e:
            raise LLMFailure(f"invalid JSON in the answer: {content[:120]!r}") from e
        if not isinstance(out, dict):
            raise LLMFailure("the answer is JSON but not an object")
        return out


def refine_needs(
    chat: ChatEndpoint,
    conversation: Sequence[Mapping[str, str]],
    message: str,
    needs: Needs,
    vocab: QueryVocabulary,
) -> Needs:
    """``needs`` with the LLM's corrections; only values the catalogue knows are taken."""
    payload = {
        "task": "constraints",
        "conversation": [dict(t) for t in conversation],
        "message": message,
        "found": needs.as_dict(),
        "categories": vocab.categories[:MAX_NAMES_SENT],
        "brands": vocab.brands[:MAX_NAMES_SENT],
        "recipients": sorted(set(RECIPIENTS.values())),
        "occasions": sorted(set(OCCASIONS.values())),
    }
    return apply_refinement(needs, chat.ask_json(REFINE_PROMPT, payload), vocab)


def apply_refinement(needs: Needs, answer: Mapping[str, Any], vocab: QueryVocabulary) -> Needs:
    """Take the valid values of an LLM answer over ``needs``; ignore the rest.

    >>> v = QueryVocabulary(categories=["Mugs"], brands=["Ostra"])
    >>> n = apply_refinement(Needs(), {"category": "mugs", "brand": "Acme", "max_price": "25"}, v)
    >>> n.category, n.brand, n.max_price
    ('Mugs', None, 25.0)
    """
    out = needs.copy()
    out.category = _known(answer.get("category"), vocab.categories) or out.category
    out.brand = _known(answer.get("brand"), vocab.brands) or out.brand
    lo, hi = _price(answer.get("min_price")), _price(answer.get("max_price"))
    if lo is not None or hi is not None:
        lo = out.min_price if lo is None else lo
        hi = out.max_price if hi is None else hi
        if lo is None or hi is None or lo <= hi:
            out.min_price, out.max_price = lo, hi
    for key in ("color", "size"):
        value = answer.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value):
            out.attributes[key] = str(value).strip().lower()[:40]
    canonical_recipients, canonical_occasions = set(RECIPIENTS.values()), set(OCCASIONS.values())
    recipient, occasion = answer.get("recipient"), answer.get("occasion")
    if isinstance(recipient, str) and recipient.lower() in canonical_recipients:
        out.recipient = recipient.lower()
    if isinstance(occasion, str) and occasion.lower() in canonical_occasions:
        out.occasion = occasion.lower()
    out.gift = out.gift or out.occasion is not None or out.recipient not in (None, "self")
    words = answer.get("keywords")
    if isinstance(words, list) and all(isinstance(w, str) for w in words):
        out.keywords = [w.lower() for w in words if w.strip()][:8]
    return out


def _known(value: Any, names: Iterable[str]) -> str | None:
    if not isinstance(value, str):
        return None
    want = value.strip().lower()
    return next((n for n in names if n.lower() == want), None)


def _price(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v >= 0 else None


@dataclass
class Grounding:
    """What a reply may mention: item ids and titles (the picks and the items their reasons
    name), amounts (prices and budget bounds), and the catalogue to check other mentions against.

    ``titles`` maps a normalised catalogue title (lower-case words, two or more) to its item id.
    """

    ids: set[str]
    titles: set[str]
    amounts: list[float]
    pick_ids: set[str]
    pick_titles: set[str]
    catalogue_ids: Any  # anything supporting ``in`` (an IdMap)
    catalogue_titles: Mapping[str, str]
    longest_title: int = 12


def normalise_title(title: str) -> str:
    """Lower-case words joined by one space: ``"Grey Trainers!"`` → ``"grey trainers"``."""
    return " ".join(_WORDS.findall(title.lower()))


def write_reply(chat: ChatEndpoint, payload: Mapping[str, Any], grounding: Grounding) -> str:
    """The LLM's reply to ``payload`` (the structured result), checked by :func:`check_reply`."""
    answer = chat.ask_json(REPLY_PROMPT, {"task": "reply", **payload})
    reply = answer.get("reply")
    if not isinstance(reply, str) or not reply.strip():
        raise LLMFailure('the answer has no "reply" text')
    problem = check_reply(reply, grounding)
    if problem is not None:
        raise LLMFailure(f"reply refused: {problem}")
    return reply.strip()


def check_reply(reply: str, g: Grounding) -> str | None:
    """Why ``reply`` cannot be shown, or None when it only mentions what ``g`` allows."""
    if len(reply) > MAX_REPLY_CHARS:
        return f"longer than {MAX_REPLY_CHARS} characters"
    for token in _ID_LIKE.findall(reply):
        token = token.rstrip(".:,")
        if (
            any(c.isdigit() for c in token)
            and any(c.isalpha() for c in token)
            and token not in g.ids
            and token in g.catalogue_ids
        ):
            return f"it mentions item {token!r}, which is not among the picks"
    words = _WORDS.findall(reply.lower())
    allowed = [normalise_title(t) for t in g.titles]
    for n in range(2, g.longest_title + 1):
        for i in range(len(words) - n + 1):
            phrase = " ".join(words[i : i + n])
            other = g.catalogue_titles.get(phrase)
            if other is not None and other not in g.ids and not any(phrase in a for a in allowed):
                return f"it mentions {phrase!r} (item {other}), which is not among the picks"
    for m in _AMOUNT.finditer(reply):
        value = float((m.group(1) or m.group(2)).replace(",", "."))
        if not any(abs(value - a) < 0.006 for a in g.amounts):
            return f"it quotes the amount {value:g}, which no pick or budget has"
    if g.pick_ids and not (
        any(i in reply for i in g.pick_ids)
        or any(normalise_title(t) in " ".join(words) for t in g.pick_titles if t)
    ):
        return "it names none of the picks"
    return None
