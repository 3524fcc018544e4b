"""Amazon review data (McAuley et al. 2014/2015; Ni, Li and McAuley, EMNLP 2019): JSON lines.

Reviews (``.json`` or ``.json.gz``): one object per line with ``reviewerID, asin, overall,
unixReviewTime, reviewText, summary`` (2018 adds ``style, vote, verified``). Each line becomes a
``review`` event: ``value`` = the star rating, ``text`` = the review text (cut at 20,000 characters,
marked ``context.text_truncated``), ``context`` = summary, verified, vote and style fields.
``event_id`` is ``amazon:{reviewerID}:{asin}:{unixReviewTime}``: the same reviewer reviewing the
same product at the same second is the known duplicate artefact of these dumps, counted as a
duplicate.

Metadata (``--items``, same encodings): ``asin, title, brand, categories`` (2014, a list of
paths) or ``category`` (2018, one path), ``price`` (a number or a string such as ``"$12.99"``; a
range ``"$3.99 - $10.99"`` keeps its low end and puts the text in ``attributes["price_range"]``),
``description`` (a string or a list), ``imUrl`` / ``imageURL``. Each line becomes an item.

The 2014 files are "loose JSON" (Python dict literals); lines that are not JSON are read with
``ast.literal_eval``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shopflow.ingest.importers.base import (
    BadRow,
    ItemRow,
    Reader,
    Record,
    bad_reason,
    open_text,
)

MAX_TEXT = 20_000
_PRICE = re.compile(r"^(-)?\s*\$?\s*(\d[\d,]*(?:\.\d+)?)$")
_PRICE_RANGE = re.compile(r"^\$?\s*(\d[\d,]*(?:\.\d+)?)\s*-\s*\$?\s*(\d[\d,]*(?:\.\d+)?)$")


def parse_line(line: str) -> dict[str, Any]:
    """One JSON (or Python dict literal) object; raises ``ValueError`` saying what is wrong."""
    try:
        obj = json.loads(line)
    except ValueError as json_error:
        try:
            obj = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            raise ValueError(f"invalid JSON: {bad_reason(json_error)}") from None
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, found {type(obj).__name__}")
    return obj


def parse_price(value: Any) -> tuple[float | None, str | None]:
    """``(price, range text)`` from a number or a ``"$12.99"`` string; ``ValueError`` if neither.

    >>> parse_price("$1,299.00"), parse_price("$3.99 - $10.99"), parse_price("")
    ((1299.0, None), (3.99, '$3.99 - $10.99'), (None, None))
    """
    if value is None or isinstance(value, bool):
        if isinstance(value, bool):
            raise ValueError(f"price: {value!r} is not a price")
        return None, None
    if isinstance(value, int | float):
        return float(value), None
    text = str(value).strip()
    if not text:
        return None, None
    if m := _PRICE.match(text):  # a negative price is passed on, for validation to reject
        return (-1 if m.group(1) else 1) * float(m.group(2).replace(",", "")), None
    if m := _PRICE_RANGE.match(text):
        return float(m.group(1).replace(",", "")), text
    shown = text if len(text) <= 40 else text[:40] + "..."
    raise ValueError(f"price: {shown!r} is not a price (expected a number or '$12.99')")


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v).strip() for v in value if str(v).strip())
    return "" if value is None else str(value)


def review_record(obj: dict[str, Any]) -> dict[str, Any]:
    """The raw event record of one review object (validation happens later)."""
    user, asin = obj.get("reviewerID"), obj.get("asin")
    ts = obj.get("unixReviewTime")
    if ts is None and isinstance(obj.get("reviewTime"), str):  # "01 30, 2014"
        try:
            ts = datetime.strptime(obj["reviewTime"].strip(), "%m %d, %Y").replace(tzinfo=UTC)
        except ValueError:
            ts = obj["reviewTime"]
    context: dict[str, Any] = {}
    if obj.get("summary"):
        context["summary"] = str(obj["summary"])[:1_000]
    if isinstance(obj.get("verified"), bool):
        context["verified"] = obj["verified"]
    if obj.get("vote") not in (None, ""):
        vote = str(obj["vote"]).replace(",", "")
        context["vote"] = int(vote) if vote.isdigit() else vote
    if isinstance(obj.get("style"), dict):
        for key, val in obj["style"].items():
            context[f"style_{str(key).rstrip(':').strip().lower()}"] = str(val).strip()
    stamp = int(ts.timestamp()) if isinstance(ts, datetime) else ts
    text = obj.get("reviewText")
    if isinstance(text, str) and len(text) > MAX_TEXT:
        text = text[:MAX_TEXT]
        context["text_truncated"] = True
    return {
        "event_id": f"amazon:{user}:{asin}:{stamp}",
        "type": "review",
        "user_id": user,
        "item_id": asin,
        "timestamp": ts,
        "value": obj.get("overall"),
        "text": text or None,
        "context": context,
    }


def item_record(obj: dict[str, Any]) -> ItemRow:
    """The raw item record of one metadata object; ``ValueError`` when the price is unreadable."""
    price, price_range = parse_price(obj.get("price"))
    categories = obj.get("category") or obj.get("categories") or []
    if categories and isinstance(categories[0], list):  # 2014: a list of paths, keep the first
        categories = categories[0]
    image = obj.get("imUrl") or obj.get("imageURL") or obj.get("imageURLHighRes")
    if isinstance(image, list):
        image = image[0] if image else None
    attributes: dict[str, Any] = {}
    if price_range:
        attributes["price_range"] = price_range
    if isinstance(obj.get("main_cat"), str) and obj["main_cat"]:
        attributes["main_cat"] = obj["main_cat"]
    record = ItemRow(
        item_id=obj.get("asin"),
        title=_text(obj.get("title")),
        description=_text(obj.get("description")),
        brand=(str(obj["brand"]).strip() or None) if obj.get("brand") else None,
        categories=[str(c) for c in categories] if isinstance(categories, list) else categories,
        price=price,
        attributes=attributes,
    )
    if image:
        record["image_url"] = str(image)
    return record


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with open_text(path) as fh:
        for line_no, line in enumerate(fh, start=1):
            if line.strip():
                yield line_no, line


class AmazonReader(Reader):
    """``amazon``: review JSON lines, with a metadata JSON-lines file given as ``--items``."""

    name = "amazon"

    def records(self) -> Iterator[tuple[int, Record]]:
        items_path = self.options.items_path
        if items_path is not None:
            for line_no, line in _lines(items_path):
                try:
                    yield line_no, item_record(parse_line(line))
                except ValueError as exc:
                    yield line_no, BadRow(bad_reason(exc), item=True)
        else:
            self.notes.append("no --items metadata file: only review events imported")
        for line_no, line in _lines(self.path):
            self.rows_read += 1
            try:
                yield line_no, review_record(parse_line(line))
            except ValueError as exc:
                yield line_no, BadRow(bad_reason(exc))
