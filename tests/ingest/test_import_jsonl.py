"""The jsonl format round-trips what `shopflow demo generate --out` writes."""

from __future__ import annotations

from pathlib import Path

from shopflow.ingest.demo import DemoConfig, generate, write_jsonl
from shopflow.ingest.importers import run_import
from shopflow.store.store import Store


def test_demo_export_imports_back_exactly(tmp_path: Path, sqlite_store: Store) -> None:
    shop = generate(DemoConfig(seed=5, n_users=40, n_items=120, days=7))
    write_jsonl(shop, tmp_path / "shop")
    report = run_import("jsonl", tmp_path / "shop", sqlite_store)
    assert report.events_accepted == len(shop.events) and report.events_rejected == 0
    assert report.items_inserted == len(shop.items)
    stored = sqlite_store.events.to_polars()
    assert sorted(stored["event_id"].to_list()) == sorted(e.event_id for e in shop.events)
    assert sqlite_store.catalogue.get(shop.items[0].item_id) == shop.items[0]
    again = run_import("jsonl", tmp_path / "shop" / "events.jsonl", sqlite_store)
    assert (again.events_accepted, again.events_duplicate) == (0, len(shop.events))


def test_bad_lines_are_reported_by_line(tmp_path: Path, sqlite_store: Store) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"event_id":"a","type":"view","user_id":"u","item_id":"i","timestamp":1700000000}\n'
        "{not json\n"
        "\n"
        '["a list"]\n'
        '{"event_id":"b","type":"fly","user_id":"u","item_id":"i","timestamp":1700000000}\n'
        '{"event_id":"c","type":"purchase","user_id":"u","item_id":"i","timestamp":1700000001}\n'
    )
    report = run_import("jsonl", path, sqlite_store)
    assert report.events_accepted == 2
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (2, "invalid JSON"),
        (4, "must be a JSON object, not list"),
        (5, "type"),
    ]
