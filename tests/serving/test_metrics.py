"""``/metrics`` through the real app: latency per route template, status counts, events, model."""

from __future__ import annotations

import os

from prometheus_client.parser import text_string_to_metric_families

from shopflow.serving.metrics import set_model_version
from shopflow.store.store import Store
from tests.serving.conftest import ClientFactory, ev


def scrape(client: object) -> tuple[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """The /metrics text and its samples keyed by (name, labels)."""
    r = client.get("/metrics")  # type: ignore[attr-defined]
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(r.text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return r.text, samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_events_by_outcome(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    _, before = scrape(client)
    client.post("/v1/events", json=[ev(1), ev(2)])
    r = client.post("/v1/events", json=[ev(2), ev(3), ev(4, type="teleport")])
    assert (r.json()["accepted"], r.json()["duplicates"], len(r.json()["rejected"])) == (1, 1, 1)
    _, after = scrape(client)
    for outcome, added in (("accepted", 3), ("duplicate", 1), ("rejected", 1)):
        delta = value(after, "shopflow_events_total", outcome=outcome) - value(
            before, "shopflow_events_total", outcome=outcome
        )
        assert delta == added, outcome


def test_latency_and_status_per_route_template_without_ids(
    sqlite_store: Store, make_client: ClientFactory
) -> None:
    client = make_client(sqlite_store)
    route = "/v1/users/{user_id}/events"
    _, before = scrape(client)
    client.post("/v1/events", json=[ev(1, user="shopper-secret-42")])
    assert client.get("/v1/users/shopper-secret-42/events").status_code == 200
    assert client.get("/v1/users/nobody-secret-7/events").status_code == 404
    assert client.get("/no/such/path/secret-9").status_code == 404
    text, after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    hist = "shopflow_http_request_duration_seconds"
    assert delta(f"{hist}_count", method="GET", route=route) == 2
    assert delta(f"{hist}_bucket", method="GET", route=route, le="+Inf") == 2
    assert 0 < delta(f"{hist}_sum", method="GET", route=route) < 10
    req = "shopflow_http_requests_total"
    assert delta(req, method="GET", route=route, status="200") == 1
    assert delta(req, method="GET", route=route, status="404") == 1
    assert delta(req, method="GET", route="unmatched", status="404") == 1
    assert delta(req, method="POST", route="/v1/events", status="200") == 1
    assert "secret" not in text  # no raw path, user id or item id in any label


def test_model_version_gauge(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    set_model_version("20240501-a")
    _, s = scrape(client)
    assert value(s, "shopflow_model_info", version="20240501-a") == 1
    set_model_version("20240502-b")
    _, s = scrape(client)
    assert value(s, "shopflow_model_info", version="20240501-a") == 0
    assert value(s, "shopflow_model_info", version="20240502-b") == 1
    set_model_version(None)
    _, s = scrape(client)
    assert value(s, "shopflow_model_info", version="20240502-b") == 0


def test_every_answer_names_its_worker(sqlite_store: Store, make_client: ClientFactory) -> None:
    client = make_client(sqlite_store)
    for path in ("/healthz", "/v1/items/nope", "/metrics"):
        assert client.get(path).headers["x-shopflow-worker"] == str(os.getpid())
