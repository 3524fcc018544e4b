"""Each importer on a small file written here, with every stored event and item checked exactly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from shopflow.errors import ImportFormatError
from shopflow.ingest.importers import IMPORTERS, run_import
from shopflow.ingest.importers.base import SYNTHETIC_EPOCH
from shopflow.store.online import MemoryState
from shopflow.store.store import Store

T0 = datetime.fromtimestamp(SYNTHETIC_EPOCH, tz=UTC)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def events(store: Store) -> list[dict]:
    return store.events.to_polars().sort("seq").to_dicts()


def by_user(store: Store) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for e in events(store):
        out.setdefault(e["user_id"], []).append(e["item_id"])
    return out


def test_registry_lists_every_format_and_rejects_unknown_ones(
    tmp_path: Path, sqlite_store: Store
) -> None:
    from shopflow.commands.imports import FORMATS

    assert (
        tuple(IMPORTERS)
        == FORMATS
        == ("s3rec", "unisrec", "taobao", "amazon", "csv", "parquet", "jsonl")
    )
    with pytest.raises(ImportFormatError, match="known formats: s3rec, unisrec, taobao, amazon"):
        run_import("tsv", write(tmp_path / "a.csv", "x\n"), sqlite_store)
    with pytest.raises(ImportFormatError, match="does not exist"):
        run_import("taobao", tmp_path / "missing.csv", sqlite_store)


# --- s3rec -------------------------------------------------------------------------------------


def s3rec_files(tmp_path: Path) -> Path:
    write(
        tmp_path / "Toy_item2attributes.json",
        json.dumps({"10": [1, 2], "11": [3], "12": [], "13": [4]}),
    )
    write(
        tmp_path / "Toy_datamaps_p5.json",
        json.dumps(
            {
                "id2user": {"1": "AU1", "2": "AU2", "3": "AU3"},
                "id2item": {"10": "B10", "11": "B11", "12": "B12", "13": "B13"},
            }
        ),
    )
    return write(tmp_path / "Toy.txt", "1 10 11 12\n2 11 13\n3 10 10\n")


def test_s3rec_keeps_order_ids_and_synthetic_times(tmp_path: Path, sqlite_store: Store) -> None:
    report = run_import("s3rec", s3rec_files(tmp_path), sqlite_store)
    assert (report.events_accepted, report.events_duplicate, report.events_rejected) == (7, 0, 0)
    assert (report.items_inserted, report.items_rejected) == (4, 0)
    assert any("synthetic" in n for n in report.notes)
    rows = events(sqlite_store)
    assert [r["event_id"] for r in rows] == [
        "s3rec:Toy:1:0",
        "s3rec:Toy:1:1",
        "s3rec:Toy:1:2",
        "s3rec:Toy:2:0",
        "s3rec:Toy:2:1",
        "s3rec:Toy:3:0",
        "s3rec:Toy:3:1",
    ]
    assert {r["type"] for r in rows} == {"purchase"}
    assert by_user(sqlite_store) == {"1": ["10", "11", "12"], "2": ["11", "13"], "3": ["10", "10"]}
    # n-th event of a user at T0 + n seconds, so ordering by time keeps each user's file order
    assert [(r["user_id"], r["timestamp"]) for r in rows if r["user_id"] == "1"] == [
        ("1", T0),
        ("1", T0.replace(second=1)),
        ("1", T0.replace(second=2)),
    ]
    assert json.loads(rows[0]["context"]) == {"ts_synthetic": True}
    item = sqlite_store.catalogue.get("10")
    assert item is not None
    assert item.attributes == {"s3rec_attributes": [1, 2], "asin": "B10"}
    assert sqlite_store.catalogue.get("12").attributes == {"s3rec_attributes": [], "asin": "B12"}


def test_s3rec_reimport_adds_nothing_and_bad_lines_are_reported(
    tmp_path: Path, sqlite_store: Store
) -> None:
    path = s3rec_files(tmp_path)
    run_import("s3rec", path, sqlite_store)
    again = run_import("s3rec", path, sqlite_store)
    assert (again.events_accepted, again.events_duplicate) == (0, 7)
    assert (again.items_inserted, again.items_updated, again.items_unchanged) == (0, 0, 4)
    assert sqlite_store.events.count() == 7
    bad = write(tmp_path / "Bad.txt", "1 10\n\n7\n8 x9 10\n9 11 12\n")
    report = run_import(
        "s3rec", bad, sqlite_store, items_path=tmp_path / "Toy_item2attributes.json"
    )
    assert [(r.line, r.reason) for r in report.rejected] == [
        (3, "user 7 has no items on the line"),
        (4, "'x9' is not an integer S3-Rec id"),
    ]
    assert report.events_accepted == 3  # Bad:1:0, Bad:9:0, Bad:9:1


# --- unisrec -----------------------------------------------------------------------------------

INTER_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"


def unisrec_files(tmp_path: Path) -> Path:
    # user 0: 0 1 2 3 ; user 1: 2 4 5 ; user 2 appears only in train (longest row: 1 3 -> 4)
    write(
        tmp_path / "Toy.train.inter",
        INTER_HEADER + "0\t0 1\t2\n0\t0\t1\n1\t2\t4\n2\t1\t3\n2\t1 3\t4\n",
    )
    write(tmp_path / "Toy.valid.inter", INTER_HEADER + "0\t0 1 2\t3\n1\t2 4\t5\n")
    write(tmp_path / "Toy.test.inter", INTER_HEADER + "0\t0 1 2\t3\n1\t2 4\t5\n")
    # (the valid rows above repeat the test rows' content on purpose: they must not be added twice)
    write(tmp_path / "Toy.user2index", "AU0\t0\nAU1\t1\nAU2\t2\n")
    write(tmp_path / "Toy.item2index", "".join(f"B{i}\t{i}\n" for i in range(6)))
    write(
        tmp_path / "Toy.text",
        "item_id:token\ttext:token_seq\n"
        + "".join(f"B{i}\tThing {i}. Tools Hand Tools. Acme. \n" for i in range(6)),
    )
    return tmp_path


def test_unisrec_rebuilds_sequences_once_with_asins(tmp_path: Path, sqlite_store: Store) -> None:
    folder = unisrec_files(tmp_path)
    report = run_import("unisrec", folder / "Toy.valid.inter", sqlite_store)
    assert (report.events_accepted, report.events_rejected, report.items_inserted) == (10, 0, 6)
    assert by_user(sqlite_store) == {
        "AU0": ["B0", "B1", "B2", "B3"],
        "AU1": ["B2", "B4", "B5"],
        "AU2": ["B1", "B3", "B4"],
    }
    ids = [e["event_id"] for e in events(sqlite_store)]
    assert ids[:4] == [
        "unisrec:Toy:AU0:0",
        "unisrec:Toy:AU0:1",
        "unisrec:Toy:AU0:2",
        "unisrec:Toy:AU0:3",
    ]
    assert sqlite_store.catalogue.get("B3").title == "Thing 3. Tools Hand Tools. Acme."
    again = run_import("unisrec", folder, sqlite_store)
    assert (again.events_accepted, again.events_duplicate) == (0, 10)


# --- taobao ------------------------------------------------------------------------------------

TAOBAO = """\
1,100,7,pv,1511544070
1,101,7,cart,1511544080
1,100,7,pv,1511544070
1,102,8,fav,1505100000
2,100,7,buy,1511600000
2,103,9,pv,1511500000
"""


def test_taobao_maps_behaviours_keeps_identical_rows_and_early_events(
    tmp_path: Path, sqlite_store: Store
) -> None:
    path = write(tmp_path / "UserBehavior.csv", TAOBAO)
    seen: list[int] = []
    state = MemoryState()
    report = run_import("taobao", path, sqlite_store, progress=seen.append, online_state=state)
    assert (report.events_accepted, report.events_rejected, report.items_inserted) == (6, 0, 4)
    assert sum(seen) == report.rows_read == 6
    rows = events(sqlite_store)
    assert [(r["event_id"], r["type"]) for r in sorted(rows, key=lambda r: r["seq"])] == [
        ("taobao:1:100:1511544070:pv:0", "view"),
        ("taobao:1:101:1511544080:cart:0", "add_to_cart"),
        ("taobao:1:100:1511544070:pv:1", "view"),  # the identical row is a second real event
        ("taobao:1:102:1505100000:fav:0", "favorite"),
        ("taobao:2:100:1511600000:buy:0", "purchase"),
        ("taobao:2:103:1511500000:pv:0", "view"),
    ]
    early = next(r for r in rows if r["item_id"] == "102")
    assert early["timestamp"] == datetime(2017, 9, 11, 3, 20, tzinfo=UTC)  # kept, not cleaned
    assert sqlite_store.catalogue.get("100").categories == ["7"]
    assert sqlite_store.catalogue.get("103").categories == ["9"]
    assert [r.item_id for r in state.recent("1")] == ["102", "100", "100", "101"]  # time order
    assert state.item_counts("100") == {"view": 2, "purchase": 1}
    again = run_import("taobao", path, sqlite_store, online_state=state)
    assert (again.events_accepted, again.events_duplicate) == (0, 6)
    assert state.item_counts("100") == {"view": 2, "purchase": 1}  # duplicates not recorded


def test_limit_and_small_batches_commit_what_was_read(tmp_path: Path, sqlite_store: Store) -> None:
    path = write(tmp_path / "UserBehavior.csv", TAOBAO)
    report = run_import("taobao", path, sqlite_store, limit=4, batch_size=1)
    assert report.events_accepted == 4
    assert sqlite_store.events.count() == 4
    rest = run_import("taobao", path, sqlite_store, batch_size=2)
    assert (rest.events_accepted, rest.events_duplicate) == (2, 4)


# --- amazon ------------------------------------------------------------------------------------


def test_amazon_reviews_2014_2018_and_loose_json_with_metadata(
    tmp_path: Path, sqlite_store: Store
) -> None:
    reviews = [
        json.dumps(
            {
                "reviewerID": "A1",
                "asin": "B1",
                "overall": 5.0,
                "unixReviewTime": 1388534400,
                "reviewText": "Great tea.",
                "summary": "Yum",
                "reviewTime": "01 1, 2014",
            }
        ),
        # 2014 "loose JSON": a Python dict literal
        str(
            {
                "reviewerID": "A2",
                "asin": "B1",
                "overall": 2.0,
                "unixReviewTime": 1388620800,
                "reviewText": "Too bitter",
                "summary": "Meh",
            }
        ),
        json.dumps(
            {
                "reviewerID": "A1",
                "asin": "B2",
                "overall": 4.0,
                "unixReviewTime": 1530000000,
                "reviewText": "x" * 20_005,
                "verified": True,
                "vote": "1,204",
                "style": {"Size:": " Large", "Color:": " Black"},
            }
        ),
    ]
    meta = [
        str(
            {
                "asin": "B1",
                "title": "Green tea",
                "price": 12.99,
                "brand": "Leafy",
                "categories": [["Grocery", "Tea", "Green"]],
                "imUrl": "http://img/b1.jpg",
                "description": "Loose leaf.",
            }
        ),
        json.dumps(
            {
                "asin": "B2",
                "title": "Kettle",
                "price": "$1,299.00",
                "brand": "",
                "category": ["Home", "Kitchen"],
                "imageURL": ["http://img/b2.jpg"],
                "description": ["Steel.", "1.7 l."],
                "main_cat": "Kitchen",
            }
        ),
        json.dumps({"asin": "B3", "title": "Cups", "price": "$3.99 - $10.99"}),
    ]
    path = write(tmp_path / "reviews.json", "\n".join(reviews) + "\n")
    meta_path = write(tmp_path / "meta.json", "\n".join(meta) + "\n")
    report = run_import("amazon", path, sqlite_store, items_path=meta_path)
    assert (report.events_accepted, report.events_rejected) == (3, 0)
    assert (report.items_inserted, report.items_rejected) == (3, 0)
    rows = {r["event_id"]: r for r in events(sqlite_store)}
    assert set(rows) == {
        "amazon:A1:B1:1388534400",
        "amazon:A2:B1:1388620800",
        "amazon:A1:B2:1530000000",
    }
    first = rows["amazon:A1:B1:1388534400"]
    assert (first["type"], first["user_id"], first["item_id"], first["value"], first["text"]) == (
        "review",
        "A1",
        "B1",
        5.0,
        "Great tea.",
    )
    assert first["timestamp"] == datetime(2014, 1, 1, tzinfo=UTC)
    assert json.loads(first["context"]) == {"summary": "Yum"}
    long = rows["amazon:A1:B2:1530000000"]
    assert len(long["text"]) == 20_000
    assert json.loads(long["context"]) == {
        "verified": True,
        "vote": 1204,
        "style_size": "Large",
        "style_color": "Black",
        "text_truncated": True,
    }
    b1, b2, b3 = (sqlite_store.catalogue.get(i) for i in ("B1", "B2", "B3"))
    assert (b1.title, b1.price, b1.brand, b1.categories, b1.image_url, b1.description) == (
        "Green tea",
        12.99,
        "Leafy",
        ["Grocery", "Tea", "Green"],
        "http://img/b1.jpg",
        "Loose leaf.",
    )
    assert (b2.price, b2.brand, b2.categories, b2.image_url, b2.description) == (
        1299.0,
        None,
        ["Home", "Kitchen"],
        "http://img/b2.jpg",
        "Steel.\n1.7 l.",
    )
    assert b2.attributes == {"main_cat": "Kitchen"}
    assert (b3.price, b3.attributes) == (3.99, {"price_range": "$3.99 - $10.99"})
    again = run_import("amazon", path, sqlite_store, items_path=meta_path)
    assert (again.events_accepted, again.events_duplicate, again.items_unchanged) == (0, 3, 3)


def test_amazon_reads_gzip(tmp_path: Path, sqlite_store: Store) -> None:
    import gzip

    path = tmp_path / "reviews.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {"reviewerID": "A9", "asin": "B9", "overall": 3, "unixReviewTime": 1400000000}
            )
            + "\n"
        )
    report = run_import("amazon", path, sqlite_store)
    assert report.events_accepted == 1
    assert events(sqlite_store)[0]["event_id"] == "amazon:A9:B9:1400000000"


# --- csv / parquet -----------------------------------------------------------------------------

CLICKS = """\
visitor,sku,ts,event,price,device
u1,s1,1714557600,view,,mobile
u1,s2,2024-05-01T10:05:00Z,add_to_cart,2,mobile
u2,s1,1714557600,view,,desktop
u1,s1,1714557600,view,,mobile
"""
MAP = {
    "user_id": "visitor",
    "item_id": "sku",
    "timestamp": "ts",
    "type": "event",
    "value": "price",
    "context.device": "device",
}


def test_csv_mapping_derives_stable_ids_and_counts_identical_rows(
    store: Store, tmp_path: Path
) -> None:
    path = write(tmp_path / "clicks.csv", CLICKS)
    report = run_import("csv", path, store, mapping=MAP)
    assert (report.events_accepted, report.events_rejected) == (4, 0)
    rows = events(store)
    assert [(r["user_id"], r["item_id"], r["type"], r["value"]) for r in rows] == [
        ("u1", "s1", "view", None),
        ("u1", "s2", "add_to_cart", 2.0),
        ("u2", "s1", "view", None),
        ("u1", "s1", "view", None),
    ]
    assert rows[1]["timestamp"] == datetime(2024, 5, 1, 10, 5, tzinfo=UTC)
    assert json.loads(rows[2]["context"]) == {"device": "desktop"}
    # rows 1 and 4 are identical: same digest, copy numbers 0 and 1
    first, last = rows[0]["event_id"], rows[3]["event_id"]
    assert first.startswith("csv:") and first.endswith(":0")
    assert last == first[:-1] + "1"
    again = run_import("csv", path, store, mapping=MAP)
    assert (again.events_accepted, again.events_duplicate) == (0, 4)
    assert store.events.count() == 4


def test_csv_constants_event_id_column_and_items_file(tmp_path: Path, sqlite_store: Store) -> None:
    path = write(tmp_path / "views.tsv", "id\twho\twhat\twhen\ne1\tu1\ts1\t1714557600\n")
    items = write(
        tmp_path / "items.tsv",
        "sku\ttitle\tprice\tcategories\tcolour\ns1\tMug\t4.50\tHome > Kitchen\tred\n",
    )
    report = run_import(
        "csv",
        path,
        sqlite_store,
        items_path=items,
        constants={"type": "view"},
        mapping={
            "event_id": "id",
            "user_id": "who",
            "item_id": "what",
            "timestamp": "when",
            "item.item_id": "sku",
        },
    )
    assert (report.events_accepted, report.items_inserted) == (1, 1)
    assert events(sqlite_store)[0]["event_id"] == "e1"
    mug = sqlite_store.catalogue.get("s1")
    assert (mug.title, mug.price, mug.categories, mug.attributes) == (
        "Mug",
        4.5,
        ["Home", "Kitchen"],
        {"colour": "red"},
    )


def test_csv_mapping_mistakes_say_what_to_do(tmp_path: Path, sqlite_store: Store) -> None:
    path = write(tmp_path / "clicks.csv", CLICKS)
    with pytest.raises(ImportFormatError, match=r"no column 'who' \(for user_id\).*visitor, sku"):
        run_import("csv", path, sqlite_store, mapping={**MAP, "user_id": "who"})
    with pytest.raises(ImportFormatError, match="unknown field 'colour'"):
        run_import("csv", path, sqlite_store, mapping={**MAP, "colour": "device"})
    with pytest.raises(ImportFormatError, match="no column for type; map one with --map type="):
        run_import("csv", path, sqlite_store, mapping={k: v for k, v in MAP.items() if k != "type"})


def test_parquet_rows_numbered_and_typed_columns(tmp_path: Path, sqlite_store: Store) -> None:
    path = tmp_path / "events.parquet"
    pl.DataFrame(
        {
            "user_id": [1, 2, None],
            "item_id": ["a", "b", "c"],
            "type": ["view", "purchase", "view"],
            "timestamp": [
                datetime(2024, 1, 1, tzinfo=UTC),
                datetime(2024, 1, 2, tzinfo=UTC),
                datetime(2024, 1, 3, tzinfo=UTC),
            ],
            "value": [None, 2.0, None],
        }
    ).write_parquet(path)
    report = run_import("parquet", path, sqlite_store)
    assert (report.events_accepted, report.events_rejected) == (2, 1)
    assert [(r.line, r.reason) for r in report.rejected] == [(3, "user_id: is required")]
    rows = events(sqlite_store)
    assert [
        (r["user_id"], r["item_id"], r["type"], r["value"], r["timestamp"].day) for r in rows
    ] == [("1", "a", "view", None, 1), ("2", "b", "purchase", 2.0, 2)]
    assert rows[0]["event_id"].startswith("parquet:")
    again = run_import("parquet", path, sqlite_store)
    assert (again.events_accepted, again.events_duplicate) == (0, 2)
