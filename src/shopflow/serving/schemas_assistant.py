"""Request and response bodies of ``POST /v1/assistant`` (``serving/routes/assistant.py``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shopflow.serving.schemas import RecommendedItemOut
from shopflow.text.assistant import MAX_N

MAX_MESSAGE_CHARS = 2_000
MAX_CONVERSATION_TURNS = 100


class TurnIn(BaseModel):
    """One earlier turn of the conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=8_000)


class AssistantRequest(BaseModel):
    """``POST /v1/assistant``: the shopper's message and the conversation so far."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "message": "under 30 please",
                "conversation": [
                    {"role": "user", "content": "a birthday gift for my dad, he loves coffee"},
                    {"role": "assistant", "content": "Here are 5 gift ideas ..."},
                ],
                "user_id": "u0001",
                "n": 5,
            }
        },
    )

    message: str = Field(max_length=MAX_MESSAGE_CHARS, description="The shopper's new message.")
    conversation: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_CONVERSATION_TURNS,
        description="Earlier turns, oldest first; the user turns' constraints add up.",
    )
    user_id: str | None = Field(None, min_length=1, description="The shopper, for history.")
    n: int = Field(5, ge=1, le=MAX_N, description=f"Picks to return (1..{MAX_N}).")

    @field_validator("message")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the message is empty: say what you are looking for")
        return v


class ConstraintsOut(BaseModel):
    """Needs and constraints of the conversation so far (or of the last message alone)."""

    category: str | None
    brand: str | None
    min_price: float | None
    max_price: float | None
    attributes: dict[str, str] = Field(description='e.g. {"color": "grey", "size": "10"}')
    recipient: str | None = Field(description="father, mother, wife, child, friend, self, ...")
    occasion: str | None = Field(description="birthday, christmas, anniversary, ...")
    gift: bool
    keywords: list[str] = Field(description="Product words that matched no catalogue value.")


class FindingOut(BaseModel):
    name: str = Field(description="category, brand, budget, attribute, keywords, recipient, ...")
    value: Any
    text: str = Field(description="How it was applied, or why it could not be met.")
    nearest: dict[str, float | None] | None = Field(
        None, description="For an unmet budget: the bounds used instead (the nearest prices)."
    )


class AssistantItemOut(RecommendedItemOut):
    currency: str | None = None
    why: str = Field(description="One sentence from the item's data and its strongest reason.")


class AssistantOut(BaseModel):
    """The assistant's answer. Send `recommendation_id` back with the events it leads to."""

    engine: Literal["offline", "llm"] = Field(description="Which path wrote the reply.")
    fallback_reason: str | None = Field(
        description="Why the configured LLM was not used (timeout, error, refused reply)."
    )
    reply: str
    constraints: ConstraintsOut = Field(description="Accumulated over the conversation.")
    recognised: ConstraintsOut = Field(description="Read from the new message alone.")
    applied: list[FindingOut]
    unmet: list[FindingOut]
    recommendation_id: str
    scenario: str
    strategy: str
    model_version: str | None
    retrieval: list[str] = Field(description="Strategies of the recommend calls behind the picks.")
    items: list[AssistantItemOut]
