"""Query understanding against a small hand-made catalogue vocabulary."""

from __future__ import annotations

import pytest

from shopflow.ingest.schema import Item
from shopflow.text.query import QueryVocabulary, normalise_token, parse_query


@pytest.fixture(scope="module")
def vocab() -> QueryVocabulary:
    items = [
        Item(
            item_id="1",
            title="Nike Air running shoe",
            brand="Nike",
            categories="Sports > Shoes",
            attributes={"color": "red", "size": "42"},
        ),
        Item(
            item_id="2",
            title="Adidas cotton tee",
            brand="Adidas",
            categories="Clothing > T-Shirts",
            attributes={"colour": "navy blue", "size": "XL"},
        ),
        Item(
            item_id="3",
            title="New Balance 574 trainer",
            brand="New Balance",
            categories="Sports > Shoes",
            attributes={"color": ["white", "grey"]},
        ),
        Item(
            item_id="4",
            title="Under Armour hoodie",
            brand="Under Armour",
            categories="Clothing > Hoodies",
        ),
        Item(
            item_id="5",
            title="Bike pump with gauge, new model",
            brand="Puma",
            categories="Sports > Cycling",
        ),
    ]
    return QueryVocabulary.from_items(items)


def test_vocabulary_from_items(vocab: QueryVocabulary) -> None:
    assert vocab.brands == ["Nike", "Adidas", "New Balance", "Under Armour", "Puma"]
    assert "T-Shirts" in vocab.categories and "Sports" in vocab.categories
    assert vocab.attributes["color"] == ["red", "navy blue", "white", "grey"]  # colour folded
    assert vocab.attributes["size"] == ["42", "XL"]
    assert {"bike", "pump", "new", "running"} <= vocab.words


def test_running_shoes_under_50(vocab: QueryVocabulary) -> None:
    q = parse_query("running shoes under 50", vocab)
    assert (q.category, q.max_price, q.min_price, q.text) == ("Shoes", 50.0, None, "running")
    assert q.brand is None and q.attributes == {}


def test_brand_colour_size_and_range(vocab: QueryVocabulary) -> None:
    q = parse_query("nike red t-shirt size xl 20-30", vocab)
    assert q.brand == "Nike"
    assert q.category == "T-Shirts"
    assert q.attributes == {"color": "red", "size": "XL"}
    assert (q.min_price, q.max_price) == (20.0, 30.0)
    assert q.text == "" and q.corrections == []


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("hoodie below $50", None, 50.0),
        ("hoodie less than 50 dollars", None, 50.0),
        ("hoodie 50–100", 50.0, 100.0),
        ("hoodie $100-$50", 50.0, 100.0),
        ("hoodie between 50 and 100", 50.0, 100.0),
        ("hoodie from 20 to 45.50", 20.0, 45.5),
        ("hoodie over 20", 20.0, None),
        ("hoodie from 20", 20.0, None),
        ("hoodie at least 20 and under 60", 20.0, 60.0),
        ("12-gauge 2-3/4 in. hoodie", None, None),  # product numbers are not prices
    ],
)
def test_price_bounds(
    vocab: QueryVocabulary, text: str, low: float | None, high: float | None
) -> None:
    q = parse_query(text, vocab)
    assert (q.min_price, q.max_price) == (low, high)
    assert q.category == "Hoodies"


def test_misspelt_brands_are_corrected(vocab: QueryVocabulary) -> None:
    q = parse_query("addidas tee", vocab)
    assert q.brand == "Adidas" and q.corrections == [("addidas", "Adidas")] and q.text == "tee"
    q = parse_query("new balanse trainers", vocab)
    assert q.brand == "New Balance" and q.text == "trainers"
    q = parse_query("under armor hoodie over 30", vocab)
    assert (q.brand, q.category, q.min_price) == ("Under Armour", "Hoodies", 30.0)


def test_no_false_brand_from_ordinary_words(vocab: QueryVocabulary) -> None:
    # "bike" is one edit from "Nike", "pump" from "Puma", "new" starts "New Balance", "under" starts
    # "Under Armour": none of them may become a brand.
    for text in ("bike pump", "new hoodie", "under the sea", "dike", "pumas"):
        q = parse_query(text, vocab)
        assert q.brand is None or text == "pumas", text
    assert parse_query("pumas", vocab).brand == "Puma"  # a plural of the brand is the brand


def test_size_forms(vocab: QueryVocabulary) -> None:
    assert parse_query("shoes size 42", vocab).attributes == {"size": "42"}
    assert parse_query("xxl hoodie", vocab).attributes == {"size": "XXL"}
    assert parse_query("navy blue hoodie", vocab).attributes == {"color": "navy blue"}


def test_last_category_wins_and_free_text_keeps_order(vocab: QueryVocabulary) -> None:
    q = parse_query("cycling shoes for rainy days", vocab)
    assert q.category == "Shoes"
    assert q.text == "cycling rainy days"
    assert q.search_text == "cycling rainy days Shoes"


def test_normalise_token() -> None:
    assert [
        normalise_token(t)
        for t in ["Shoes", "T-Shirts", "boxes", "Batteries", "glass", "bus", "hoodies"]
    ] == [
        "shoe",
        "tshirt",
        "box",
        "batteri",
        "glass",
        "bus",
        "hoodi",
    ]
