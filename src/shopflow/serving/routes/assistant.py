"""The shopping assistant (``POST /v1/assistant``); a thin wrapper around ``text.assistant``.

One :class:`~shopflow.text.assistant.Assistant` per app, built on the first request from the
recommend service and the ``assistant`` settings, and kept on ``app.state``.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request, Response

from shopflow.serving.deps import RecommendDep, SettingsDep
from shopflow.serving.schemas import ErrorBody
from shopflow.serving.schemas_assistant import AssistantOut, AssistantRequest
from shopflow.text.assistant import Assistant

router = APIRouter(prefix="/v1", tags=["assistant"])
ERRORS: dict[int | str, dict[str, Any]] = {400: {"model": ErrorBody}, 422: {"model": ErrorBody}}


def get_assistant(request: Request, service: RecommendDep, settings: SettingsDep) -> Assistant:
    current: Assistant | None = getattr(request.app.state, "assistant", None)
    if current is None or current.service is not service:
        current = Assistant(service, settings.assistant)
        request.app.state.assistant = current
    return current


AssistantDep = Annotated[Assistant, Depends(get_assistant)]


@router.post(
    "/assistant",
    response_model=AssistantOut,
    summary="Shopping assistant: a message and the conversation so far → needs, picks, a reply",
    description="Reads the needs and constraints of the conversation (category, budget, brand, "
    "colour, size, recipient, occasion; later turns refine earlier ones), picks items with the "
    "recommend service (search and the user's history) that respect them, and explains the "
    "picks. `unmet` lists constraints nothing satisfies, with what is offered instead. Offline "
    "(template reply) by default; with `assistant.llm_url` set an LLM writes the reply, and any "
    "LLM failure falls back to the offline answer (`engine`, `fallback_reason`).",
    responses=ERRORS,
)
def assistant(body: AssistantRequest, bot: AssistantDep) -> Response:
    turns = [t.model_dump() for t in body.conversation]
    answer = bot.answer(body.message, turns, body.user_id, body.n)
    return Response(orjson.dumps(answer.as_dict()), media_type="application/json")
