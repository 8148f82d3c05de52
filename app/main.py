"""Builds the FastAPI application: settings, shared services, routers, static files."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from fastapi_offline import FastAPIOffline

from . import api, live_pages, pages, playground_pages
from .api import live as live_api
from .api import playground as playground_api
from .config import Settings, get_settings
from .errors import install_error_handlers
from .imported import load_models_dir
from .models import ModelRegistry
from .redis_link import RedisLink
from .runs import RunService, RunStore, WorkerPool
from .samples import SampleLibrary
from .serialize import OrjsonResponse
from .shared_runs import RedisRunStore

__all__ = ["create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for ``settings`` (default: from the environment). The models listed in
    ``settings.preload`` are loaded here; the others on first use."""
    settings = settings or get_settings()
    registry = ModelRegistry(settings.models, settings.preload)
    if settings.models_dir is not None:
        load_models_dir(registry, settings.models_dir, settings.preload)
    pool = WorkerPool(settings.workers, settings.queue_limit, settings.retry_after)
    link = RedisLink(settings.redis_url, settings.redis_prefix) if settings.redis_url else None
    store = (
        RunStore(settings.run_cache_bytes, settings.run_ttl)
        if link is None
        else RedisRunStore(settings.run_cache_bytes, settings.run_ttl, link)
    )
    run_service = RunService(registry, store, pool, settings.max_pixels)
    if isinstance(store, RedisRunStore):
        store.recompute = run_service.recompute

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if link is not None:  # subscribe to the classes' events before the first request
            live_api.hub_of(app).ensure_sweeper()
        yield
        hub = getattr(app.state, "live", None)
        if hub is not None:
            await hub.close()
        pool.shutdown()
        if link is not None:
            link.close()

    # /docs and /redoc with Swagger UI and ReDoc served by the app itself: classrooms
    # are often offline, and FastAPI's default pages load them from a CDN.
    app = FastAPIOffline(
        title="convscope",
        version="1.0",
        summary="What a convolutional network does inside: activations, weights and the "
        "arithmetic of any cell, as JSON and PNG.",
        default_response_class=OrjsonResponse,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.registry = registry
    app.state.pool = pool
    app.state.runs = store
    app.state.samples = SampleLibrary(settings.static_dir / "samples")
    app.state.redis = link
    app.state.run_service = run_service
    app.state.templates = Jinja2Templates(directory=str(settings.templates_dir))

    install_error_handlers(app)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(playground_api.router)
    app.include_router(playground_pages.router)
    app.include_router(live_api.router, prefix="/api/v1")
    app.include_router(live_pages.router)
    app.mount("/static", StaticFiles(directory=settings.static_dir), name="static")
    return app
