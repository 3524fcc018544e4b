"""Shoppers: ``/v1/users/{user_id}`` record, recent events, export and erasure."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from shopflow.errors import NotFound
from shopflow.serving.deps import IngestDep, OnlineDep, StoreDep
from shopflow.serving.schemas import (
    USER_EXAMPLE,
    DeletedUser,
    ErrorBody,
    RecentEventOut,
    RemovedCounts,
    UserEvents,
    UserExport,
    UserOut,
    UserWriteResponse,
)
from shopflow.store.online import OnlineState
from shopflow.store.store import Store

router = APIRouter(prefix="/v1/users", tags=["users"])
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody},
    404: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
MAX_EVENTS = 1000

UserBody = Annotated[
    Any,
    Body(
        description="A user; `user_id` may be left out (the path names it) or must match it.",
        examples=[USER_EXAMPLE],
    ),
]


def recent_events(store: Store, online: OnlineState, user_id: str, limit: int) -> UserEvents:
    """The user's latest ``limit`` events: from the online state, or the event log when it is empty.

    Raises
    ------
    NotFound
        When neither holds an event and there is no user record.
    """
    live = online.recent(user_id, limit)
    if live:
        out = [RecentEventOut.from_online(r) for r in live]
        return UserEvents(user_id=user_id, source="online", events=out)
    stored = [RecentEventOut.from_event(e) for e in store.events.user_events(user_id, limit)]
    if not stored and store.users.get(user_id) is None:
        raise NotFound(f"user {user_id!r} has no events and no record")
    return UserEvents(user_id=user_id, source="store", events=stored)


@router.put(
    "/{user_id}",
    response_model=UserWriteResponse,
    summary="Create or replace a user",
    description="201 when the user is new, 200 when an existing record was replaced.",
    responses={**ERRORS, 201: {"model": UserWriteResponse}},
)
def put_user(user_id: str, payload: UserBody, ingest: IngestDep, response: Response) -> Any:
    user, created = ingest.put_user(user_id, payload)
    if created:
        response.status_code = 201
    stored = ingest.store.users.get(user.user_id) or user
    return UserWriteResponse(created=created, user=UserOut.build(stored))


@router.get("/{user_id}", response_model=UserOut, summary="A user record", responses=ERRORS)
def get_user(user_id: str, store: StoreDep) -> UserOut:
    user = store.users.get(user_id)
    if user is None:
        raise NotFound(f"user {user_id!r} has no record; create it with PUT /v1/users/{{id}}")
    return UserOut.build(user)


@router.delete(
    "/{user_id}",
    response_model=DeletedUser,
    summary="Erase everything held about a user",
    description="Removes the user's events from the log, the user record and the online state. "
    "Idempotent: erasing an unknown user answers 200 with zero counts.",
)
def delete_user(user_id: str, ingest: IngestDep) -> DeletedUser:
    return DeletedUser(user_id=user_id, removed=RemovedCounts(**ingest.forget_user(user_id)))


@router.get(
    "/{user_id}/export",
    response_model=UserExport,
    summary="Everything held about a user",
    description="The record, every event in the log and the online sequence; empty when nothing "
    "is held.",
)
def export_user(user_id: str, store: StoreDep, online: OnlineDep) -> UserExport:
    held = store.export_user(user_id)
    live = [RecentEventOut.from_online(r) for r in online.recent(user_id)]
    return UserExport(user_id=user_id, user=held["user"], events=held["events"], online=live)


@router.get(
    "/{user_id}/events",
    response_model=UserEvents,
    summary="A user's recent events, oldest first",
    responses=ERRORS,
)
def user_events(
    user_id: str,
    store: StoreDep,
    online: OnlineDep,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS, description="Most events to return.")] = 50,
) -> UserEvents:
    return recent_events(store, online, user_id, limit)
