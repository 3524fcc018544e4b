"""Fixtures of the service tests: the real app over HTTP (``TestClient``), on the real backends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopflow.config import Settings, load_settings
from shopflow.serving.app import create_app
from shopflow.store.online import OnlineState
from shopflow.store.store import Store

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z

ClientFactory = Callable[..., TestClient]


def ev(i: int | str, user: str = "u1", **fields: Any) -> dict[str, Any]:
    """A valid view event ``e{i}`` of ``user`` on item ``i{i}``, at ``T0 + i`` (fields override)."""
    n = int(i) if str(i).isdigit() else 0
    return {
        "event_id": f"e{i}",
        "type": "view",
        "user_id": user,
        "item_id": f"i{i}",
        "timestamp": T0 + n,
        **fields,
    }


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def make_client(settings: Settings) -> Iterator[ClientFactory]:
    """Start the app (lifespan included) on a given store / online state; stopped at teardown."""
    opened: list[TestClient] = []

    def make(
        store: Store,
        online_state: OnlineState | None = None,
        settings_: Settings | None = None,
    ) -> TestClient:
        app = create_app(settings=settings_ or settings, store=store, online_state=online_state)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)
