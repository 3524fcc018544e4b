"""The query of the list routes (filters, paging, user, search words), validated in one pass.

Each list route reads its query string with :func:`read_query`: one ``model_validate`` of a pydantic
model rather than one FastAPI parameter per field, which is most of what a home request costs
besides the recommendation itself. :func:`documented` turns the same model into the route's OpenAPI
parameters, so ``/docs`` still lists each one with its type, bounds and description. A bad value is
a :class:`~shopflow.errors.ValidationFailed` (HTTP 422) whose message names the parameter in
pydantic's words, as FastAPI's own validation did:
``n: Input should be greater than or equal to 1``.

Example
-------
>>> from starlette.requests import Request
>>> req = Request({"type": "http", "query_string": b"n=5&exclude=a,b&exclude=c&brand=Acme"})
>>> q = read_query(ForUserQuery, req)
>>> q.n, q.offset, sorted(q.filters().exclude), q.filters().brand
(5, 0, ['a', 'b', 'c'], 'Acme')
>>> read_query(ForUserQuery, Request({"type": "http", "query_string": b"n=0"}))
Traceback (most recent call last):
...
shopflow.errors.ValidationFailed: n: Input should be greater than or equal to 1
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request

from shopflow.errors import ValidationFailed
from shopflow.ranking.rules import Filters

MAX_N = 100
MAX_OFFSET = 1_000
LISTS = frozenset({"exclude"})  # parameters that may repeat: every value is kept

Q = TypeVar("Q", bound="PageQuery")


class PageQuery(BaseModel):
    """Filters and paging, on every list route."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    category: str | None = Field(None, description="Any level of the category path.")
    brand: str | None = Field(None, description="Brand, case-insensitive.")
    min_price: float | None = Field(None, ge=0, description="Lowest price.")
    max_price: float | None = Field(None, ge=0, description="Highest price.")
    in_stock: bool = Field(True, description="Leave out sold-out items.")
    exclude: list[str] | None = Field(
        None,
        description="Item ids to leave out: repeat the parameter or separate with commas.",
    )
    n: int = Field(20, ge=1, le=MAX_N, description=f"Items to return (1..{MAX_N}).")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Items to skip (paging).")

    def filters(self) -> Filters:
        """The request filters (an empty string counts as not given)."""
        ids = frozenset(x.strip() for e in self.exclude or [] for x in e.split(",") if x.strip())
        return Filters(
            self.category or None,
            self.brand or None,
            self.min_price,
            self.max_price,
            self.in_stock,
            ids,
        )


class UserFeedQuery(PageQuery):
    """``GET /v1/users/{user_id}/recommendations``: which list, and the filters and paging."""

    scenario: str = Field("home", description="home, new_arrivals or trending.")


class ForUserQuery(PageQuery):
    """Item pages, trending and new arrivals: personalised when ``user_id`` is given."""

    user_id: str | None = Field(None, min_length=1, description="The shopper, for personalisation.")


class SearchQuery(ForUserQuery):
    """``GET /v1/search``."""

    q: str = Field(min_length=1, max_length=500, description="The query.")


def read_query(model: type[Q], request: Request) -> Q:
    """The request's query string as ``model`` (a repeated list parameter keeps every value; any
    other keeps its last, as FastAPI does).

    Raises
    ------
    ValidationFailed
        Naming each parameter that is missing or wrong, and why.
    """
    params = request.query_params
    raw: dict[str, Any] = dict(params)
    for name in LISTS & raw.keys():
        raw[name] = params.getlist(name)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [
            (".".join(str(p) for p in err["loc"]), err["msg"])
            for err in exc.errors(include_url=False)
        ]
        raise ValidationFailed(problems) from None


def documented(model: type[PageQuery]) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads ``model``: one query parameter per field."""
    schema = model.model_json_schema()
    required = set(schema.get("required", ()))
    params = []
    for name, prop in schema["properties"].items():
        prop = {k: v for k, v in prop.items() if k != "title"}
        description = prop.pop("description", None)
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": prop,
                **({"description": description} if description else {}),
            }
        )
    return {"parameters": params}
