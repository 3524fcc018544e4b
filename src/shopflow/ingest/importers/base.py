"""What every importer shares: the reader contract, the record kinds it yields, and the report.

A reader turns one source format into a stream of ``(line, record)`` pairs, in file order:

- a plain ``dict`` is a raw event record, validated later by
  :func:`shopflow.ingest.schema.parse_events`;
- an :class:`ItemRow` is a raw item record, validated later by ``Item.model_validate``;
- a :class:`BadRow` is a row the reader could not even turn into a record (invalid JSON, wrong
  number of columns, ...), with the reason.

``line`` is the 1-based line number in the file the record came from (the row number for Parquet and
for files holding one JSON object). Readers never write anything: the runner validates, batches and
appends, so every format goes through the same checks and the same durable path.
"""

from __future__ import annotations

import gzip
import hashlib
import io
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Union

from shopflow.errors import ImportFormatError
from shopflow.ingest.schema import Rejected

# Synthetic time of formats that keep order but no time (s3rec, unisrec): a user's n-th event
# (0-based) happens at SYNTHETIC_EPOCH + n seconds. 2020-01-01T00:00:00Z.
SYNTHETIC_EPOCH = 1_577_836_800
SYNTHETIC_NOTE = (
    "the source has no times, only order: timestamps are synthetic (2020-01-01T00:00:00Z plus the "
    "event's position in the user's sequence, in seconds) and marked context.ts_synthetic=true; "
    "use order-based protocols (leave-one-out), not time splits"
)


class ItemRow(dict):
    """A raw item record (a dict, told apart from event records by its type)."""


@dataclass(frozen=True)
class BadRow:
    """A row that could not be read as a record; ``item``: it came from an items file."""

    reason: str
    item: bool = False


Record = Union[dict[str, Any], ItemRow, BadRow]  # noqa: UP007 (a runtime alias, not an annotation)


@dataclass(frozen=True)
class ImportOptions:
    """What a reader may be told besides the main path.

    Attributes
    ----------
    items_path
        Catalogue / metadata file, for formats that have one (``None``: look next to the main file).
    mapping
        ``field -> column`` for the tabular formats (``csv``, ``parquet``).
    constants
        ``field -> value`` given to every record (tabular formats), e.g. ``{"type": "view"}``.
    delimiter
        Column separator of CSV files (default ``,``; ``\\t`` for ``.tsv``).
    """

    items_path: Path | None = None
    mapping: Mapping[str, str] = field(default_factory=dict)
    constants: Mapping[str, str] = field(default_factory=dict)
    delimiter: str | None = None


@dataclass
class ImportReport:
    """What an import did. Counts are exact; ``rejected`` lists every rejected event row."""

    format: str
    path: str
    events_accepted: int = 0
    events_duplicate: int = 0
    events_rejected: int = 0
    items_inserted: int = 0
    items_updated: int = 0
    items_unchanged: int = 0
    items_rejected: int = 0
    rows_read: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    rejected_items: list[Rejected] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def events_seen(self) -> int:
        return self.events_accepted + self.events_duplicate + self.events_rejected


class Reader(ABC):
    """Reads one source format. Subclasses set ``name`` and implement :meth:`records`.

    ``rows_read`` counts the rows of the main file read so far (what the progress bar shows);
    ``notes`` says anything the user must know about how the source was interpreted.
    """

    name: str = ""

    def __init__(self, path: Path, options: ImportOptions) -> None:
        if not path.exists():
            raise ImportFormatError(f"{path} does not exist; give the path of a {self.name} file")
        self.path = path
        self.options = options
        self.rows_read = 0
        self.notes: list[str] = []

    @abstractmethod
    def records(self) -> Iterator[tuple[int, Record]]:
        """Yield ``(line, record)`` in file order (items files first, then the main file)."""

    def total_rows(self) -> int | None:
        """Rows of the main file when cheap to know (for a progress bar), else ``None``."""
        return count_lines(self.path)


def open_text(path: Path) -> IO[str]:
    """Open a text file for reading, gunzipping ``.gz`` files; invalid UTF-8 bytes are replaced."""
    if path.suffix == ".gz":
        return io.TextIOWrapper(
            gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline=""
        )
    return open(path, encoding="utf-8", errors="replace", newline="")


def count_lines(path: Path) -> int | None:
    """Number of lines of an uncompressed file (``None`` for ``.gz`` and directories)."""
    if path.suffix == ".gz" or not path.is_file():
        return None
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")


def content_digest(*parts: object) -> str:
    """A short, stable digest of ``parts`` (used to derive event ids from row content)."""
    h = hashlib.blake2b(digest_size=10)
    for p in parts:
        h.update(repr(p).encode())
        h.update(b"\x1f")
    return h.hexdigest()


class Occurrences:
    """Numbers repeated keys 0, 1, 2, ... so that identical source rows get distinct, stable ids.

    Two identical rows in a behaviour log are two real events; numbering them in file order makes
    the n-th copy's id the same on every import of the file, so a re-import adds nothing.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def next(self, key: str) -> int:
        n = self._seen.get(key, 0)
        self._seen[key] = n + 1
        return n

    def reset(self) -> None:
        self._seen.clear()


def sibling(path: Path, pattern: str) -> Path | None:
    """The single file next to ``path`` (or inside it, for a folder) matching ``pattern``."""
    folder = path if path.is_dir() else path.parent
    found = sorted(folder.glob(pattern))
    return found[0] if len(found) == 1 else None


def bad_reason(problem: Exception | str) -> str:
    """A one-line reason from an exception or a message."""
    text = str(problem).strip().splitlines()
    return text[0] if text else type(problem).__name__


__all__ = [
    "SYNTHETIC_EPOCH",
    "SYNTHETIC_NOTE",
    "BadRow",
    "ImportOptions",
    "ImportReport",
    "ItemRow",
    "Occurrences",
    "Reader",
    "Record",
    "Rejected",
    "bad_reason",
    "content_digest",
    "count_lines",
    "open_text",
    "sibling",
]
