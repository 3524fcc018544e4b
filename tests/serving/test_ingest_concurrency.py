"""Concurrent event batches through the real app over HTTP: every event stored exactly once.

Sixteen clients post overlapping batches at the same time to one uvicorn server (in a thread, the
product app on a SQLite file with ``synchronous=FULL``), so the group-commit writer puts several
requests in one transaction. Every event must be in the log exactly once, each ``event_id``
acknowledged as accepted by exactly one answer, and the online state must hold what was accepted.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from shopflow.config import load_settings
from shopflow.serving.app import create_app
from shopflow.store.db import events
from shopflow.store.store import Store
from tests.serving.conftest import T0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Any, Store]]:
    """A uvicorn server in a thread; yields its base URL, the app and the store behind it."""
    settings = load_settings(data_dir=tmp_path / "data", auth={"enabled": False})
    store = Store.from_settings(settings)
    app = create_app(settings, store=store)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not srv.started and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}", app, store
    finally:
        srv.should_exit = True
        thread.join(timeout=30)
        store.close()


def test_concurrent_batches_are_stored_exactly_once(server: tuple[str, Any, Store]) -> None:
    base, app, store = server
    # 96 batches of 40 events; batch b overlaps batch b + 1 by half (the same event ids again)
    batches = [
        [
            {"event_id": f"c{i}", "type": "view", "user_id": f"u{i % 23}",
             "item_id": f"i{i % 97}", "timestamp": T0 + i}
            for i in range(20 * b, 20 * b + 40)
        ]
        for b in range(96)
    ]  # fmt: skip

    def post(body: list[dict[str, Any]]) -> dict[str, Any]:
        with httpx.Client(base_url=base, timeout=60) as client:
            r = client.post("/v1/events", json=body)
        assert r.status_code == 200, r.text
        return r.json()

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, batches))

    expected = {e["event_id"] for b in batches for e in b}
    with store.engine.connect() as conn:
        ids = list(conn.execute(select(events.c.event_id)).scalars())
    assert len(ids) == len(set(ids)) == len(expected)  # nothing lost, nothing twice
    assert set(ids) == expected
    accepted = [i for a in answers for i in a["accepted_ids"]]
    assert sorted(accepted) == sorted(expected)  # each id acknowledged as new exactly once
    for body, a in zip(batches, answers, strict=True):
        assert a["accepted"] + a["duplicates"] == len(body)
        assert set(a["accepted_ids"]) | set(a["duplicate_ids"]) == {e["event_id"] for e in body}
    online = app.state.services.online
    in_online = {r.event_id for u in range(23) for r in online.recent(f"u{u}")}
    assert in_online == expected  # the online state saw each accepted event (once: a set of ids)
    writer = app.state.services.ingest.writer
    assert writer.batches == len(batches)
