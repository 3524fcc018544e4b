"""Benchmark datasets as :class:`~shopflow.features.sequences.InteractionData`, read from the files.

One explicit registry, :data:`DATASETS`, lists every dataset shopflow knows; :func:`load` reads one
from ``<root>/<folder>`` (``root`` defaults to the ``datasets_dir`` setting, ``../shared/datasets``,
overridable by ``SHOPFLOW_DATASETS_DIR``). The files are parsed directly with numpy / polars (not
through the SQL store), so loading Amazon Beauty takes well under a second.

Id order, which the leave-one-out protocol does not depend on but reproducibility does:

- S3-Rec (Beauty, Sports): users in file line order with their file id as external id; items in
  ascending order of their integer file id (ids 1..N become dense 0..N-1), external id the file id
  as a string. Sequences keep the file's order exactly. No timestamps.
- UniSRec Scientific: users and items in the order of the ``.user2index`` / ``.item2index`` files
  (dense index = the file's integer), external ids the Amazon reviewer ID and ASIN. A user's
  sequence is the ``.test.inter`` row: history (capped at 50 by the source) + target.
- Taobao UserBehavior head: users in order of first appearance in the file, events sorted by time
  within a user (stable, so equal timestamps keep file order), items in order of first appearance
  in that sorted order. Every event is kept, including the 35 before the official window.

Example
-------
>>> from shopflow.datasets import load, list_datasets      # doctest: +SKIP
>>> data = load("beauty")                                 # doctest: +SKIP
>>> data.n_users, data.n_items, data.n_interactions       # doctest: +SKIP
(22363, 12101, 198502)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl

from shopflow.errors import DatasetMissing, ImportFormatError, NotFound
from shopflow.features.sequences import InteractionData, ItemSide
from shopflow.store.idmap import IdMap
from shopflow.types import EventType

log = logging.getLogger(__name__)

TAOBAO_EVENT_TYPES: dict[str, str] = {
    "pv": EventType.VIEW.value,
    "fav": EventType.FAVORITE.value,
    "cart": EventType.ADD_TO_CART.value,
    "buy": EventType.PURCHASE.value,
}


@dataclass(frozen=True)
class DatasetSpec:
    """One benchmark: its folder under the datasets root, the files it needs, how to read them."""

    name: str
    folder: str
    files: tuple[str, ...]
    description: str
    reader: Callable[[Path, str], InteractionData]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class DatasetInfo:
    """A row of :func:`list_datasets`."""

    name: str
    present: bool
    description: str
    path: Path
    aliases: tuple[str, ...] = ()


# -- readers ---------------------------------------------------------------------------------------
def _read_s3rec(folder: Path, name: str, stem: str) -> InteractionData:
    users: list[str] = []
    seqs: list[np.ndarray] = []
    with (folder / f"{stem}.txt").open() as fh:
        for line in fh:
            parts = line.split()
            if not parts:
                continue
            users.append(parts[0])
            seqs.append(np.fromiter(map(int, parts[1:]), dtype=np.int64, count=len(parts) - 1))
    flat = np.concatenate(seqs) if seqs else np.empty(0, np.int64)
    ids = np.unique(flat)  # ascending integer ids
    dense = np.searchsorted(ids, flat)
    bounds = np.cumsum([len(s) for s in seqs])[:-1]
    sequences = np.split(dense.astype(np.int64), bounds) if seqs else []
    items = IdMap([str(i) for i in ids.tolist()])
    attrs_path = folder / f"{stem}_item2attributes.json"
    attributes = None
    if attrs_path.is_file():
        raw = json.loads(attrs_path.read_text())
        attributes = [list(map(int, raw.get(i, []))) for i in items.external_ids]
    meta = {"source": str(folder), "protocol": "leave_one_out", "item_order": "ascending file id"}
    return InteractionData(
        name, IdMap(users), items, sequences, side=ItemSide(attributes=attributes), meta=meta
    )


def _index_file(path: Path) -> IdMap:
    frame = pl.read_csv(
        path,
        separator="\t",
        has_header=False,
        quote_char=None,
        schema={"ext": pl.Utf8, "idx": pl.Int64},
    ).sort("idx")
    if frame["idx"].to_list() != list(range(frame.height)):
        raise ImportFormatError(f"{path}: indices are not 0..{frame.height - 1}")
    return IdMap(frame["ext"].to_list())


def _read_scientific(folder: Path, name: str) -> InteractionData:
    items = _index_file(folder / "Scientific.item2index")
    users = _index_file(folder / "Scientific.user2index")
    test = pl.read_csv(
        folder / "Scientific.test.inter",
        separator="\t",
        quote_char=None,
        has_header=False,
        skip_rows=1,
        schema={"user": pl.Int64, "history": pl.Utf8, "target": pl.Int64},
    )
    empty = np.empty(0, np.int64)
    sequences: list[np.ndarray] = [empty] * len(users)
    for user, history, target in test.iter_rows():
        seq = [int(x) for x in history.split()] if history else []
        seq.append(target)
        sequences[user] = np.asarray(seq, dtype=np.int64)
    text_frame = pl.read_csv(
        folder / "Scientific.text",
        separator="\t",
        quote_char=None,
        has_header=False,
        skip_rows=1,
        schema={"asin": pl.Utf8, "text": pl.Utf8},
    )
    by_asin = dict(text_frame.iter_rows())
    text = [by_asin.get(a) for a in items.external_ids]
    meta = {"source": str(folder), "protocol": "leave_one_out", "history_cap": 50}
    return InteractionData(name, users, items, sequences, side=ItemSide(text=text), meta=meta)


def _read_taobao(folder: Path, name: str) -> InteractionData:
    frame = pl.read_csv(
        folder / "UserBehavior_head.csv",
        has_header=False,
        schema={
            "user": pl.Utf8,
            "item": pl.Utf8,
            "category": pl.Utf8,
            "behavior": pl.Utf8,
            "ts": pl.Int64,
        },
    )
    unknown = set(frame["behavior"].unique().to_list()) - set(TAOBAO_EVENT_TYPES)
    if unknown:
        raise ImportFormatError(
            f"{folder}: unknown behavior types {sorted(unknown)}; "
            f"known: {sorted(TAOBAO_EVENT_TYPES)}"
        )
    users = IdMap.from_ids(frame["user"].to_list())  # first appearance in the file
    frame = (
        frame.with_row_index("row")
        .with_columns(pl.Series("u", users.to_index(frame["user"].to_list())))
        .sort(["u", "ts", "row"])
    )
    items = IdMap.from_ids(frame["item"].to_list())  # first appearance after the sort
    item_idx = items.to_index(frame["item"].to_list())
    counts = np.bincount(frame["u"].to_numpy(), minlength=len(users))
    bounds = np.cumsum(counts)[:-1]
    kinds = frame["behavior"].replace_strict(TAOBAO_EVENT_TYPES).to_numpy()
    ts = frame["ts"].to_numpy().astype(np.float64)
    cats = (
        frame.with_columns(pl.Series("i", item_idx))
        .group_by("i")
        .agg(pl.col("category").unique(maintain_order=True))
        .sort("i")
    )
    categories = [list(c) for c in cats["category"].to_list()]
    meta = {"source": str(folder), "protocol": "time_split", "event_type_map": TAOBAO_EVENT_TYPES}
    return InteractionData(
        name,
        users,
        items,
        np.split(item_idx, bounds),
        np.split(ts, bounds),
        np.split(kinds, bounds),
        side=ItemSide(categories=categories),
        meta=meta,
    )


DATASETS: dict[str, DatasetSpec] = {
    "amazon_beauty_s3rec": DatasetSpec(
        name="amazon_beauty_s3rec",
        folder="amazon_beauty_s3rec",
        files=("Beauty.txt",),
        description="Amazon Beauty 5-core, S3-Rec leave-one-out benchmark (+ attribute ids)",
        reader=partial(_read_s3rec, stem="Beauty"),
        aliases=("beauty",),
    ),
    "amazon_sports_s3rec": DatasetSpec(
        name="amazon_sports_s3rec",
        folder="amazon_sports_s3rec",
        files=("Sports_and_Outdoors.txt",),
        description="Amazon Sports_and_Outdoors 5-core, S3-Rec leave-one-out benchmark",
        reader=partial(_read_s3rec, stem="Sports_and_Outdoors"),
        aliases=("sports",),
    ),
    "amazon_scientific_unisrec": DatasetSpec(
        name="amazon_scientific_unisrec",
        folder="amazon_scientific_unisrec",
        files=tuple(
            f"Scientific.{part}" for part in ("test.inter", "item2index", "user2index", "text")
        ),
        description="Amazon Industrial_and_Scientific, UniSRec benchmark with item text",
        reader=_read_scientific,
        aliases=("scientific",),
    ),
    "taobao_userbehavior_head": DatasetSpec(
        name="taobao_userbehavior_head",
        folder="taobao_userbehavior_head",
        files=("UserBehavior_head.csv",),
        description="Taobao UserBehavior head: timestamped pv/fav/cart/buy log, 814 whole users",
        reader=_read_taobao,
        aliases=("taobao",),
    ),
}
ALIASES: dict[str, str] = {a: spec.name for spec in DATASETS.values() for a in spec.aliases}


def resolve(name: str) -> DatasetSpec:
    """The registry entry of ``name`` (or an alias); unknown names raise with the known ones."""
    key = ALIASES.get(name, name)
    if key not in DATASETS:
        known = ", ".join(f"{n} ({', '.join(s.aliases)})" for n, s in DATASETS.items())
        raise NotFound(f"unknown dataset {name!r}; known: {known}")
    return DATASETS[key]


def default_root() -> Path:
    """The datasets folder in force: ``SHOPFLOW_DATASETS_DIR`` or the ``datasets_dir`` setting."""
    from shopflow.config import load_settings

    return Path(load_settings().datasets_dir)


def dataset_folder(name: str, root: Path | None = None) -> Path:
    """Folder of dataset ``name`` under ``root``; :class:`DatasetMissing` when a file is absent."""
    spec = resolve(name)
    base = Path(root) if root is not None else default_root()
    folder = base / spec.folder
    missing = [f for f in spec.files if not (folder / f).is_file()]
    if missing:
        raise DatasetMissing(
            f"dataset {spec.name} not found: looked for {', '.join(missing)} in "
            f"{folder.resolve()}; put the files there, or point shopflow at the folder that holds "
            f"{spec.folder}/ with SHOPFLOW_DATASETS_DIR=/path (or datasets_dir in shopflow.toml, "
            f"or root=... in Python)"
        )
    return folder


def load(name: str, root: Path | None = None) -> InteractionData:
    """Load benchmark ``name`` (or an alias such as ``beauty``) as :class:`InteractionData`.

    Parameters
    ----------
    name
        A key of :data:`DATASETS` or one of its aliases (``beauty``, ``sports``, ``scientific``,
        ``taobao``).
    root
        Folder holding the dataset folders; default the ``datasets_dir`` setting.

    Raises
    ------
    NotFound
        ``name`` is not a known dataset (the message lists them).
    DatasetMissing
        The files are not there (the message says where shopflow looked and how to point elsewhere).
    """
    spec = resolve(name)
    folder = dataset_folder(spec.name, root)
    data = spec.reader(folder, spec.name)
    log.info(
        "loaded %s: %d users, %d items, %d interactions",
        spec.name,
        data.n_users,
        data.n_items,
        data.n_interactions,
    )
    return data


def list_datasets(root: Path | None = None) -> list[DatasetInfo]:
    """Every registered dataset with whether its files are present under ``root``."""
    base = Path(root) if root is not None else default_root()
    rows = []
    for spec in DATASETS.values():
        folder = base / spec.folder
        present = all((folder / f).is_file() for f in spec.files)
        rows.append(DatasetInfo(spec.name, present, spec.description, folder, spec.aliases))
    return rows


__all__ = [
    "ALIASES",
    "DATASETS",
    "DatasetInfo",
    "DatasetSpec",
    "dataset_folder",
    "default_root",
    "list_datasets",
    "load",
    "resolve",
]
