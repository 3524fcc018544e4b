"""The recommendation endpoints through the real app over HTTP: the answer contract of every
scenario, filters, bad input (a 4xx that says what is wrong, never a 500), admin, fallbacks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopflow.config import Settings
from shopflow.store.bundles import BundleStore
from tests.serving import recommend_shop as shop
from tests.serving.conftest import ClientFactory


@pytest.fixture
def client(settings: Settings, tmp_path: Path, make_client: ClientFactory) -> TestClient:
    shop.write(settings.data_dir / "bundles")
    c = make_client(shop.new_store(tmp_path / "db"))
    c.app.state.services.recommend.encoder = shop.HashEncoder()  # type: ignore[attr-defined]
    shop.with_sasrec(c.app.state.services.recommend)  # type: ignore[attr-defined]
    return c


def _item(i: int) -> str:
    return shop.fitted().shop.items[i].item_id


def _check_answer(body: dict[str, Any], version: str | None, n: int | None = None) -> None:
    assert set(body) == {"recommendation_id", "scenario", "strategy", "model_version", "items"}
    assert body["recommendation_id"].startswith("r-")
    assert body["model_version"] == version
    assert body["strategy"].startswith(body["scenario"] + ":")
    if n is not None:
        assert len(body["items"]) == n
    for it in body["items"]:
        assert isinstance(it["item_id"], str) and isinstance(it["score"], float)
        assert it["reasons"], it
        for r in it["reasons"]:
            assert set(r) == {"kind", "text", "evidence"} and r["text"]


def test_every_scenario_answers_with_the_contract(client: TestClient, settings: Settings) -> None:
    version = BundleStore(settings.data_dir / "bundles").current_version()
    user = shop.user_with_history()
    item = _item(10)
    calls = [
        ("GET", f"/v1/users/{user}/recommendations?scenario=home&n=7", None, "home"),
        ("GET", f"/v1/users/{user}/recommendations?scenario=new_arrivals&n=7", None,
         "new_arrivals"),
        ("GET", f"/v1/users/{user}/recommendations?scenario=trending&n=7", None, "trending"),
        ("GET", f"/v1/items/{item}/similar?n=7", None, "similar"),
        ("GET", f"/v1/items/{item}/complementary?n=7&user_id={user}", None, "complementary"),
        ("POST", "/v1/recommendations/cart", {"item_ids": [item, _item(11)], "user_id": user,
                                               "n": 7}, "cart"),
        ("GET", "/v1/search?q=board+game&n=3", None, "search"),
        ("GET", "/v1/trending?n=7", None, "trending"),
        ("GET", f"/v1/new-arrivals?user_id={user}&n=7", None, "new_arrivals"),
    ]  # fmt: skip
    ids = set()
    for method, url, body, scenario in calls:
        r = client.request(method, url, json=body)
        assert r.status_code == 200, (url, r.text)
        got = r.json()
        assert got["scenario"] == scenario
        _check_answer(got, version, None if scenario == "search" else 7)
        ids.add(got["recommendation_id"])
    assert len(ids) == len(calls)  # one id per answer


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "says"),
    [
        ("GET", "/v1/items/no-such-item/similar", None, 404,
         "'no-such-item' is not in the catalogue"),
        ("GET", "/v1/items/no-such-item/complementary", None, 404, "not in the catalogue"),
        ("POST", "/v1/recommendations/cart", {"item_ids": ["ghost"]}, 404, "'ghost'"),
        ("GET", "/v1/users/u/recommendations?n=-1", None, 422, "n: Input should be greater"),
        ("GET", "/v1/users/u/recommendations?n=0", None, 422, "n: Input should be greater"),
        ("GET", "/v1/users/u/recommendations?n=101", None, 422, "n: Input should be less"),
        ("GET", "/v1/users/u/recommendations?n=ten", None, 422, "n: Input should be a valid"),
        ("GET", "/v1/users/u/recommendations?offset=-3", None, 422, "offset"),
        ("GET", "/v1/trending?min_price=50&max_price=10", None, 422,
         "min_price: 50.0 is above max_price 10.0; swap them"),
        ("GET", "/v1/trending?min_price=-1", None, 422, "min_price"),
        ("GET", "/v1/trending?in_stock=maybe", None, 422, "in_stock"),
        ("GET", "/v1/users/u/recommendations?scenario=similar", None, 422,
         "use GET /v1/items/{item_id}/similar"),
        ("GET", "/v1/users/u/recommendations?scenario=teleport", None, 422, "'teleport' is not"),
        ("GET", "/v1/search?q=", None, 422, "q:"),
        ("GET", "/v1/search", None, 422, "q: Field required"),
        ("POST", "/v1/recommendations/cart", {"item_ids": []}, 422, "item_ids"),
        ("POST", "/v1/recommendations/cart", {"items": ["x"]}, 422, "item_ids: Field required"),
        ("POST", "/v1/recommendations/cart", {"item_ids": ["x"], "n": 500}, 422, "n:"),
        ("POST", "/v1/recommendations/cart", b"{not json", 400, "malformed JSON"),
        ("POST", "/v1/admin/reload?version=v-nope", None, 404, "no bundle 'v-nope'"),
    ],
)  # fmt: skip
def test_bad_input_is_a_4xx_that_says_what_is_wrong(
    client: TestClient, method: str, url: str, body: Any, status: int, says: str
) -> None:
    if isinstance(body, bytes):
        r = client.request(method, url, content=body, headers={"content-type": "application/json"})
    else:
        r = client.request(method, url, json=body)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]


def test_filters_over_http(client: TestClient) -> None:
    items = {it.item_id: it for it in shop.fitted().shop.items}
    base = client.get("/v1/trending?n=30").json()["items"]
    leaf = base[0]["category"]
    r = client.get(f"/v1/trending?category={leaf}&n=5").json()["items"]
    assert r and all(leaf in items[it["item_id"]].categories for it in r)
    top = items[base[0]["item_id"]].categories[0]  # a top-level category matches too
    assert all(
        items[it["item_id"]].categories[0] == top
        for it in client.get(f"/v1/trending?category={top.upper()}&n=5").json()["items"]
    )
    brand = base[0]["brand"]
    assert {it["brand"] for it in client.get(f"/v1/trending?brand={brand}&n=4").json()["items"]} \
        == {brand}  # fmt: skip
    r = client.get("/v1/trending?min_price=10&max_price=40&n=10").json()["items"]
    assert r and all(10 <= it["price"] <= 40 for it in r)
    first, second = base[0]["item_id"], base[1]["item_id"]
    r = client.get(f"/v1/trending?exclude={first},{second}&n=3").json()["items"]
    assert [it["item_id"] for it in r] == [it["item_id"] for it in base[2:5]]
    r = client.get(f"/v1/trending?exclude={first}&exclude={second}&n=3").json()["items"]
    assert [it["item_id"] for it in r] == [it["item_id"] for it in base[2:5]]
    sold_out = {i for i, it in items.items() if it.stock == 0}
    listed = {it["item_id"] for it in client.get("/v1/trending?n=100").json()["items"]}
    assert not listed & sold_out
    every = client.get("/v1/trending?n=100&in_stock=false").json()["items"]
    listed = {it["item_id"] for it in every}
    assert listed & sold_out


def test_paging_over_http(client: TestClient) -> None:
    user = shop.user_with_history()
    url = f"/v1/users/{user}/recommendations"
    whole = [it["item_id"] for it in client.get(f"{url}?n=10").json()["items"]]
    page2 = [it["item_id"] for it in client.get(f"{url}?n=5&offset=5").json()["items"]]
    assert page2 == whole[5:]


def test_consent_and_stock_changes_through_the_api_take_effect_at_once(
    client: TestClient,
) -> None:
    user = shop.user_with_history()
    url = f"/v1/users/{user}/recommendations?n=5"
    assert client.get(url).json()["strategy"] == "home:personal"
    r = client.put(f"/v1/users/{user}", json={"consent": {"personalization": False}})
    assert r.status_code == 200
    body = client.get(url).json()
    assert body["strategy"] == "home:non_personal"
    assert {r["kind"] for it in body["items"] for r in it["reasons"]} <= {"trending", "popular"}
    top = client.get("/v1/trending?n=1").json()["items"][0]["item_id"]
    record = client.get(f"/v1/items/{top}").json()
    keep = {k: record[k] for k in ("title", "brand", "categories", "price", "currency")}
    assert client.put(f"/v1/items/{top}", json={**keep, "stock": 0}).status_code == 200
    assert top not in [it["item_id"] for it in client.get("/v1/trending?n=50").json()["items"]]
    assert client.put(f"/v1/items/{top}", json={**keep, "stock": 9}).status_code == 200
    assert client.get("/v1/trending?n=1").json()["items"][0]["item_id"] == top


def test_admin_bundle_reload_and_impression_counts(client: TestClient, settings: Settings) -> None:
    bundles = BundleStore(settings.data_dir / "bundles")
    info = client.get("/v1/admin/bundle").json()
    assert info["version"] == bundles.current_version() == info["current_pointer"]
    assert set(info["models"]) >= set(bundles.manifest()["models"])
    assert info["items"] == len(shop.fitted().shop.items)
    r = client.post("/v1/admin/reload")
    assert r.status_code == 200
    assert r.json()["version"] == r.json()["previous"] == info["version"]
    client.get("/v1/trending?n=3")
    client.get("/v1/trending?n=3")
    stats = client.get("/v1/admin/impressions").json()["strategies"]
    assert stats["trending:trending"]["impressions"] >= 2
    assert stats["trending:trending"]["items_shown"] >= 6


def test_without_a_bundle_every_scenario_falls_back(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    client = make_client(shop.new_store(tmp_path / "db"))  # nothing trained: no bundles folder
    item = _item(4)
    for url in (
        "/v1/users/stranger/recommendations?n=5",
        f"/v1/items/{item}/similar?n=5",
        f"/v1/items/{item}/complementary?n=5",
        "/v1/trending?n=5",
        "/v1/new-arrivals?n=5",
        "/v1/search?q=game&n=5",
    ):
        r = client.get(url)
        assert r.status_code == 200, (url, r.text)
        _check_answer(r.json(), None)
    assert client.get("/v1/users/stranger/recommendations?n=5").json()["strategy"] == (
        "home:trending"
    )
    assert client.get(f"/v1/items/{item}/similar?n=5").json()["strategy"] == "similar:category"
    assert client.get("/v1/admin/bundle").json()["version"] is None


def test_the_openapi_document_lists_the_recommendation_routes(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for p in (
        "/v1/users/{user_id}/recommendations",
        "/v1/items/{item_id}/similar",
        "/v1/items/{item_id}/complementary",
        "/v1/recommendations/cart",
        "/v1/search",
        "/v1/trending",
        "/v1/new-arrivals",
        "/v1/admin/reload",
        "/v1/admin/bundle",
    ):
        assert p in paths, p


def test_the_openapi_document_describes_each_query_parameter(client: TestClient) -> None:
    """The list routes read their query by hand (serving.listquery): the document still lists
    every parameter, with its bounds, and search's ``q`` as required."""
    paths = client.get("/openapi.json").json()["paths"]
    home = {p["name"]: p for p in paths["/v1/users/{user_id}/recommendations"]["get"]["parameters"]}
    assert home["user_id"]["in"] == "path"
    assert {"scenario", "n", "offset", "category", "brand", "exclude", "in_stock"} <= home.keys()
    assert home["n"]["schema"]["minimum"] == 1 and home["n"]["schema"]["maximum"] == 100
    assert home["n"]["in"] == "query" and not home["n"]["required"]
    search = {p["name"]: p for p in paths["/v1/search"]["get"]["parameters"]}
    assert search["q"]["required"] and search["q"]["schema"]["maxLength"] == 500
    for route in ("/v1/trending", "/v1/new-arrivals", "/v1/items/{item_id}/similar"):
        names = {p["name"] for p in paths[route]["get"]["parameters"]}
        assert {"user_id", "n", "offset", "min_price", "max_price"} <= names, route
