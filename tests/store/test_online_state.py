"""Contract tests of the online state, run against the in-process and the Redis implementation."""

from __future__ import annotations

import pytest

from shopflow.ingest.schema import Event
from shopflow.store.online import OnlineState, ReviewTotals

T = 1_700_000_000  # an hour boundary is at T - T % 3600


def e(
    i: int,
    user: str = "u",
    item: str = "a",
    dt: float = 0.0,
    type_: str = "view",
    session: str | None = None,
) -> Event:
    return Event(
        event_id=f"e{i}",
        type=type_,
        user_id=user,
        item_id=item,
        timestamp=T + dt,
        session_id=session,
    )


def test_recent_sequence_is_bounded_and_time_ordered(online_state: OnlineState) -> None:
    # max_sequence is 5 in the fixture; events arrive out of order.
    online_state.record([e(i, item=f"i{i}", dt=i * 10) for i in (3, 1, 2, 0, 6, 5, 4)])
    recent = online_state.recent("u")
    assert [r.item_id for r in recent] == ["i2", "i3", "i4", "i5", "i6"]
    assert [r.item_id for r in online_state.recent("u", 2)] == ["i5", "i6"]
    assert online_state.recent("u", 0) == []
    assert online_state.recent("nobody") == []
    assert recent[-1].ts == T + 60 and recent[-1].type == "view"


def test_session_splits_on_idle_gap_and_session_id(online_state: OnlineState) -> None:
    # timeout is 600 s in the fixture
    online_state.record(
        [
            e(1, item="a", dt=0),
            e(2, item="b", dt=100),
            e(3, item="c", dt=2000),
            e(4, item="d", dt=2100, session="s2"),
            e(5, item="f", dt=2200, session="s2"),
        ]
    )
    assert [r.item_id for r in online_state.session("u")] == ["c", "d", "f"]
    online_state.record([e(6, item="g", dt=2300, session="s3")])
    assert [r.item_id for r in online_state.session("u")] == ["g"]


def test_item_counters_by_type(online_state: OnlineState) -> None:
    online_state.record(
        [
            e(1, item="a"),
            e(2, item="a", user="v"),
            e(3, item="a", type_="purchase"),
            e(4, item="b", type_="add_to_cart"),
        ]
    )
    assert online_state.item_counts("a") == {"view": 2, "purchase": 1}
    assert online_state.item_counts("b") == {"add_to_cart": 1}
    assert online_state.item_counts("zzz") == {}


def test_trending_weights_and_window(online_state: OnlineState) -> None:
    hour = 3600
    online_state.record(
        [
            e(1, item="old", dt=-10 * hour, type_="purchase"),  # outside a 2-bucket window
            e(2, item="a", dt=0),
            e(3, item="a", dt=5, user="v"),
            e(4, item="b", dt=10, type_="purchase"),
            e(5, item="c", dt=20, type_="impression" if False else "view"),
        ]
    )
    # weights: view 1, purchase 5
    assert online_state.trending(n=10, window_buckets=2) == [("b", 5.0), ("a", 2.0), ("c", 1.0)]
    assert online_state.trending(n=1, window_buckets=2) == [("b", 5.0)]
    assert ("old", 5.0) in online_state.trending(n=10, window_buckets=24)


def test_old_trending_buckets_are_dropped(online_state: OnlineState) -> None:
    hour = 3600
    online_state.record([e(i, item=f"x{i}", dt=i * hour) for i in range(8)])  # 4 buckets kept
    items = {name for name, _ in online_state.trending(n=100, window_buckets=100)}
    assert items == {"x4", "x5", "x6", "x7"}


def test_forget_user_erases_sequence_only(online_state: OnlineState) -> None:
    online_state.record([e(1, user="u"), e(2, user="w")])
    online_state.forget_user("u")
    assert online_state.recent("u") == []
    assert [r.event_id for r in online_state.recent("w")] == ["e2"]
    assert online_state.item_counts("a") == {"view": 2}  # aggregates hold no personal data


def test_review_totals_per_item_and_overall(online_state: OnlineState) -> None:
    assert online_state.review_totals(["a"]) == [ReviewTotals()]
    assert online_state.review_overall() == ReviewTotals()
    online_state.add_reviews([("a", 0.8, 5.0), ("a", -0.5, None), ("b", 0.02, 3.0)])
    a, b, none = online_state.review_totals(["a", "b", "c"])
    assert (a.count, a.positive, a.rated) == (2, 1, 1)
    assert a.score_sum == pytest.approx(0.3) and a.stars_sum == pytest.approx(5.0)
    assert (b.count, b.positive, b.rated, b.stars_sum) == (1, 0, 1, 3.0)  # 0.02: not positive
    assert none == ReviewTotals()
    overall = online_state.review_overall()
    assert (overall.count, overall.positive, overall.rated) == (3, 1, 2)
    assert overall.score_sum == pytest.approx(0.32) and overall.stars_sum == pytest.approx(8.0)
    online_state.clear()
    assert online_state.review_overall() == ReviewTotals()
