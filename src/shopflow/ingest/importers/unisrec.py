"""UniSRec / RecBole atomic files (Hou et al., KDD 2022), e.g. the ``Scientific`` benchmark.

A dataset ``NAME`` is the set of tab-separated files ``NAME.{train,valid,test}.inter``
(``user_id:token  item_id_list:token_seq  item_id:token``, with a header), ``NAME.text``
(``item_id:token  text:token_seq``) and ``NAME.item2index`` / ``NAME.user2index``
(``token<TAB>int``). Give the folder or any one of the files.

- Each user's sequence is rebuilt from the **test** row alone (history + target), which already
  holds everything the train and valid rows hold: nothing is counted twice. A user without a test
  row falls back to the valid row, then to the longest train row. The source caps histories at
  50 items, so longer sequences start at their 50th-last item (3 users of ``Scientific``).
- Users and items become the reviewer ids and ASINs of the index maps (the integers when a map is
  missing). Events are ``purchase`` (reviews of bought items), ``event_id``
  ``unisrec:{dataset}:{user}:{position}``.
- The files have order but no time: synthetic timestamps, as for ``s3rec`` (see ``SYNTHETIC_NOTE``).
- Items come from ``NAME.text``: ``title`` is the whole text (title, category path and brand joined
  by ". "; the parts cannot be split back reliably).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from shopflow.errors import ImportFormatError
from shopflow.ingest.importers.base import (
    SYNTHETIC_EPOCH,
    SYNTHETIC_NOTE,
    BadRow,
    ImportOptions,
    ItemRow,
    Reader,
    Record,
    count_lines,
)

SUFFIXES = (".test.inter", ".valid.inter", ".train.inter", ".text", ".item2index", ".user2index")


def _dataset_of(path: Path) -> tuple[Path, str]:
    """The folder and the dataset name of ``path`` (a folder or one of the dataset's files)."""
    if path.is_dir():
        tests = sorted(path.glob("*.test.inter"))
        if len(tests) != 1:
            raise ImportFormatError(
                f"{path} holds {len(tests)} *.test.inter files; give one dataset's .test.inter file"
            )
        return path, tests[0].name.removesuffix(".test.inter")
    for suffix in SUFFIXES:
        if path.name.endswith(suffix):
            return path.parent, path.name.removesuffix(suffix)
    raise ImportFormatError(
        f"{path.name} is not a UniSRec file; expected a name ending in one of {', '.join(SUFFIXES)}"
    )


def _read_index(path: Path) -> dict[str, str]:
    """``int -> token`` from a ``token<TAB>int`` file."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) != 2:
                raise ImportFormatError(f"{path}:{line_no}: expected 'token<TAB>index'")
            out[parts[1].strip()] = parts[0].strip()
    return out


class UniSRecReader(Reader):
    """``unisrec``: RecBole ``.inter`` sequences, ``.text`` item text and the id index maps."""

    name = "unisrec"

    def __init__(self, path: Path, options: ImportOptions) -> None:
        if not path.exists():
            raise ImportFormatError(f"{path} does not exist; give a UniSRec folder or .inter file")
        folder, self.dataset = _dataset_of(path)
        main = folder / f"{self.dataset}.test.inter"
        super().__init__(main, options)
        self.folder = folder
        self.text_path = options.items_path or folder / f"{self.dataset}.text"
        self.notes.append(SYNTHETIC_NOTE)
        self.notes.append(
            "sequences rebuilt from the test rows (history + target); histories are "
            "capped at 50 items in the source"
        )

    def _file(self, suffix: str) -> Path:
        return self.folder / f"{self.dataset}{suffix}"

    def _rows(self, path: Path) -> Iterator[tuple[int, str, list[str] | None, str]]:
        """``(line, user, history or None if malformed, target or reason)`` of an .inter file."""
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                if line_no == 1 and line.startswith("user_id"):
                    continue
                if not line.strip():
                    continue
                parts = line.rstrip("\r\n").split("\t")
                if len(parts) != 3:
                    yield (
                        line_no,
                        "",
                        None,
                        f"{path.name}: expected 3 tab-separated columns, found {len(parts)}",
                    )
                    continue
                yield line_no, parts[0].strip(), parts[1].split(), parts[2].strip()

    def _items(self) -> Iterator[tuple[int, Record]]:
        if not self.text_path.is_file():
            self.notes.append(f"{self.text_path.name} not found: no items imported")
            return
        with open(self.text_path, encoding="utf-8", errors="replace") as fh:
            for line_no, line in enumerate(fh, start=1):
                if line_no == 1 and line.startswith("item_id"):
                    continue
                parts = line.rstrip("\r\n").split("\t")
                if len(parts) != 2:
                    yield (
                        line_no,
                        BadRow(
                            f"{self.text_path.name}: expected 'item<TAB>text', found {len(parts)} "
                            "columns",
                            item=True,
                        ),
                    )
                    continue
                yield line_no, ItemRow(item_id=parts[0], title=parts[1].strip())

    def records(self) -> Iterator[tuple[int, Record]]:
        yield from self._items()
        users = (
            _read_index(self._file(".user2index")) if self._file(".user2index").is_file() else {}
        )
        items = (
            _read_index(self._file(".item2index")) if self._file(".item2index").is_file() else {}
        )
        if not users or not items:
            self.notes.append("user2index / item2index missing: ids are the integer indexes")
        done: set[str] = set()
        for suffix in (".test.inter", ".valid.inter"):
            path = self._file(suffix)
            if not path.is_file():
                continue
            for line_no, user, history, target in self._rows(path):
                if suffix == ".test.inter":
                    self.rows_read += 1
                if history is None:
                    yield line_no, BadRow(target)
                    continue
                if user in done:
                    continue
                done.add(user)
                yield from self._sequence(line_no, user, [*history, target], users, items)
        # Users with neither a test nor a valid row: their longest train row.
        longest: dict[str, tuple[int, list[str]]] = {}
        train = self._file(".train.inter")
        if train.is_file():
            for line_no, user, history, target in self._rows(train):
                if history is None or user in done:
                    continue
                if user not in longest or len(history) + 1 > len(longest[user][1]):
                    longest[user] = (line_no, [*history, target])
        for user, (line_no, seq) in longest.items():
            yield from self._sequence(line_no, user, seq, users, items)

    def _sequence(
        self, line_no: int, user: str, seq: list[str], users: dict[str, str], items: dict[str, str]
    ) -> Iterator[tuple[int, Record]]:
        user_id = users.get(user, user)
        prefix = f"unisrec:{self.dataset}:{user_id}:"
        for pos, item in enumerate(seq):
            yield (
                line_no,
                {
                    "event_id": f"{prefix}{pos}",
                    "type": "purchase",
                    "user_id": user_id,
                    "item_id": items.get(item, item),
                    "timestamp": SYNTHETIC_EPOCH + pos,
                    "context": {"ts_synthetic": True},
                },
            )

    def total_rows(self) -> int | None:
        n = count_lines(self.path)
        return None if n is None else max(n - 1, 0)
