"""S3-Rec sequence files (``Beauty.txt``, ``Sports_and_Outdoors.txt``): ``user item item ...``.

Each line is one user's items, oldest first (Zhou et al., CIKM 2020; the same files feed P5, TIGER
and the CL4SRec family). They are reviews of bought items, so each becomes a ``purchase`` event.

- Ids stay the S3-Rec integers, as strings: the leave-one-out benchmark protocol is defined on them.
- ``event_id`` is ``s3rec:{dataset}:{user}:{position}`` (``dataset`` = file stem), so a re-import
  adds nothing.
- The files have order but no time: the n-th event of a user (0-based) gets the synthetic timestamp
  2020-01-01T00:00:00Z + n seconds and ``context.ts_synthetic = true``. Each user's events keep
  exactly the file's order.
- Items come from ``*_item2attributes.json`` (next to the file, or ``--items``) with the attribute
  ids in ``attributes["s3rec_attributes"]``; when a ``*_datamaps_p5.json`` is there too, the Amazon
  ASIN goes in ``attributes["asin"]``. The ASIN/reviewer ids are not used as shop ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shopflow.errors import ImportFormatError
from shopflow.ingest.importers.base import (
    SYNTHETIC_EPOCH,
    SYNTHETIC_NOTE,
    BadRow,
    ImportOptions,
    ItemRow,
    Reader,
    Record,
    sibling,
)


def _load_json_object(path: Path, what: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError) as exc:
        raise ImportFormatError(f"cannot read {path} as the {what} JSON object: {exc}") from exc
    if not isinstance(data, dict):
        raise ImportFormatError(f"{path} should hold one JSON object ({what}), not a list or value")
    return data


class S3RecReader(Reader):
    """``s3rec``: S3-Rec ``user item ...`` lines, with item attribute ids and ASINs if present."""

    name = "s3rec"

    def __init__(self, path: Path, options: ImportOptions) -> None:
        if path.is_dir():
            txt = [p for p in sorted(path.glob("*.txt")) if p.name.lower() != "readme.txt"]
            if len(txt) != 1:
                raise ImportFormatError(
                    f"{path} is a folder with {len(txt)} .txt files; give the sequence file itself"
                )
            path = txt[0]
        super().__init__(path, options)
        self.dataset = path.stem
        self.attributes_path = options.items_path or _named_or_single(
            path, f"{path.stem}_item2attributes.json", "*_item2attributes.json"
        )
        self.datamaps_path = _named_or_single(
            path, f"{path.stem}_datamaps_p5.json", "*_datamaps_p5.json"
        )
        self.notes.append(SYNTHETIC_NOTE)
        self.notes.append("interactions are Amazon reviews of bought items: imported as purchase")
        if self.attributes_path is None and self.datamaps_path is None:
            self.notes.append("no *_item2attributes.json or *_datamaps_p5.json: no items imported")

    def _items(self) -> Iterator[tuple[int, Record]]:
        attrs = (
            _load_json_object(self.attributes_path, "item id -> attribute ids")
            if self.attributes_path
            else {}
        )
        asins: dict[str, str] = {}
        if self.datamaps_path is not None:
            maps = _load_json_object(self.datamaps_path, "P5 datamaps")
            asins = {str(k): str(v) for k, v in (maps.get("id2item") or {}).items()}
        for n, item_id in enumerate(sorted(set(attrs) | set(asins), key=_int_first), start=1):
            attributes: dict[str, Any] = {}
            if item_id in attrs:
                values = attrs[item_id]
                if not isinstance(values, list):
                    yield n, BadRow(f"item {item_id}: attribute ids must be a list", item=True)
                    continue
                attributes["s3rec_attributes"] = values
            if item_id in asins:
                attributes["asin"] = asins[item_id]
            yield n, ItemRow(item_id=item_id, attributes=attributes)

    def records(self) -> Iterator[tuple[int, Record]]:
        yield from self._items()
        prefix = f"s3rec:{self.dataset}:"
        with open(self.path, encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                self.rows_read += 1
                tokens = line.split()
                if not tokens:
                    continue
                bad = next((t for t in tokens if not t.isdigit()), None)
                if bad is not None:
                    yield line_no, BadRow(f"{bad!r} is not an integer S3-Rec id")
                    continue
                if len(tokens) < 2:
                    yield line_no, BadRow(f"user {tokens[0]} has no items on the line")
                    continue
                user = tokens[0]
                for pos, item in enumerate(tokens[1:]):
                    yield (
                        line_no,
                        {
                            "event_id": f"{prefix}{user}:{pos}",
                            "type": "purchase",
                            "user_id": user,
                            "item_id": item,
                            "timestamp": SYNTHETIC_EPOCH + pos,
                            "context": {"ts_synthetic": True},
                        },
                    )


def _int_first(key: str) -> tuple[int, int | str]:
    return (0, int(key)) if key.isdigit() else (1, key)


def _named_or_single(path: Path, name: str, pattern: str) -> Path | None:
    """``name`` next to ``path`` when it exists, else the one file matching ``pattern`` there."""
    exact = path.with_name(name)
    return exact if exact.is_file() else sibling(path, pattern)
