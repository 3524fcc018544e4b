"""API keys with scopes: who may call which route.

A key travels as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Keys are stored only as
their SHA-256 (:func:`shopflow.config.hash_api_key`, settings ``auth.keys``), compared in constant
time, and never logged (the key's *name* may appear in a 403 message). Scopes:

- ``ingest``: write events, items and users;
- ``read``: recommendations and reads of items and users;
- ``admin``: everything, plus user export and erasure, model reload and other admin routes.

Each router is included with a :data:`ScopeRule` (``app.ROUTERS``): a fixed scope, :func:`by_method`
for routers that mix reads and writes, or ``None`` for public routes (``/healthz``, ``/readyz``,
``/metrics``). Answers: 401 without a key or with an unknown one, 403 with a key that lacks the
scope, each with a JSON ``detail`` that says what is needed.

When auth is not active (``auth.enabled`` false, ``auth.demo``, or no key configured) every route is
open and the app logs a warning at startup; ``shopflow serve`` refuses to start that way unless
``--insecure-no-auth`` is given.

Example
-------
>>> from shopflow.config import ApiKeySpec, hash_api_key
>>> ring = KeyRing([ApiKeySpec(name="shop", sha256=hash_api_key("k1"), scopes=["read"])])
>>> ring.authenticate("k1")
Principal(name='shop', scopes=frozenset({'read'}))
>>> ring.authenticate("k2") is None
True
>>> ring.authenticate("k1").allows("ingest")
False
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException

from shopflow.config import ApiKeySpec, AuthSettings, hash_api_key
from shopflow.errors import BackendUnavailable

log = logging.getLogger(__name__)

SCOPES = ("ingest", "read", "admin")
KEY_PREFIX = "sf_"
# A fixed scope, or a function of (HTTP method, route template) that returns one.
ScopeRule = str | Callable[[str, str], str]
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <API key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <API key>`")


@dataclass(frozen=True)
class Principal:
    """Who made a request: the key's name and its scopes (``admin`` implies every scope)."""

    name: str
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes


ANONYMOUS = Principal("anonymous (auth off)", frozenset({"admin"}))


def new_api_key() -> str:
    """A fresh random key (256 bits), e.g. ``sf_2Lw...``; store only :func:`hash_api_key` of it."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """The configured keys, checked in constant time.

    Parameters
    ----------
    keys
        Hashed keys with their scopes (``settings.auth.keys``).
    active
        False to let every request through as :data:`ANONYMOUS` (auth off).
    """

    def __init__(self, keys: Sequence[ApiKeySpec], active: bool = True) -> None:
        self.active = active
        self._keys = [
            (bytes.fromhex(k.sha256), Principal(k.name, frozenset(k.scopes))) for k in keys
        ]

    @classmethod
    def from_settings(cls, auth: AuthSettings) -> KeyRing:
        return cls(auth.keys, active=auth.active())

    def authenticate(self, presented: str) -> Principal | None:
        """The principal of ``presented``, or None when no configured key matches.

        Every stored hash is compared (``hmac.compare_digest``), so the time taken does not depend
        on which key matched or on how much of a hash did.
        """
        digest = bytes.fromhex(hash_api_key(presented))
        found = None
        for stored, principal in self._keys:
            if hmac.compare_digest(stored, digest):
                found = principal
        return found


def by_method(
    read: str = "read", write: str = "ingest", admin: Iterable[str] = ()
) -> Callable[[str, str], str]:
    """A rule for a router that mixes reads and writes.

    Parameters
    ----------
    read, write
        Scope of GET/HEAD/OPTIONS, and of every other method.
    admin
        ``"METHOD /route/template"`` entries that need ``admin`` instead, e.g.
        ``"GET /v1/users/{user_id}/export"``.

    >>> rule = by_method(admin=["DELETE /v1/users/{user_id}"])
    >>> rule("GET", "/v1/users/{user_id}"), rule("PUT", "/v1/users/{user_id}")
    ('read', 'ingest')
    >>> rule("DELETE", "/v1/users/{user_id}")
    'admin'
    """
    admin_routes = frozenset(admin)

    def rule(method: str, route: str) -> str:
        if f"{method} {route}" in admin_routes:
            return "admin"
        return read if method in READ_METHODS else write

    return rule


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})


def presented_key(bearer: HTTPAuthorizationCredentials | None, header: str | None) -> str | None:
    """The key a request carries: the bearer token, else the ``X-API-Key`` header."""
    if bearer is not None and bearer.credentials:
        return bearer.credentials
    return header or None


def require_scope(rule: ScopeRule) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency that lets a request through only with a key allowed by ``rule``.

    Use it when including a router: ``include_router(r, dependencies=[Depends(require_scope(
    "read"))])``. The keys come from the app's :class:`KeyRing` (``app.state.keyring``, set in the
    lifespan). The resolved :class:`Principal` is also put on ``request.state.principal``.
    """
    if isinstance(rule, str) and rule not in SCOPES:
        raise ValueError(f"unknown scope {rule!r}; use one of {', '.join(SCOPES)}")

    async def check(  # async: no thread-pool hop for a check that does no I/O
        request: Request,
        bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        header: Annotated[str | None, Depends(_header)],
    ) -> Principal:
        ring: KeyRing | None = getattr(request.app.state, "keyring", None)
        if ring is None:
            raise BackendUnavailable("the service is not started (or is shutting down); retry")
        if not ring.active:
            request.state.principal = ANONYMOUS
            return ANONYMOUS
        if isinstance(rule, str):
            scope = rule
        else:
            route = getattr(request.scope.get("route"), "path", "")
            scope = rule(request.method, route)
        how = "as `Authorization: Bearer <key>` or `X-API-Key: <key>`"
        key = presented_key(bearer, header)
        if key is None:
            raise _unauthorized(
                f"this endpoint needs an API key with the {scope!r} scope; send it {how}"
            )
        principal = ring.authenticate(key)
        if principal is None:
            raise _unauthorized(
                f"the API key is not valid (unknown or revoked); send a key with the {scope!r} "
                f"scope {how}"
            )
        if not principal.allows(scope):
            have = ", ".join(sorted(principal.scopes)) or "none"
            raise HTTPException(
                403,
                f"the API key {principal.name!r} has the scopes [{have}]; this endpoint needs "
                f"{scope!r} (or 'admin'): use a key with that scope",
            )
        request.state.principal = principal
        return principal

    return check
