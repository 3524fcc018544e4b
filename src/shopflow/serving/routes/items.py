"""The catalogue: ``/v1/items`` (batch upsert, paged list) and ``/v1/items/{item_id}``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from fastapi.responses import JSONResponse

from shopflow.errors import NotFound
from shopflow.serving.deps import IngestDep, StoreDep
from shopflow.serving.ingest_service import unwrap_batch
from shopflow.serving.schemas import (
    ITEM_EXAMPLE,
    DeletedItem,
    ErrorBody,
    ItemBatchResponse,
    ItemHistory,
    ItemOut,
    ItemPage,
    ItemWriteResponse,
    PricePoint,
)
from shopflow.store.store import Store

router = APIRouter(prefix="/v1/items", tags=["items"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
MAX_PAGE = 1000

ItemBody = Annotated[
    Any,
    Body(
        description="An item; `item_id` may be left out (the path names it) or must match it.",
        examples=[ITEM_EXAMPLE],
    ),
]
ItemsBody = Annotated[
    Any,
    Body(
        description='A JSON array of items (each with `item_id`), or `{"items": [...]}`.',
        examples=[[{"item_id": "sku-7", **ITEM_EXAMPLE}]],
    ),
]


def _existing(store: Store, item_id: str) -> Any:
    item = store.catalogue.get(item_id)
    if item is None:
        raise NotFound(
            f"item {item_id!r} is not in the catalogue; add it with PUT /v1/items/{{id}}"
        )
    return item


@router.post(
    "",
    response_model=ItemBatchResponse,
    summary="Insert or update a batch of items",
    description="Valid items are upserted in one transaction when others are rejected; 422 when "
    "every item was rejected; 413 when the batch is over `ingest.max_batch_size`.",
    responses={**ERRORS, 413: {"model": ErrorBody}, 422: {"model": ItemBatchResponse}},
)
def post_items(payload: ItemsBody, ingest: IngestDep) -> Any:
    body = ItemBatchResponse.build(ingest.upsert_items(unwrap_batch(payload, "items")))
    if body.detail is not None:
        return JSONResponse(body.model_dump(mode="json"), status_code=422)
    return body


@router.get("", response_model=ItemPage, summary="List items, ordered by id")
def list_items(
    store: StoreDep,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Items to return.")] = 100,
) -> ItemPage:
    page = store.catalogue.page(offset, limit)
    return ItemPage(
        total=store.catalogue.count(),
        offset=offset,
        limit=limit,
        items=[ItemOut.build(i) for i in page],
    )


@router.put(
    "/{item_id}",
    response_model=ItemWriteResponse,
    summary="Create or replace one item",
    description="201 when the item is new, 200 when it was updated or unchanged.",
    responses={**ERRORS, 201: {"model": ItemWriteResponse}},
)
def put_item(item_id: str, payload: ItemBody, ingest: IngestDep, response: Response) -> Any:
    item, result = ingest.put_item(item_id, payload)
    outcome = "inserted" if result.inserted else "updated" if result.updated else "unchanged"
    if result.inserted:
        response.status_code = 201
    return ItemWriteResponse(result=outcome, item=ItemOut.build(item))


@router.get("/{item_id}", response_model=ItemOut, summary="One item", responses=ERRORS)
def get_item(item_id: str, store: StoreDep) -> ItemOut:
    return ItemOut.build(_existing(store, item_id))


@router.delete("/{item_id}", response_model=DeletedItem, summary="Remove an item", responses=ERRORS)
def delete_item(item_id: str, store: StoreDep) -> DeletedItem:
    _existing(store, item_id)
    return DeletedItem(item_id=item_id, deleted=store.catalogue.delete(item_id))


@router.get(
    "/{item_id}/history",
    response_model=ItemHistory,
    summary="Price and stock over time, oldest first",
    responses=ERRORS,
)
def item_history(item_id: str, store: StoreDep) -> ItemHistory:
    _existing(store, item_id)
    points = [PricePoint(**h) for h in store.catalogue.history(item_id)]
    return ItemHistory(item_id=item_id, history=points)
