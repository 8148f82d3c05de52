"""Typed dependencies of the API handlers: settings and the app's shared services."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .config import Settings, get_settings
from .models import ModelRegistry
from .runs import RunService, RunStore, WorkerPool

__all__ = ["SettingsDep", "RegistryDep", "RunsDep", "RunServiceDep", "PoolDep"]


def get_registry(request: Request) -> ModelRegistry:
    return request.app.state.registry


def get_run_store(request: Request) -> RunStore:
    return request.app.state.runs


def get_run_service(request: Request) -> RunService:
    return request.app.state.run_service


def get_pool(request: Request) -> WorkerPool:
    return request.app.state.pool


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
RunsDep = Annotated[RunStore, Depends(get_run_store)]
RunServiceDep = Annotated[RunService, Depends(get_run_service)]
PoolDep = Annotated[WorkerPool, Depends(get_pool)]
