"""Recommendations for every scenario (DESIGN.md §5); thin wrappers around ``RecommendService``.

Every answer is :class:`~shopflow.serving.schemas.RecommendationsOut`: ``recommendation_id``,
``model_version``, ``strategy`` and ``items`` with ``item_id``, ``score`` and ``reasons``. Filters
(``category``, ``brand``, ``min_price``, ``max_price``, ``in_stock``, ``exclude``) and paging
(``n``, ``offset``) work on every list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from shopflow.errors import ValidationFailed
from shopflow.ranking.rules import Filters
from shopflow.serving.deps import RecommendDep
from shopflow.serving.schemas import CartRequest, ErrorBody, RecommendationsOut
from shopflow.serving.state import Recommendation

router = APIRouter(prefix="/v1", tags=["recommendations"])
ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
MAX_N = 100
MAX_OFFSET = 1_000
USER_SCENARIOS = ("home", "new_arrivals", "trending")
ELSEWHERE = {
    "similar": "GET /v1/items/{item_id}/similar",
    "complementary": "GET /v1/items/{item_id}/complementary",
    "cart": "POST /v1/recommendations/cart",
    "search": "GET /v1/search?q=...",
}

N = Annotated[int, Query(ge=1, le=MAX_N, description=f"Items to return (1..{MAX_N}).")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip (paging).")]
UserQ = Annotated[str | None, Query(min_length=1, description="The shopper, for personalisation.")]


async def get_filters(  # async: no thread-pool hop for parsing
    category: Annotated[str | None, Query(description="Any level of the category path.")] = None,
    brand: Annotated[str | None, Query(description="Brand, case-insensitive.")] = None,
    min_price: Annotated[float | None, Query(ge=0)] = None,
    max_price: Annotated[float | None, Query(ge=0)] = None,
    in_stock: Annotated[bool, Query(description="Leave out sold-out items.")] = True,
    exclude: Annotated[
        list[str] | None,
        Query(description="Item ids to leave out: repeat the parameter or separate with commas."),
    ] = None,
) -> Filters:
    ids = frozenset(x.strip() for e in exclude or [] for x in e.split(",") if x.strip())
    return Filters(category or None, brand or None, min_price, max_price, in_stock, ids)


FiltersDep = Annotated[Filters, Depends(get_filters)]


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
)
async def user_recommendations(
    request: Request,
    user_id: str,
    service: RecommendDep,
    filters: FiltersDep,
    scenario: Annotated[str, Query(description="home, new_arrivals or trending.")] = "home",
    n: N = 20,
    offset: Offset = 0,
) -> Response:
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
)
async def similar(
    request: Request,
    item_id: str,
    service: RecommendDep,
    filters: FiltersDep,
    user_id: UserQ = None,
    n: N = 20,
    offset: Offset = 0,
) -> Response:
    return await respond(request, service.similar, item_id, n, offset, filters, user_id)


@router.get(
    "/items/{item_id}/complementary",
    response_model=RecommendationsOut,
    summary="Items bought together with this one",
    responses=ERRORS,
)
async def complementary(
    request: Request,
    item_id: str,
    service: RecommendDep,
    filters: FiltersDep,
    user_id: UserQ = None,
    n: N = 20,
    offset: Offset = 0,
) -> Response:
    return await respond(request, service.complementary, item_id, n, offset, filters, user_id)


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
)
async def search(
    request: Request,
    service: RecommendDep,
    filters: FiltersDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="The query.")],
    user_id: UserQ = None,
    n: N = 20,
    offset: Offset = 0,
) -> Response:
    return await respond(request, service.search, q, user_id, n, offset, filters, slow=True)


@router.get(
    "/trending",
    response_model=RecommendationsOut,
    summary="Trending items, overall or in one category",
    responses=ERRORS,
)
async def trending(
    request: Request,
    service: RecommendDep,
    filters: FiltersDep,
    user_id: UserQ = None,
    n: N = 20,
    offset: Offset = 0,
) -> Response:
    return await respond(request, service.trending, None, user_id, n, offset, filters)


@router.get(
    "/new-arrivals",
    response_model=RecommendationsOut,
    summary="Recent items, for a user when `user_id` is given",
    responses=ERRORS,
)
async def new_arrivals(
    request: Request,
    service: RecommendDep,
    filters: FiltersDep,
    user_id: UserQ = None,
    n: N = 20,
    offset: Offset = 0,
) -> Response:
    return await respond(request, service.new_arrivals, user_id, n, offset, filters)
