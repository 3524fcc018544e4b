"""Bad rows beside good ones: every good row lands, every bad row is reported with its exact line
and a reason that names the problem. And the ``shopflow import`` command around it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from shopflow.commands import imports as import_cmd
from shopflow.ingest.importers import run_import
from shopflow.store.store import Store

BROKEN_CSV = """\
visitor,sku,ts,event,price,note
u1,s1,1714557600,view,,ok
,s1,1714557600,view,,missing user
u2,s2,1714557600,teleport,,unknown type
u3,s3,1714557600,purchase,-5,negative quantity
u4,s4,yesterday,view,,not a time
u5,s5,2999-01-01T00:00:00Z,view,,far future
u6,s6,1714557600,view
u7,s7,1714557600,view,,"a note
on two lines"
u8,s8,1714557600,purchase,3,ok
u9,s9,1714557600000,view,,milliseconds
u10,s10,1714557600,view,abc,not a number
"""
MAP = [
    "user_id=visitor",
    "item_id=sku",
    "timestamp=ts",
    "type=event",
    "value=price",
    "context.note=note",
]
BROKEN_ITEMS = """\
sku,title,price,stock
s1,Mug,4.5,3
s2,Pot,-1,2
,Cup,1,1
s4,Bowl,2
s5,Plate,abc,1
"""
EXPECTED_EVENT_REJECTS = [
    (3, "user_id: is required"),
    (4, "type: unknown event type 'teleport'"),
    (5, "value: quantity must not be negative"),
    (6, "timestamp: 'yesterday' is not an ISO 8601 time"),
    (7, "timestamp: 2999-01-01T00:00:00+00:00 is in the future"),
    (8, "expected 6 columns, found 4"),
    (12, "timestamp: 1714557600000 is too large for unix seconds (milliseconds? divide by 1000)"),
    (13, "value: Input should be a valid number"),
]
EXPECTED_ITEM_REJECTS = [
    (3, "price: Input should be greater than or equal to 0"),
    (4, "item_id: is required"),
    (5, "expected 4 columns, found 3"),
    (6, "price: Input should be a valid number"),
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def pairs(values: list[str]) -> dict[str, str]:
    return dict(v.split("=", 1) for v in values)


def counts(output: str) -> tuple[str, ...]:
    """(accepted, duplicate, rejected) from the events row of the command's table."""
    m = re.search(r"events\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│\s*([\d,]+)\s*│", output)
    assert m, output
    return m.groups()


def assert_reasons(got: list, expected: list[tuple[int, str]]) -> None:
    assert [r.line for r in got] == [line for line, _ in expected]
    for r, (_, reason) in zip(got, expected, strict=True):
        assert reason in r.reason, (r.line, r.reason)


def test_broken_csv_keeps_good_rows_and_names_each_problem(tmp_path: Path, store: Store) -> None:
    path = write(tmp_path / "clicks.csv", BROKEN_CSV)
    items = write(tmp_path / "items.csv", BROKEN_ITEMS)
    report = run_import(
        "csv",
        path,
        store,
        mapping={**pairs(MAP), "item.item_id": "sku"},
        items_path=items,
        batch_size=4,
    )
    assert (report.events_accepted, report.events_rejected) == (3, 8)
    assert_reasons(report.rejected, EXPECTED_EVENT_REJECTS)
    assert (report.items_inserted, report.items_rejected) == (1, 4)
    assert_reasons(report.rejected_items, EXPECTED_ITEM_REJECTS)
    rows = store.events.to_polars().sort("seq").to_dicts()
    assert [(r["user_id"], r["item_id"], r["value"]) for r in rows] == [
        ("u1", "s1", None),
        ("u7", "s7", None),
        ("u8", "s8", 3.0),
    ]
    assert json.loads(rows[1]["context"]) == {"note": "a note\non two lines"}
    assert [i.item_id for i in store.catalogue.all()] == ["s1"]
    # A second run rejects the same rows again and adds nothing.
    again = run_import("csv", path, store, mapping=pairs(MAP))
    assert (again.events_accepted, again.events_duplicate, again.events_rejected) == (0, 3, 8)


def test_broken_amazon_lines(tmp_path: Path, sqlite_store: Store) -> None:
    good = {"reviewerID": "A1", "asin": "B1", "overall": 5, "unixReviewTime": 1400000000}
    lines = [
        json.dumps(good),
        '{"reviewerID": "A2", "asin": ',
        '["a", "list"]',
        json.dumps({"asin": "B1", "overall": 4, "unixReviewTime": 1400000000}),
        json.dumps({**good, "reviewerID": "A5"}),
        json.dumps({**good, "reviewerID": "A6", "unixReviewTime": 32503680000}),
        json.dumps({**good, "reviewerID": "A7", "unixReviewTime": "soon"}),
        "",
        json.dumps({**good, "reviewerID": "A9", "asin": "B2"}),
    ]
    meta = [
        json.dumps({"asin": "B1", "title": "Tea", "price": "-$3.00"}),
        json.dumps({"asin": "B2", "title": "Pot", "price": ".a-box-inner{background-color:#fff}"}),
        "{'asin': 'B3', 'title': 'Cup', 'price': 2.5}",
        "{'asin': 'B4', 'title': ",
    ]
    path = write(tmp_path / "reviews.json", "\n".join(lines) + "\n")
    meta_path = write(tmp_path / "meta.json", "\n".join(meta) + "\n")
    report = run_import("amazon", path, sqlite_store, items_path=meta_path)
    assert report.events_accepted == 3
    assert_reasons(
        report.rejected,
        [
            (2, "invalid JSON: "),
            (3, "expected a JSON object, found list"),
            (4, "user_id: is required"),
            (6, "is in the future"),
            (7, "timestamp: 'soon' is not an ISO 8601 time"),
        ],
    )
    assert {e["user_id"] for e in sqlite_store.events.to_polars().to_dicts()} == {"A1", "A5", "A9"}
    assert_reasons(
        report.rejected_items,
        [
            (1, "price: Input should be greater than or equal to 0"),
            (2, "price: '.a-box-inner{background-color:#fff}' is not a price"),
            (4, "invalid JSON: "),
        ],
    )
    assert [i.item_id for i in sqlite_store.catalogue.all()] == ["B3"]


def test_broken_taobao_rows(tmp_path: Path, sqlite_store: Store) -> None:
    path = write(
        tmp_path / "ub.csv",
        "1,100,7,pv,1511544070\n1,100,7,pv\n1,100,7,look,1511544070\n"
        "1,100,7,pv,abc\n,100,7,pv,1511544070\n2,101,7,buy,1511544099\n",
    )
    report = run_import("taobao", path, sqlite_store)
    assert report.events_accepted == 2
    assert_reasons(
        report.rejected,
        [
            (2, "expected 5 columns (user,item,category,behavior,timestamp), found 4"),
            (3, "behavior: unknown Taobao behaviour 'look'; expected pv, fav, cart, buy"),
            (4, "timestamp: 'abc' is not whole unix seconds"),
            (5, "user_id: must not be empty"),
        ],
    )


# --- the command -------------------------------------------------------------------------------


@pytest.fixture
def cli() -> typer.Typer:
    """The import command wired exactly as ``shopflow.cli`` wires it."""
    app = typer.Typer()
    app.command("import", help=import_cmd.HELP, no_args_is_help=True)(import_cmd.import_command)

    @app.callback()
    def _root() -> None: ...

    return app


def test_command_reports_counts_rejects_and_writes_the_full_list(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATA_DIR", str(tmp_path / "data"))
    rows = ["visitor,sku,ts,event"] + [f"u{i},s{i},1714557600,view" for i in range(10)]
    rows += [f"u{i},s{i},1714557600,teleport" for i in range(25)]  # 25 bad rows: lines 12..36
    path = write(tmp_path / "clicks.csv", "\n".join(rows) + "\n")
    args = [
        "import",
        "csv",
        str(path),
        "--no-progress",
        *(a for m in MAP[:4] for a in ("--map", m)),
    ]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert counts(out) == ("10", "0", "25")
    assert "rejected rows (first 20 of 25)" in out
    assert re.search(r"event\s*│\s*12\s*│\s*type: unknown event type 'teleport'", out)
    rejects = list((tmp_path / "data" / "rejects").glob("import-csv-clicks.csv-*.tsv"))
    assert len(rejects) == 1
    lines = rejects[0].read_text().splitlines()
    assert lines[0] == "kind\tline\treason" and len(lines) == 26
    assert lines[-1].startswith("event\t36\ttype: unknown event type 'teleport'")
    store = Store.from_url(f"sqlite:///{tmp_path / 'data' / 'shopflow.db'}")
    assert store.events.count() == 10
    again = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert again.exit_code == 0
    assert counts(again.output) == ("0", "10", "25")


def test_command_fails_clearly_on_unknown_format_and_missing_file(
    cli: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SHOPFLOW_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli, ["import", "xml", str(tmp_path)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert (
        "unknown import format 'xml'; known formats: s3rec, unisrec, taobao, amazon, csv, "
        "parquet" in result.output
    )
    result = CliRunner().invoke(
        cli, ["import", "taobao", str(tmp_path / "nope.csv")], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 2
    assert "nope.csv does not exist" in result.output
    assert not (tmp_path / "data" / "shopflow.db").exists()  # nothing opened for a failed start
