"""Operations on the running service: swap the model bundle, see which one is in force, and the
impression counts per strategy."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from shopflow.errors import NotFound, ShopflowError
from shopflow.serving.deps import RecommendDep
from shopflow.serving.schemas import ErrorBody, ReloadOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])


@router.post(
    "/reload",
    response_model=ReloadOut,
    summary="Load the current model bundle (or a given version) and swap it in",
    description="Requests in flight finish on the old bundle; no request fails during the swap. "
    "Without `version`, loads the bundle the `CURRENT` pointer names (the service also does this "
    "on its own a few seconds after a new bundle is published). 404 for an unknown version, 409 "
    "when the bundle cannot be loaded (the old one stays in force).",
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
def reload(
    service: RecommendDep,
    version: Annotated[str | None, Query(description="A bundle version to load.")] = None,
) -> Any:
    path = None
    if version is not None:
        if version not in service.bundles.versions():
            raise NotFound(f"no bundle {version!r}; GET /v1/admin/bundle lists the versions")
        path = service.bundles.root / version
    try:
        return ReloadOut(**service.reload(path))
    except NotFound:
        raise
    except ShopflowError as exc:
        raise HTTPException(
            409, f"{exc}; still serving {service.model_version or 'no bundle'}"
        ) from None


@router.get("/bundle", summary="The model bundle in force and the ones on disk")
def bundle(service: RecommendDep) -> dict[str, Any]:
    return {
        **service.state.describe(),
        "current_pointer": service.bundles.current_version(),
        "available_versions": service.bundles.versions(),
        "reloads": service.reloads,
    }


@router.get("/impressions", summary="Impressions and attributed events per strategy")
def impressions(service: RecommendDep) -> dict[str, Any]:
    return {"strategies": service.impressions.stats()}
