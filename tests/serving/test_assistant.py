"""POST /v1/assistant through the real app over HTTP, on the demo shop with a trained bundle:
constraints respected on real catalogue data, added up over turns, unmet ones reported with the
nearest offer, and the LLM path against a real local OpenAI-compatible server (success, a reply
that names an item outside the picks, a timeout, invalid JSON)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopflow.config import Settings, load_settings
from shopflow.ingest.schema import Item
from tests.serving import recommend_shop as shop
from tests.serving.conftest import ClientFactory
from tests.text.llm_server import FakeLLM


def _start(make_client: ClientFactory, settings: Settings, tmp_path: Path) -> TestClient:
    shop.write(settings.data_dir / "bundles")
    c = make_client(shop.new_store(tmp_path / "db"), settings_=settings)
    c.app.state.services.recommend.encoder = shop.HashEncoder()  # type: ignore[attr-defined]
    shop.with_sasrec(c.app.state.services.recommend)  # type: ignore[attr-defined]
    return c


@pytest.fixture
def client(settings: Settings, tmp_path: Path, make_client: ClientFactory) -> TestClient:
    return _start(make_client, settings, tmp_path)


def _llm_client(
    make_client: ClientFactory, tmp_path: Path, url: str, timeout: float = 5.0
) -> TestClient:
    s = load_settings(
        data_dir=tmp_path / "data",
        assistant={"llm_url": url, "llm_model": "test-model", "llm_timeout_seconds": timeout},
    )
    return _start(make_client, s, tmp_path)


def _in_stock(category: str, max_price: float | None = None) -> dict[str, Item]:
    """The demo catalogue's in-stock items of a leaf category (at most ``max_price``)."""
    return {
        it.item_id: it
        for it in shop.fitted().shop.items
        if it.categories[-1] == category
        and (it.stock is None or it.stock > 0)
        and (max_price is None or (it.price is not None and it.price <= max_price))
    }


def _ask(client: TestClient, message: str, *said: str, **extra: Any) -> dict[str, Any]:
    turns = [{"role": "user", "content": t} for t in said]
    r = client.post("/v1/assistant", json={"message": message, "conversation": turns, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_running_shoes_under_a_budget_are_only_sneakers_at_or_below_it(
    client: TestClient,
) -> None:
    allowed = _in_stock("Sneakers", 70.0)
    assert len(allowed) >= 2  # the demo shop has cheap and dear sneakers
    got = _ask(client, "running shoes under 70", n=10)
    c = got["constraints"]
    assert (c["category"], c["max_price"], c["keywords"]) == (
        "Sneakers",
        70.0,
        ["running", "shoes"],
    )
    assert {"name": "category", "value": "Sneakers", "text": "inferred from “running shoes”"} in (
        got["applied"]
    )
    ids = [it["item_id"] for it in got["items"]]
    assert ids and set(ids) <= set(allowed)
    assert len(ids) == min(10, len(allowed))  # the search, topped up by the home feed
    for it in got["items"]:
        assert it["category"] == "Sneakers" and it["price"] <= 70.0
        assert it["reasons"] and it["title"] in it["why"] and f"${it['price']:.2f}" in it["why"]
        assert it["why"] in got["reply"]  # each pick explained from its own data
    assert got["engine"] == "offline" and got["fallback_reason"] is None
    assert got["scenario"] == "assistant" and got["strategy"] == "assistant:offline"
    assert got["recommendation_id"].startswith("r-") and got["unmet"] == []


def test_constraints_add_up_over_turns_and_a_later_budget_replaces_the_earlier(
    client: TestClient,
) -> None:
    first = _ask(client, "a birthday gift for my dad")
    assert first["recognised"]["recipient"] == "father"
    assert first["constraints"]["occasion"] == "birthday" and first["constraints"]["gift"]
    said = ["a birthday gift for my dad", "he likes board games"]
    second = _ask(client, "under 40", *said)
    c = second["constraints"]
    assert (c["recipient"], c["occasion"], c["category"], c["max_price"]) == (
        "father", "birthday", "Board Games", 40.0,
    )  # fmt: skip
    assert second["recognised"]["category"] is None  # "under 40" alone names only the budget
    assert second["reply"].startswith("Here are")
    assert "gift ideas in Board Games for your father's birthday, at most 40:" in second["reply"]
    assert {it["item_id"] for it in second["items"]} <= set(_in_stock("Board Games", 40.0))
    third = _ask(client, "actually no more than 20", *said, "under 40")
    assert third["constraints"]["max_price"] == 20.0
    assert third["constraints"]["category"] == "Board Games"
    cheap = _in_stock("Board Games", 20.0)
    assert cheap and {it["item_id"] for it in third["items"]} <= set(cheap)
    again = _ask(client, "start over: a tent", *said, "under 40")
    assert again["constraints"]["category"] == "Tents"
    assert again["constraints"]["max_price"] is None and again["constraints"]["recipient"] is None


def test_a_budget_nothing_meets_is_reported_with_the_nearest_prices(client: TestClient) -> None:
    socks = sorted(p for p in (it.price for it in _in_stock("Socks").values()) if p is not None)
    assert socks[0] > 5  # nothing in the demo shop's socks costs 5 or less
    got = _ask(client, "socks under 5", n=3)
    (unmet,) = got["unmet"]
    assert unmet["name"] == "budget" and unmet["value"] == {"min_price": None, "max_price": 5.0}
    assert unmet["nearest"] == {"min_price": None, "max_price": socks[2]}
    assert f"nothing in Socks costs at most 5; the nearest start at {socks[0]:g}" in unmet["text"]
    assert unmet["text"] in got["reply"]
    assert sorted(it["price"] for it in got["items"]) == socks[:3]
    assert all(it["category"] == "Socks" for it in got["items"])


def test_brand_and_colour_apply_or_are_reported(client: TestClient) -> None:
    grey = _ask(client, "grey trainers", n=4)
    assert grey["constraints"]["attributes"] == {"color": "grey"}
    assert grey["items"] and all(
        "grey" in it["title"].lower() and it["category"] == "Sneakers" for it in grey["items"]
    )
    none = _ask(client, "purple tents", n=3)
    assert [f["value"] for f in none["unmet"]] == [{"color": "purple"}]
    assert len(none["items"]) == 3 and all(it["category"] == "Tents" for it in none["items"])
    assert "Note: no matching item is purple." in none["reply"]
    absent = _ask(client, "stride tents", n=3)
    assert absent["unmet"][0]["name"] == "brand" and absent["items"]
    assert all(it["brand"] != "Stride" for it in absent["items"])


def test_unknown_user_gets_an_answer_and_a_known_user_their_history(client: TestClient) -> None:
    ghost = _ask(client, "a present for my wife", user_id="nobody-we-know", n=4)
    assert len(ghost["items"]) == 4 and ghost["constraints"]["recipient"] == "wife"
    assert ghost["retrieval"] == ["home:trending"]
    known = _ask(client, "something nice", user_id=shop.user_with_history(), n=4)
    assert known["retrieval"] == ["home:personal"] and len(known["items"]) == 4


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"message": ""}, 422, "message: Value error, the message is empty"),
        ({"message": "   "}, 422, "the message is empty: say what you are looking for"),
        ({"message": "socks", "n": 0}, 422, "n: Input should be greater than or equal to 1"),
        ({"message": "socks", "n": 21}, 422, "n: Input should be less than or equal to 20"),
        ({"conversation": []}, 422, "message: Field required"),
        ({"message": "x", "conversation": [{"role": "bot", "content": "hi"}]}, 422, "role"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    client: TestClient, body: dict[str, Any], status: int, says: str
) -> None:
    r = client.post("/v1/assistant", json=body)
    assert r.status_code == status, r.text
    assert says in r.json()["detail"]


# -- the LLM path, against a real local OpenAI-compatible server ---------------------------------
def _payload(request: dict[str, Any]) -> dict[str, Any]:
    return json.loads(request["messages"][-1]["content"])


def _good_llm(payload: dict[str, Any]) -> str:
    if payload["task"] == "constraints":  # the LLM understands "coffee gear" better than the rules
        return json.dumps({"category": "Coffee Makers", "max_price": 150, "brand": "NoSuchBrand"})
    first = payload["picks"][0]
    return json.dumps({"reply": f"For your dad: the {first['title']} at ${first['price']:.2f}."})


def test_llm_refines_the_needs_and_writes_the_reply(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    with FakeLLM(_good_llm) as llm:
        client = _llm_client(make_client, tmp_path, llm.url)
        got = _ask(client, "coffee gear for my dad", n=3)
    assert llm.tasks() == ["constraints", "reply"]
    assert llm.requests[0]["model"] == "test-model" and llm.requests[0]["temperature"] == 0
    assert got["engine"] == "llm" and got["fallback_reason"] is None
    assert got["strategy"] == "assistant:llm"
    c = got["constraints"]
    assert (c["category"], c["max_price"], c["brand"]) == ("Coffee Makers", 150.0, None)
    allowed = _in_stock("Coffee Makers", 150.0)
    assert got["items"] and {it["item_id"] for it in got["items"]} <= set(allowed)
    first = got["items"][0]
    assert got["reply"] == f"For your dad: the {first['title']} at ${first['price']:.2f}."
    reply_request = _payload(llm.requests[1])
    assert [p["item_id"] for p in reply_request["picks"]] == [it["item_id"] for it in got["items"]]


def test_a_reply_naming_an_item_outside_the_picks_falls_back_to_offline(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    tent = next(it for it in shop.fitted().shop.items if it.categories[-1] == "Tents")

    def inventive(payload: dict[str, Any]) -> str:
        if payload["task"] == "constraints":
            return "{}"
        return json.dumps({"reply": f"Try the {tent.title}, everyone loves it."})

    with FakeLLM(inventive) as llm:
        client = _llm_client(make_client, tmp_path, llm.url)
        got = _ask(client, "board games under 40", n=3)
    assert llm.tasks() == ["constraints", "reply"]
    assert got["engine"] == "offline" and got["strategy"] == "assistant:offline"
    assert "not among the picks" in got["fallback_reason"]
    assert tent.title.lower() in got["fallback_reason"]
    assert tent.title not in got["reply"] and got["reply"].startswith("Here are 3 picks")
    assert all(it["category"] == "Board Games" and it["price"] <= 40 for it in got["items"])


def test_an_llm_timeout_falls_back_to_offline_within_the_timeout(
    make_client: ClientFactory, tmp_path: Path
) -> None:
    with FakeLLM(_good_llm, delay=3.0) as llm:
        client = _llm_client(make_client, tmp_path, llm.url, timeout=0.3)
        _ask(client, "warm up the search index")  # (also times out)
        start = time.perf_counter()
        got = _ask(client, "sneakers under 100", n=3)
        took = time.perf_counter() - start
    assert got["engine"] == "offline" and got["fallback_reason"].startswith("timeout after 0.3 s")
    assert took < 2.0  # one timed-out call, not the server's 3 s
    assert got["constraints"]["category"] == "Sneakers"  # the rules' needs
    assert all(it["category"] == "Sneakers" and it["price"] <= 100 for it in got["items"])


@pytest.mark.parametrize(
    ("answer", "status", "reason"),
    [
        (lambda p: "Sure! Here are some ideas.", 200, "invalid JSON in the answer"),
        (lambda p: "{}" if p["task"] == "constraints" else '{"text": "hi"}', 200, 'no "reply"'),
        (lambda p: "{}", 503, "HTTP 503"),
    ],
)
def test_invalid_llm_answers_fall_back_to_offline(
    make_client: ClientFactory, tmp_path: Path, answer: Any, status: int, reason: str
) -> None:
    with FakeLLM(answer, status=status) as llm:
        client = _llm_client(make_client, tmp_path, llm.url)
        got = _ask(client, "socks", n=2)
    assert got["engine"] == "offline" and reason in got["fallback_reason"]
    assert len(got["items"]) == 2 and got["reply"].startswith("Here are 2 picks in Socks")
