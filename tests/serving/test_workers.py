"""Two uvicorn workers against one Redis: whichever worker answers sees every event.

``shopflow serve --workers 2`` runs as a real subprocess on a free port, with a temporary data
folder, an API key and its own Redis key prefix. Events go in through many short connections, so
both workers take some (each answer names its worker in ``X-Shopflow-Worker``); then both workers
are asked for the user's events and must return all of them from the online state, and
``/metrics`` (prometheus-client multiprocess mode) must count the events of both workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REDIS_URL, _redis_reason
from tests.serving.conftest import ev
from tests.serving.test_server import _free_port

pytestmark = [pytest.mark.redis, pytest.mark.slow]
KEY = "sf_test_two_workers_key"
USER = "shopper-2w"
BATCH = 5


def _fresh(base: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request on its own connection, so that the kernel may hand it to either worker."""
    headers = {"Authorization": f"Bearer {KEY}", "Connection": "close"}
    return httpx.request(method, base + path, headers=headers, timeout=20.0, **kwargs)


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Base URL and Redis key prefix of a running ``shopflow serve --workers 2``."""
    yield from _two_workers(tmp_path)


@pytest.fixture
def two_workers_with_bundle(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """The same, serving a bundle of the demo shop's co-visitation and trending models."""
    from tests.serving import recommend_shop as shop

    shop.write(tmp_path / "data" / "bundles", models=["covisit", "trending"])
    yield from _two_workers(tmp_path)


def _two_workers(tmp_path: Path) -> Iterator[tuple[str, str]]:
    reason = _redis_reason()
    if reason:
        pytest.skip(reason)
    import redis

    prefix = f"sftest:{uuid.uuid4().hex[:10]}:"
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SHOPFLOW_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    env |= {"SHOPFLOW_AUTH__API_KEY": KEY, "SHOPFLOW_REDIS_PREFIX": prefix}
    cmd = [
        sys.executable, "-m", "shopflow.cli", "serve", "--workers", "2", "--port", str(port),
        "--redis-url", REDIS_URL, "--data-dir", str(tmp_path / "data"), "--log-level", "warning",
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_both(base, proc)
        yield base, prefix
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        client = redis.Redis.from_url(REDIS_URL)
        stale = list(client.scan_iter(match=f"{prefix}*"))
        if stale:
            client.delete(*stale)


def _wait_for_both(base: str, proc: subprocess.Popen[bytes], seconds: float = 120.0) -> None:
    """Until two distinct workers have answered /healthz."""
    seen: set[str] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < 2 and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
        try:
            seen.add(_fresh(base, "GET", "/healthz").headers["x-shopflow-worker"])
        except httpx.TransportError:
            time.sleep(0.3)
    assert len(seen) == 2, f"only workers {seen} answered in {seconds:.0f} s"


def _accepted(samples_text: str) -> float:
    for family in text_string_to_metric_families(samples_text):
        for s in family.samples:
            if s.name == "shopflow_events_total" and s.labels == {"outcome": "accepted"}:
                return s.value
    return 0.0


def test_any_worker_answers_with_the_whole_online_state(two_workers: tuple[str, str]) -> None:
    base, prefix = two_workers
    assert _fresh(base, "POST", "/v1/events", json=[ev(0, user=USER)]).status_code == 200
    assert httpx.get(base + "/v1/users/u/events").status_code == 401  # the key is required

    takers: dict[str, int] = {}
    sent = ["e0"]
    start = 1
    with ThreadPoolExecutor(8) as pool:
        # batches of 5 events, 8 at a time on fresh connections, until both workers took some
        while len(takers) < 2 or len(sent) < 60:
            assert start < 2_000, f"one worker took every batch: {takers}"
            batches = [[ev(start + 5 * b + j, user=USER) for j in range(BATCH)] for b in range(8)]
            start += 5 * len(batches)
            for r in pool.map(lambda x: _fresh(base, "POST", "/v1/events", json=x), batches):
                assert r.status_code == 200 and r.json()["accepted"] == BATCH, r.text
                pid = r.headers["x-shopflow-worker"]
                takers[pid] = takers.get(pid, 0) + 1
            sent += [e["event_id"] for batch in batches for e in batch]

    answered: set[str] = set()
    for _ in range(200):
        r = _fresh(base, "GET", f"/v1/users/{USER}/events", params={"limit": 1000})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["source"] == "online"
        assert sorted(e["event_id"] for e in body["events"]) == sorted(sent[-200:])
        answered.add(r.headers["x-shopflow-worker"])
        if answered == set(takers):
            break
    assert answered == set(takers), f"workers {set(takers) - answered} never answered"

    # the metrics of both workers are summed, whichever worker answers the scrape
    for _ in range(2):
        assert _accepted(_fresh(base, "GET", "/metrics").text) == len(sent)
    import redis

    assert redis.Redis.from_url(REDIS_URL).exists(f"{prefix}u:{USER}") == 1


def test_covisitation_learned_by_one_worker_reaches_the_other(
    two_workers_with_bundle: tuple[str, str],
) -> None:
    """One batch (one request, so one worker) teaches that x and y go together; soon both workers
    list y as "often viewed with x" — the other one from the shared log (``serving.shared``)."""
    from tests.serving import recommend_shop as shop

    base, _ = two_workers_with_bundle
    model, ext = shop.fitted().models["covisit"], shop.fitted().items.external_ids
    x, y = next(
        (ext[a], ext[b]) for a in range(len(ext)) for b in range(a + 1, len(ext))
        if model.pair_weight(a, b) == 0 and model.pair_weight(b, a) == 0
    )  # fmt: skip
    now = time.time() - 60
    batch = [
        {"event_id": f"{kind}{u}", "type": "view", "user_id": f"pair-{u}", "item_id": item,
         "timestamp": now + u + (kind == "y")}
        for u in range(6) for kind, item in (("x", x), ("y", y))
    ]  # fmt: skip
    r = _fresh(base, "POST", "/v1/events", json=batch)
    assert r.status_code == 200 and r.json()["accepted"] == 12, r.text
    taught = r.headers["x-shopflow-worker"]

    together: dict[str, bool] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (len(together) == 2 and all(together.values())):
        r = _fresh(base, "GET", f"/v1/items/{x}/similar", params={"n": 50})
        assert r.status_code == 200, r.text
        kinds = [
            reason["kind"] for it in r.json()["items"] if it["item_id"] == y
            for reason in it["reasons"]
        ]  # fmt: skip
        together[r.headers["x-shopflow-worker"]] = "viewed_together" in kinds
    assert len(together) == 2, f"only worker(s) {set(together)} answered"
    assert together[taught], "the worker that took the events did not learn the pair"
    assert all(together.values()), f"a worker never learned the pair: {together}"
