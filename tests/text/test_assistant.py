"""The shopping assistant without HTTP: reading needs from turns, adding them up, planning against
a catalogue whose right answers are known, the template reply, the LLM's refinement and the checks
on its reply, and the chat client against a real local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopflow.config import AssistantSettings, load_settings
from shopflow.errors import ValidationFailed
from shopflow.ingest.demo import DemoConfig, generate
from shopflow.ingest.schema import Item
from shopflow.retrieval.items import ItemTable
from shopflow.serving.recommend import RecommendService
from shopflow.store.idmap import IdMap
from shopflow.store.online import MemoryState
from shopflow.store.store import Store
from shopflow.text.assistant import Assistant
from shopflow.text.assistant_llm import (
    ChatEndpoint,
    Grounding,
    LLMFailure,
    apply_refinement,
    check_reply,
    normalise_title,
)
from shopflow.text.assistant_needs import Needs, accumulate, read_turn
from shopflow.text.assistant_plan import compose_reply, plan
from shopflow.text.query import QueryVocabulary
from tests.text.llm_server import FakeLLM

VOCAB = QueryVocabulary.from_items(
    generate(DemoConfig(seed=3, n_users=5, n_items=120, days=3)).items
)


CASES = [
    (
        "I'm looking for a birthday gift for my dad",
        {"recipient": "father", "occasion": "birthday", "gift": True},
    ),
    ("running shoes under $50", {"max_price": 50.0, "keywords": ["running", "shoes"]}),
    ("sneakers between 20 and 40", {"category": "Sneakers", "min_price": 20.0, "max_price": 40.0}),
    (
        "no more than 40 for my mum, she loves coffee",
        {"max_price": 40.0, "recipient": "mother", "keywords": ["coffee"]},
    ),
    (
        "grey trainers around 60",
        {"min_price": 48.0, "max_price": 72.0, "attributes": {"color": "grey"}},
    ),
    (
        "Please show me Stride sneakers size 10",
        {"brand": "Stride", "category": "Sneakers", "attributes": {"size": "10"}},
    ),
    (
        "a present for the kids for Christmas, budget is 30",
        {"recipient": "child", "occasion": "christmas", "max_price": 30.0},
    ),
    ("Father's Day ideas", {"occasion": "fathers_day", "recipient": None, "gift": True}),
    (
        "anything black for me",
        {"recipient": "self", "gift": False, "attributes": {"color": "black"}},
    ),
    (
        "50 or more, for my wife's anniversary",
        {"min_price": 50.0, "recipient": "wife", "occasion": "anniversary"},
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_read_turn_finds_needs_and_constraints(text: str, expected: dict[str, object]) -> None:
    needs = read_turn(text, VOCAB).needs.as_dict()
    assert {k: needs[k] for k in expected} == expected, needs


def test_words_of_a_catalogue_phrase_stay_product_words() -> None:
    vocab = QueryVocabulary(categories=["Baby Shoes", "Gift Cards"], brands=["Mum & Co"])
    a = read_turn("baby shoes for my sister", vocab).needs
    assert (a.category, a.recipient) == ("Baby Shoes", "sister")
    b = read_turn("gift cards please", vocab).needs
    assert (b.category, b.keywords) == ("Gift Cards", [])
    c = read_turn("something from mum & co for my mum", vocab).needs
    assert (c.brand, c.recipient) == ("Mum & Co", "mother")


def test_needs_add_up_and_later_values_replace_earlier_ones() -> None:
    turns = ["a gift for my dad", "under 30", "board games"]
    n = accumulate(turns, VOCAB)
    assert (n.recipient, n.max_price, n.category, n.gift) == ("father", 30.0, "Board Games", True)
    assert accumulate([*turns, "actually under 50"], VOCAB).max_price == 50.0
    n = accumulate(["over 20", "under 60"], VOCAB)
    assert (n.min_price, n.max_price) == (20.0, 60.0)  # one bound each: both kept
    n = accumulate(["over 80", "under 60"], VOCAB)
    assert (n.min_price, n.max_price) == (None, 60.0)  # a contradiction: the later bound wins
    n = accumulate(["stride sneakers under 90", "any brand", "any price"], VOCAB)
    assert (n.brand, n.max_price, n.category) == (None, None, "Sneakers")
    n = accumulate(["waterproof lightweight", "tents"], VOCAB)
    assert (n.category, n.keywords) == ("Tents", [])  # a new category starts the words afresh
    n = accumulate(["red socks for my mum", "start over, mugs"], VOCAB)
    assert n == Needs(category="Mugs")


def _table() -> ItemTable:
    return ItemTable.build(
        IdMap(["s1", "s2", "s3", "t1", "t2", "m1"]),
        titles=["Wool Socks", "Run Socks", "Silk Socks", "Dome Tent", "Trail Tent", "Mug"],
        paths=[["Socks"]] * 3 + [["Tents"]] * 2 + [["Mugs"]],
        brands=["Stride", "Stride", "Lyre", "Camp", "Camp", "Clay"],
        price=[6.0, 9.0, 30.0, 150.0, 220.0, 8.0],
        stock=[3, 3, 3, 1, 1, 0],
    )


def test_plan_applies_what_can_be_met_and_widens_a_budget_to_the_nearest_prices() -> None:
    t = _table()
    f, applied, unmet = plan(Needs(category="Socks", max_price=10.0), t, n=2)
    assert (f.category, f.max_price, unmet) == ("Socks", 10.0, [])
    assert [a.name for a in applied] == ["category", "budget"]
    f, _, (u,) = plan(Needs(category="Socks", max_price=5.0), t, n=2)
    assert f.max_price == 9.0 and u.nearest == {"min_price": None, "max_price": 9.0}
    assert u.text == "nothing in Socks costs at most 5; the nearest start at 6, so these go up to 9"
    f, _, (u,) = plan(Needs(category="Tents", min_price=300.0), t, n=1)
    assert f.min_price == 220.0 and "the dearest is 220, so these start at 220" in u.text
    f, _, (u,) = plan(Needs(category="Tents", brand="Stride"), t, n=3)
    assert (f.brand, u.name, u.text) == (None, "brand", "no Stride item in Tents is in stock")
    f, _, (u,) = plan(Needs(category="Mugs"), t, n=3)
    assert (f.category, u.text) == (None, "nothing in Mugs is in stock")


def test_template_reply_is_deterministic_and_says_what_was_not_met() -> None:
    why = "Wool Socks (Stride, Socks, $6.00): Popular in Socks."
    picks = [{"item_id": "s1", "title": "Wool Socks", "why": why}]
    needs = Needs(category="Socks", max_price=5.0, recipient="father", occasion="birthday")
    _, _, unmet = plan(needs, _table(), n=1)
    reply = compose_reply(needs, picks, unmet)
    assert reply == compose_reply(needs.copy(), [dict(p) for p in picks], unmet)
    assert reply.splitlines() == [
        "Here is 1 pick in Socks for your father's birthday:",
        "1. Wool Socks (Stride, Socks, $6.00): Popular in Socks.",
        "Note: nothing in Socks costs at most 5; the nearest start at 6, so these go up to 6.",
    ]
    assert compose_reply(Needs(occasion="christmas", gift=True), [], []).startswith(
        "I found no gift ideas for Christmas."
    )


def test_llm_refinement_takes_only_values_the_catalogue_knows() -> None:
    base = Needs(category="Socks", max_price=30.0, recipient="father")
    answer = {
        "category": "SPACESHIPS", "brand": "stride", "min_price": 50, "max_price": "x",
        "recipient": "the neighbour", "occasion": "Birthday", "color": "Navy", "keywords": ["wool"],
    }  # fmt: skip
    got = apply_refinement(base, answer, VOCAB)
    assert (got.category, got.brand, got.recipient, got.occasion) == (
        "Socks", "Stride", "father", "birthday",
    )  # fmt: skip
    assert (got.min_price, got.max_price) == (None, 30.0)  # 50..30 would contradict: refused
    assert got.attributes == {"color": "navy"} and got.keywords == ["wool"]
    assert base == Needs(category="Socks", max_price=30.0, recipient="father")  # not mutated


def _grounding() -> Grounding:
    titles = {normalise_title(t): i for i, t in [("s1", "Wool Socks"), ("t1", "Dome Tent"),
                                                 ("h1", "Seen Hat")]}  # fmt: skip
    return Grounding(
        ids={"s1", "h1"}, titles={"Wool Socks", "Seen Hat"}, amounts=[6.0, 5.0],
        pick_ids={"s1"}, pick_titles={"Wool Socks"}, catalogue_ids=IdMap(["s1", "t1", "h1"]),
        catalogue_titles=titles,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("The Wool Socks ($6.00) are warm; you liked the Seen Hat.", None),
        ("Item s1 at 6.00 fits a budget of $5.", None),
        ("The Wool Socks, or the Dome Tent for camping.", "'dome tent' (item t1)"),
        ("Take s1 or t1.", "item 't1'"),
        ("The Wool Socks for $4.99.", "the amount 4.99"),
        ("Something warm for your feet.", "names none of the picks"),
        ("x" * 2_001, "longer than 2000"),
    ],
)
def test_check_reply_refuses_what_the_picks_do_not_ground(reply: str, problem: str | None) -> None:
    got = check_reply(reply, _grounding())
    assert got is None if problem is None else (got is not None and problem in got), got


def test_chat_endpoint_against_a_real_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_LLM_KEY", "sk-test-123")
    with FakeLLM(lambda p: '```json\n{"reply": "ok"}\n```') as llm:
        s = AssistantSettings(llm_url=llm.url + "/", llm_model="m1", llm_api_key_env="SHOP_LLM_KEY")
        chat = ChatEndpoint.from_settings(s)
        assert chat is not None and "sk-test" not in repr(chat)
        assert chat.ask_json("system", {"task": "reply"}) == {"reply": "ok"}
    assert llm.headers[0]["Authorization"] == "Bearer sk-test-123"
    assert (
        llm.requests[0]["model"] == "m1" and llm.requests[0]["messages"][0]["content"] == "system"
    )
    assert ChatEndpoint.from_settings(AssistantSettings()) is None
    with FakeLLM(lambda p: "[1, 2]") as llm, pytest.raises(LLMFailure, match="not an object"):
        ChatEndpoint(llm.url, "m").ask_json("s", {"task": "reply"})
    with FakeLLM(lambda p: "no JSON here") as llm, pytest.raises(LLMFailure, match="invalid JSON"):
        ChatEndpoint(llm.url, "m").ask_json("s", {"task": "reply"})
    slow = FakeLLM(lambda p: "{}", delay=1.0)
    with slow, pytest.raises(LLMFailure, match=r"timeout after 0\.2 s"):
        ChatEndpoint(slow.url, "m", timeout=0.2).ask_json("s", {"task": "reply"})
    with pytest.raises(LLMFailure, match="request failed: ConnectError"):
        ChatEndpoint("http://127.0.0.1:9/v1", "m", timeout=2.0).ask_json("s", {"task": "x"})


# -- the assistant over a bare catalogue (no trained bundle), without HTTP ------------------------
def _item(item_id: str, title: str, brand: str, path: str, price: float, stock: int) -> Item:
    return Item(
        item_id=item_id, title=title, brand=brand, categories=path.split("/"), price=price,
        stock=stock, currency="USD",
    )  # fmt: skip


SHOP = [
    _item("m-red", "Red Stoneware Mug", "Clay", "Home/Mugs", 9.0, 4),
    _item("m-blue", "Blue Stoneware Mug", "Clay", "Home/Mugs", 12.0, 4),
    _item("m-big", "Red Giant Mug", "Pott", "Home/Mugs", 25.0, 4),
    _item("t-1", "Red Dome Tent", "Camp", "Outdoor/Tents", 150.0, 2),
    _item("s-1", "Wool Socks", "Stride", "Fashion/Socks", 7.0, 0),
]


@pytest.fixture
def assistant(tmp_path: Path) -> Iterator[Assistant]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'shop.db'}")
    store.catalogue.upsert(SHOP)
    service = RecommendService(store, MemoryState(), load_settings(data_dir=tmp_path / "data"))
    service.start()
    yield Assistant(service)
    service.close()
    store.close()


def test_assistant_on_a_catalogue_whose_answer_is_known(assistant: Assistant) -> None:
    a = assistant.answer("a red mug under 20 for my sister", n=5)
    assert [it["item_id"] for it in a.items] == ["m-red"]  # red, a mug, at most 20, in stock
    assert (a.needs.category, a.needs.max_price, a.needs.recipient) == ("Mugs", 20.0, "sister")
    assert a.engine == "offline" and a.strategy == "assistant:offline"
    assert a.reply.splitlines()[:2] == [
        "Here is 1 gift idea in Mugs for your sister, in red, at most 20:",
        "1. Red Stoneware Mug (Clay, Mugs, $9.00): Matches “red”.",
    ]
    again = assistant.answer("a red mug under 20 for my sister", n=5)
    assert (again.reply, again.items) == (a.reply, a.items)  # deterministic
    b = assistant.answer("under 5", [{"role": "user", "content": "mugs"}], n=2)
    assert {it["item_id"] for it in b.items} == {"m-red", "m-blue"}  # the two nearest prices
    assert [u.name for u in b.unmet] == ["budget"]
    assert b.unmet[0].nearest == {"min_price": None, "max_price": 12.0}
    c = assistant.answer("under 10", [{"role": "user", "content": "blue mugs"}], n=5)
    assert [it["item_id"] for it in c.items] == ["m-red"]  # the budget holds, the colour gives
    assert [u.value for u in c.unmet] == [{"color": "blue"}]
    socks = assistant.answer("socks", n=2)  # every sock is sold out
    assert socks.unmet[0].text == "nothing in Socks is in stock"
    assert "s-1" not in [it["item_id"] for it in socks.items]
    with pytest.raises(ValidationFailed, match="message: is empty"):
        assistant.answer("  ")
    with pytest.raises(ValidationFailed, match="n: must be between 1 and 20"):
        assistant.answer("mugs", n=50)


def test_assistant_llm_path_falls_back_when_the_reply_quotes_an_unknown_price(
    assistant: Assistant,
) -> None:
    def answer(payload: dict[str, object]) -> str:
        if payload["task"] == "constraints":
            return json.dumps({"max_price": 13})
        return json.dumps({"reply": "The Blue Stoneware Mug is only $2.00 today!"})

    with FakeLLM(answer) as llm:
        assistant.settings = AssistantSettings(llm_url=llm.url)
        assistant.chat = ChatEndpoint.from_settings(assistant.settings)
        a = assistant.answer("blue mugs", n=3)
    assert a.engine == "offline" and "the amount 2" in (a.fallback_reason or "")
    assert a.needs.max_price is None  # the offline path: the rules' needs, not the LLM's
    assert a.items[0]["item_id"] == "m-blue"
