"""Recommendations for every scenario (DESIGN.md §5); thin wrappers around ``RecommendService``.

Every answer is :class:`~shopflow.serving.schemas.RecommendationsOut`: ``recommendation_id``,
``model_version``, ``strategy`` and ``items`` with ``item_id``, ``score`` and ``reasons``. Filters
(``category``, ``brand``, ``min_price``, ``max_price``, ``in_stock``, ``exclude``) and paging
(``n``, ``offset``) work on every list.

The GET routes read their query with one validation of a pydantic model (``serving.listquery``)
instead of one FastAPI parameter each: these are the busiest routes, and solving ten parameters
cost a home request about a fifth of its CPU (docs/benchmarks.md). The models still document each
parameter in the OpenAPI document, and a bad value gets the same 422 message as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, Request, Response

from shopflow.errors import ValidationFailed
from shopflow.ranking.rules import Filters
from shopflow.serving.deps import RecommendDep, recommend_of
from shopflow.serving.listquery import (
    ForUserQuery,
    SearchQuery,
    UserFeedQuery,
    documented,
    read_query,
)
from shopflow.serving.schemas import CartRequest, ErrorBody, RecommendationsOut
from shopflow.serving.state import Recommendation

router = APIRouter(prefix="/v1", tags=["recommendations"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
USER_SCENARIOS = ("home", "new_arrivals", "trending")
ELSEWHERE = {
    "similar": "GET /v1/items/{item_id}/similar",
    "complementary": "GET /v1/items/{item_id}/complementary",
    "cart": "POST /v1/recommendations/cart",
    "search": "GET /v1/search?q=...",
}


def answer(rec: Recommendation) -> Response:
    """The answer as JSON, serialised once (the response model documents it)."""
    return Response(orjson.dumps(rec.as_dict()), media_type="application/json")


async def respond(
    request: Request, scenario: Callable[..., Recommendation], *args: Any, slow: bool = False
) -> Response:
    """``answer(scenario(*args))``, computed where it costs the least CPU.

    A recommendation is a millisecond or two of CPU in numpy. Handing it to a thread and back
    costs about as much again in one worker (the event loop and the thread take turns at the GIL),
    so by default (``RecommendConfig.compute_threads`` 0) it runs on the event loop itself. With
    ``compute_threads`` > 0 that many threads at a time compute (``app.state.compute_limiter``,
    set in the lifespan) and the loop stays free. ``slow`` work (search, which may build its index
    first) always goes to a thread.
    """
    limiter = getattr(request.app.state, "compute_limiter", None)
    if limiter is None and not slow:
        return answer(scenario(*args))
    return await anyio.to_thread.run_sync(lambda: answer(scenario(*args)), limiter=limiter)


@router.get(
    "/users/{user_id}/recommendations",
    response_model=RecommendationsOut,
    summary="Recommendations for a user: home feed, new arrivals or trending",
    description="`scenario=home` (default) is the personal feed from the user's latest behaviour; "
    "a user with no history gets trending items (`strategy` home:trending), one with only a "
    "current session gets session-based items (home:session), one without personalisation "
    "consent gets non-personal lists (home:non_personal). An unknown user is a cold user, not "
    "an error.",
    responses=ERRORS,
    openapi_extra=documented(UserFeedQuery),
)
async def user_recommendations(request: Request, user_id: str) -> Response:
    service, q = recommend_of(request), read_query(UserFeedQuery, request)
    scenario, n, offset, filters = q.scenario, q.n, q.offset, q.filters()
    if scenario == "home":
        return await respond(request, service.home, user_id, n, offset, filters)
    if scenario in ("new_arrivals", "new-arrivals"):
        return await respond(request, service.new_arrivals, user_id, n, offset, filters)
    if scenario == "trending":
        return await respond(request, service.trending, None, user_id, n, offset, filters)
    hint = f"; use {ELSEWHERE[scenario]}" if scenario in ELSEWHERE else ""
    raise ValidationFailed(
        [("scenario", f"{scenario!r} is not one of {', '.join(USER_SCENARIOS)}{hint}")]
    )


@router.get(
    "/items/{item_id}/similar",
    response_model=RecommendationsOut,
    summary="Items like this one (item page)",
    responses=ERRORS,
    openapi_extra=documented(ForUserQuery),
)
async def similar(request: Request, item_id: str) -> Response:
    service, q = recommend_of(request), read_query(ForUserQuery, request)
    return await respond(request, service.similar, item_id, q.n, q.offset, q.filters(), q.user_id)


@router.get(
    "/items/{item_id}/complementary",
    response_model=RecommendationsOut,
    summary="Items bought together with this one",
    responses=ERRORS,
    openapi_extra=documented(ForUserQuery),
)
async def complementary(request: Request, item_id: str) -> Response:
    service, q = recommend_of(request), read_query(ForUserQuery, request)
    args = (item_id, q.n, q.offset, q.filters(), q.user_id)
    return await respond(request, service.complementary, *args)


@router.post(
    "/recommendations/cart",
    response_model=RecommendationsOut,
    summary="What completes this cart",
    description="Body: `item_ids` in the cart, optional `user_id`, `n`, `offset` and filters.",
    responses={**ERRORS, 400: {"model": ErrorBody}},
)
async def cart(request: Request, body: CartRequest, service: RecommendDep) -> Response:
    filters = Filters(
        body.category,
        body.brand,
        body.min_price,
        body.max_price,
        body.in_stock,
        frozenset(body.exclude),
    )
    args = (body.item_ids, body.user_id, body.n, body.offset, filters)
    return await respond(request, service.cart, *args)


@router.get(
    "/search",
    response_model=RecommendationsOut,
    summary="Search the catalogue, personalised by the user's behaviour",
    description="First version: BM25 over title, brand and categories, plus dense similarity of "
    "the query to the item text vectors when the service has a query encoder, re-ranked by the "
    "user's history when `user_id` is given.",
    responses=ERRORS,
    openapi_extra=documented(SearchQuery),
)
async def search(request: Request) -> Response:
    service, q = recommend_of(request), read_query(SearchQuery, request)
    args = (q.q, q.user_id, q.n, q.offset, q.filters())
    return await respond(request, service.search, *args, slow=True)


@router.get(
    "/trending",
    response_model=RecommendationsOut,
    summary="Trending items, overall or in one category",
    responses=ERRORS,
    openapi_extra=documented(ForUserQuery),
)
async def trending(request: Request) -> Response:
    service, q = recommend_of(request), read_query(ForUserQuery, request)
    return await respond(request, service.trending, None, q.user_id, q.n, q.offset, q.filters())


@router.get(
    "/new-arrivals",
    response_model=RecommendationsOut,
    summary="Recent items, for a user when `user_id` is given",
    responses=ERRORS,
    openapi_extra=documented(ForUserQuery),
)
async def new_arrivals(request: Request) -> Response:
    service, q = recommend_of(request), read_query(ForUserQuery, request)
    return await respond(request, service.new_arrivals, q.user_id, q.n, q.offset, q.filters())
