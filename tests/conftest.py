"""Shared fixtures: stores on every backend, online state on every backend, datasets.

PostgreSQL and Redis tests use the real servers at 127.0.0.1 (override with
SHOPFLOW_TEST_POSTGRES_URL / SHOPFLOW_TEST_REDIS_URL) and are skipped, with the reason, when those
are not reachable. Each PostgreSQL test gets its own schema; each Redis test its own key prefix, so
parallel runs do not collide.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopflow.store.online import MemoryState, OnlineState
from shopflow.store.store import Store

POSTGRES_URL = os.environ.get(
    "SHOPFLOW_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SHOPFLOW_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
DATASETS_DIR = Path(
    os.environ.get(
        "SHOPFLOW_DATASETS_DIR", Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"
    )
).resolve()


def _postgres_reason() -> str | None:
    try:
        import psycopg

        url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, connect_timeout=3):
            return None
    except Exception as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}"


def _redis_reason() -> str | None:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
        return None
    except Exception as exc:
        return f"Redis not reachable at {REDIS_URL}: {exc}"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped at the end."""
    reason = _postgres_reason()
    if reason:
        pytest.skip(reason)
    import psycopg

    schema = f"sf_test_{uuid.uuid4().hex[:10]}"
    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _empty_postgres(url: str) -> Store:
    from shopflow.store.db import metadata

    store = Store.from_url(url)
    metadata.drop_all(store.engine)
    metadata.create_all(store.engine)
    return store


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty store on each backend (the contract tests run against both)."""
    if request.param == "sqlite":
        s = Store.from_url(f"sqlite:///{tmp_path / 'shopflow.db'}")
    else:
        s = _empty_postgres(request.getfixturevalue("postgres_url"))
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    s = Store.from_url(f"sqlite:///{tmp_path / 'shopflow.db'}")
    yield s
    s.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def online_state(request: pytest.FixtureRequest) -> Iterator[OnlineState]:
    """Empty online state on each implementation, small limits so tests can reach them."""
    kwargs = {
        "max_sequence": 5,
        "session_timeout_seconds": 600.0,
        "bucket_seconds": 3600,
        "buckets_kept": 4,
    }
    if request.param == "memory":
        yield MemoryState(**kwargs)
        return
    reason = _redis_reason()
    if reason:
        pytest.skip(reason)
    from shopflow.store.online_redis import RedisState

    st = RedisState(REDIS_URL, prefix=f"sftest:{uuid.uuid4().hex[:8]}:", **kwargs)
    yield st
    st.clear()


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    if not DATASETS_DIR.is_dir():
        pytest.skip(f"datasets folder {DATASETS_DIR} is absent (set SHOPFLOW_DATASETS_DIR)")
    return DATASETS_DIR


def dataset_path(name: str) -> Path:
    """Folder of one shared dataset, or skip the test with the reason."""
    path = DATASETS_DIR / name
    if not path.is_dir():
        pytest.skip(f"dataset {name} is absent at {path}")
    return path
