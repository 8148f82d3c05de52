"""The JSON API, version 1: one router per resource under /api/v1."""

from fastapi import APIRouter

from . import model_upload, models, runs, samples, server

__all__ = ["router"]

router = APIRouter(prefix="/api/v1")
for _module in (models, model_upload, runs, samples, server):
    router.include_router(_module.router)
