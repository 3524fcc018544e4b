"""Hybrid search over a small catalogue, with the real packaged sentence encoder."""

from __future__ import annotations

import time

import numpy as np
import pytest

from shopflow.ingest.schema import Item
from shopflow.text.encoder import TextEncoder
from shopflow.text.query import QueryVocabulary, parse_query
from shopflow.text.search import (
    SearchFilters,
    SearchIndex,
    competition_ranks,
    lexical_tokens,
    reciprocal_rank_fusion,
)

CATALOGUE = [
    Item(
        item_id="shoe-1",
        title="Trail running shoe with grippy sole",
        brand="Nike",
        price=45.0,
        categories="Sports > Shoes",
        stock=3,
    ),
    Item(
        item_id="shoe-2",
        title="Leather oxford dress shoe",
        brand="Clarks",
        price=120.0,
        categories="Fashion > Shoes",
        stock=0,
    ),
    Item(
        item_id="shoe-3",
        title="Kids light-up sneaker",
        brand="Skechers",
        price=35.0,
        categories="Kids > Shoes",
    ),
    Item(
        item_id="tee-1",
        title="Organic cotton crew neck t-shirt",
        brand="Patagonia",
        price=30.0,
        categories="Clothing > T-Shirts",
    ),
    Item(
        item_id="tee-2",
        title="Quick-dry training t-shirt",
        brand="Nike",
        price=25.0,
        categories="Clothing > T-Shirts",
    ),
    Item(
        item_id="kit-1",
        title="Cast iron skillet 12 inch",
        brand="Lodge",
        price=40.0,
        categories="Home > Kitchen",
    ),
    Item(
        item_id="kit-2",
        title="Stainless steel chef knife",
        brand="Wusthof",
        price=150.0,
        categories="Home > Kitchen",
    ),
    Item(
        item_id="kit-3",
        title="Electric kettle with temperature control",
        brand="Fellow",
        categories="Home > Kitchen",
    ),  # no price
    Item(
        item_id="gar-1",
        title="Cordless hedge trimmer ZX-9000",
        brand="Bosch",
        price=99.0,
        categories="Garden > Tools",
    ),
    Item(
        item_id="gar-2",
        title="Garden hose reel 50 ft",
        brand="Suncast",
        price=60.0,
        categories="Garden > Watering",
    ),
    Item(
        item_id="toy-1",
        title="Wooden train set with tracks",
        brand="Brio",
        price=55.0,
        categories="Toys > Wooden",
    ),
    Item(
        item_id="bk-1",
        title="Vegetarian cookbook: 100 quick dinners",
        brand="Penguin",
        price=22.0,
        categories="Books > Cooking",
    ),
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder()


@pytest.fixture(scope="module")
def index(encoder: TextEncoder) -> SearchIndex:
    return SearchIndex.build(CATALOGUE, encoder)


def test_rrf_arithmetic_by_hand() -> None:
    fused = reciprocal_rank_fusion(
        {"lexical": ["a", "b", "c"], "dense": ["c", "a"]}, k=10, weights={"lexical": 1, "dense": 2}
    )
    # c: 1/13 + 2/11 = 0.258741; a: 1/11 + 2/12 = 0.257576; b: 1/12 = 0.083333
    assert [key for key, _, _ in fused] == ["c", "a", "b"]
    assert [round(s, 6) for _, s, _ in fused] == [0.258741, 0.257576, 0.083333]
    assert fused[0][2] == {"lexical": 3, "dense": 1} and fused[2][2] == {"lexical": 2}
    # Shared (tied) ranks give equal fused scores.
    tied = reciprocal_rank_fusion({"lexical": {"x": 1, "y": 1, "z": 3}}, k=1)
    assert [(key, s) for key, s, _ in tied] == [("x", 0.5), ("y", 0.5), ("z", 0.25)]


def test_competition_ranks() -> None:
    scores = np.array([0.5, 0.9, -np.inf, 0.9, 0.1], dtype=np.float32)
    assert competition_ranks(scores, 10) == {1: 1, 3: 1, 0: 3, 4: 4}
    assert competition_ranks(scores, 2) == {1: 1, 3: 1}
    assert competition_ranks(np.full(3, -np.inf), 5) == {}


def test_lexical_tokens() -> None:
    assert lexical_tokens("The Trail Running Shoes of 2024") == ["trail", "running", "shoe", "2024"]


def test_exact_titles_find_their_item_first(index: SearchIndex) -> None:
    for item in CATALOGUE:
        hits = index.search(item.title, k=3)
        assert hits[0].item_id == item.item_id, (item.title, hits)
        assert hits[0].parts["lexical"] == 1 and hits[0].parts["dense"] == 1
        assert hits[0].score == pytest.approx(1.0)  # rank 1 in both = the best possible


def test_parts_say_which_retriever_found_an_item(index: SearchIndex) -> None:
    hits = index.search("zx-9000", k=3)
    assert hits[0].item_id == "gar-1" and hits[0].parts["lexical"] == 1
    # No word of "frying pan" is in any title: only the dense retriever can find the skillet.
    hits = index.search("frying pan", k=3)
    assert hits[0].item_id == "kit-1"
    assert "lexical" not in hits[0].parts and hits[0].parts["dense"] == 1


def test_filters_are_respected(index: SearchIndex) -> None:
    by_id = {it.item_id: it for it in CATALOGUE}
    hits = index.search("shoe", k=20, filters=SearchFilters(max_price=50))
    assert {h.item_id for h in hits} >= {"shoe-1", "shoe-3"}
    assert all(by_id[h.item_id].price is not None and by_id[h.item_id].price <= 50 for h in hits)
    hits = index.search("kitchen", k=20, filters=SearchFilters(min_price=30, max_price=100))
    assert hits[0].item_id == "kit-1"  # the kettle has no price, the knife costs 150
    assert all(30 <= by_id[h.item_id].price <= 100 for h in hits)
    assert len(hits) == sum(1 for it in CATALOGUE if it.price and 30 <= it.price <= 100)
    hits = index.search("shoe", k=20, filters=SearchFilters(category="shoes", in_stock=True))
    assert {h.item_id for h in hits} == {"shoe-1", "shoe-3"}  # shoe-2 is out of stock
    hits = index.search("shirt", k=20, filters=SearchFilters(brand="NIKE"))
    assert {h.item_id for h in hits} == {"shoe-1", "tee-2"}
    assert index.search("shoe", filters=SearchFilters(brand="nobody")) == []


def test_parsed_query_becomes_filters(index: SearchIndex) -> None:
    vocab = QueryVocabulary.from_items(CATALOGUE)
    hits = index.search(parse_query("nike t-shirt under 28", vocab), k=5)
    assert [h.item_id for h in hits] == ["tee-2"]
    # Parsed brand and category that leave nothing are dropped (the parsed price bound is kept)
    # rather than answering with nothing: no Clarks t-shirt exists.
    query = parse_query("clarks t-shirt under 100", vocab)
    assert (query.brand, query.category) == ("Clarks", "T-Shirts")
    hits = index.search(query, k=3)
    assert {h.item_id for h in hits[:2]} == {"tee-1", "tee-2"}
    assert "shoe-2" not in {h.item_id for h in hits}  # a Clarks shoe, but 120 is over the bound


def test_added_item_is_found_at_once_and_removed_item_never(encoder: TextEncoder) -> None:
    index = SearchIndex.build(CATALOGUE, encoder)
    new = Item(
        item_id="lamp-1",
        title="Glow in the dark unicorn night lamp",
        price=19.0,
        categories="Kids > Lighting",
    )
    built = index.last_rebuild_seconds
    index.add([new])
    assert "lamp-1" in index and len(index) == len(CATALOGUE) + 1
    hits = index.search("unicorn night lamp", k=3)
    assert hits[0].item_id == "lamp-1" and hits[0].parts["lexical"] == 1
    assert index.delta_rows == 1 and index.last_rebuild_seconds == built  # no BM25 rebuild
    # Upsert: same id, new title; the old text no longer finds it through BM25.
    index.add([new.model_copy(update={"title": "Solar garden lantern"})])
    assert len(index) == len(CATALOGUE) + 1
    assert index.search("solar lantern", k=1)[0].item_id == "lamp-1"
    assert "lamp-1" not in {
        h.item_id for h in index.search("unicorn", k=20) if "lexical" in h.parts
    }
    assert index.remove("lamp-1") and not index.remove("lamp-1")
    assert "lamp-1" not in {h.item_id for h in index.search("solar garden lantern", k=50)}


def test_user_vector_breaks_a_tie(encoder: TextEncoder) -> None:
    index = SearchIndex.build(CATALOGUE, encoder)
    query = "ceramic coffee mug"
    q = encoder.encode([query])[0].astype(np.float64)
    rng = np.random.default_rng(0)
    v = rng.normal(size=q.shape)
    v -= (v @ q) * q  # orthogonal to the query
    v *= 0.5 / np.linalg.norm(v)
    twins = [
        Item(item_id="mug-a", title="Ceramic coffee mug", price=12.0),
        Item(item_id="mug-b", title="Ceramic coffee mug", price=12.0),
    ]
    # Same text (same BM25 score) and the same cosine to the query, but different directions.
    index.add(twins, embeddings=np.stack([q - v, q + v]).astype(np.float32))
    plain = index.search(query, k=2)
    assert [h.item_id for h in plain] == ["mug-a", "mug-b"]
    assert plain[0].score == pytest.approx(plain[1].score)
    assert plain[0].parts == plain[1].parts == {"lexical": 1, "dense": 1}
    user = index.user_vector(["mug-b", "not-indexed"])
    np.testing.assert_allclose(user, (q + v) / np.sqrt(1.25), atol=1e-6)
    assert index.user_vector(["not-indexed"]) is None
    personal = index.search(query, k=2, user_vector=v, personalisation_weight=0.3)
    assert [h.item_id for h in personal] == ["mug-b", "mug-a"]
    assert personal[0].parts["user"] > 0 > personal[1].parts["user"]
    # (1 - w) * 1 + w * cos(user, mug-b), with cos = 0.5 / sqrt(1.25)
    assert personal[0].score == pytest.approx(0.7 + 0.3 * 0.5 / np.sqrt(1.25), abs=1e-5)


def test_enough_upserts_rebuild_bm25_in_the_background(encoder: TextEncoder) -> None:
    from shopflow.text.search import SearchConfig

    index = SearchIndex.build(CATALOGUE, encoder, SearchConfig(fold_min=3, fold_fraction=0.0))
    vectors = encoder.encode([CATALOGUE[0].title])
    for j in range(2):
        index.add([Item(item_id=f"lamp-{j}", title=f"Unicorn night lamp model {j}")], vectors)
        assert index._folding is None and index.delta_rows == j + 1  # under the threshold
    main = index._lexical._main
    index.add([Item(item_id="lamp-2", title="Unicorn night lamp model 2")], vectors)
    assert {h.item_id for h in index.search("unicorn lamp", k=3)} == {"lamp-0", "lamp-1", "lamp-2"}
    deadline = time.monotonic() + 30
    while index.delta_rows and time.monotonic() < deadline:  # the third upsert started a rebuild
        time.sleep(0.05)
    assert index.delta_rows == 0 and index._lexical._main is not main
    assert {h.item_id for h in index.search("unicorn lamp", k=3)} == {"lamp-0", "lamp-1", "lamp-2"}


def test_taste_reorders_by_liked_brand_and_keeps_filters(encoder: TextEncoder) -> None:
    from shopflow.text.personal import UserTaste

    index = SearchIndex.build(CATALOGUE, encoder)
    query = parse_query("t-shirt under 40", QueryVocabulary.from_items(CATALOGUE))
    plain = [h.item_id for h in index.search(query, k=2)]
    nike = [h.item_id for h in index.search(query, k=2, taste=UserTaste(brands={"nike": 1.0}))]
    pata = [h.item_id for h in index.search(query, k=2, taste=UserTaste(brands={"patagonia": 1}))]
    assert set(plain) == set(nike) == set(pata) == {"tee-1", "tee-2"}  # both under 40
    assert nike[0] == "tee-2" and pata[0] == "tee-1"
