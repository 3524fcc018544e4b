"""``POST /v1/events``: a batch of behaviour events in, counts and reasons out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response

from shopflow.serving.deps import IngestDep
from shopflow.serving.ingest_service import unwrap_batch
from shopflow.serving.schemas import EVENT_EXAMPLE, ErrorBody, IngestResponse

router = APIRouter(prefix="/v1", tags=["events"])

EventsBody = Annotated[
    Any,
    Body(
        description=(
            'A JSON array of events, or an object `{"events": [...]}`. Each event: `event_id`, '
            "`type` (view, click, add_to_cart, remove_from_cart, purchase, search, favorite, "
            "rating, review, impression), `user_id`, `timestamp` (ISO 8601 or unix seconds), and "
            "what the type needs (`item_id`, `query`, `item_ids`, `value`)."
        ),
        examples=[[EVENT_EXAMPLE]],
    ),
]


@router.post(
    "/events",
    response_model=IngestResponse,
    summary="Ingest a batch of events",
    description=(
        "Validates each event, appends the valid ones to the event log (answering only after the "
        "commit), then updates the online state. Valid events are kept when others are rejected; "
        "an `event_id` already stored counts as a duplicate and is not written again. "
        "200 when anything was accepted or was a duplicate; 422 with the same body when every "
        "event was rejected; 413 when the batch is over `ingest.max_batch_size`; 400 for "
        "malformed JSON or a body that is not a batch."
    ),
    responses={
        400: {"model": ErrorBody},
        413: {"model": ErrorBody},
        422: {"model": IngestResponse},
    },
)
def post_events(payload: EventsBody, ingest: IngestDep) -> Any:
    report = ingest.ingest_events(unwrap_batch(payload, "events"))
    body = IngestResponse.build(report)
    # serialised here, once (the response model documents it; FastAPI would validate it again)
    status = 422 if body.detail is not None else 200
    return Response(body.model_dump_json(), status_code=status, media_type="application/json")
