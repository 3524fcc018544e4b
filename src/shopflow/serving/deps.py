"""What the routes depend on: one :class:`Services` per app, built in the lifespan.

Routes ask for the piece they need (``StoreDep``, ``IngestDep``, ...), never for globals. A later
dependency (API key scopes, the recommend service) is one more function and alias here. They are
``async``: FastAPI runs a plain ``def`` dependency in the thread pool, a hop that costs more than
these lookups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from shopflow.config import Settings
from shopflow.errors import BackendUnavailable
from shopflow.serving.ingest_service import IngestService
from shopflow.serving.recommend import RecommendService
from shopflow.store.online import OnlineState
from shopflow.store.store import Store


@dataclass
class Services:
    """Everything a request may use; on ``app.state.services`` between startup and shutdown."""

    settings: Settings
    store: Store
    online: OnlineState
    ingest: IngestService
    recommend: RecommendService | None = None


async def get_services(request: Request) -> Services:
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None:
        raise BackendUnavailable("the service is not started (or is shutting down); retry shortly")
    return services


async def get_settings(services: Annotated[Services, Depends(get_services)]) -> Settings:
    return services.settings


async def get_store(services: Annotated[Services, Depends(get_services)]) -> Store:
    return services.store


async def get_online_state(services: Annotated[Services, Depends(get_services)]) -> OnlineState:
    return services.online


async def get_ingest(services: Annotated[Services, Depends(get_services)]) -> IngestService:
    return services.ingest


async def get_recommend(request: Request) -> RecommendService:
    return recommend_of(request)


def recommend_of(request: Request) -> RecommendService:
    """The recommend service, read straight from the app state: the busiest routes call this
    instead of declaring ``RecommendDep``, one dependency fewer for FastAPI to solve per request.

    Raises
    ------
    BackendUnavailable
        Before startup and during shutdown (503).
    """
    services: Services | None = getattr(request.app.state, "services", None)
    if services is None or services.recommend is None:
        raise BackendUnavailable("the recommend service is not started; retry shortly")
    return services.recommend


ServicesDep = Annotated[Services, Depends(get_services)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
StoreDep = Annotated[Store, Depends(get_store)]
OnlineDep = Annotated[OnlineState, Depends(get_online_state)]
IngestDep = Annotated[IngestService, Depends(get_ingest)]
RecommendDep = Annotated[RecommendService, Depends(get_recommend)]
