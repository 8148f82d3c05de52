"""Server facts: health and load, and the colour maps the heatmaps use."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import Response

from ..deps import PoolDep, RegistryDep, RunsDep
from ..heatmap import COLORMAPS
from ..redis_link import StoreUnavailable
from ..schemas import Colormaps, Health
from ..serialize import OrjsonResponse

__all__ = ["router"]

router = APIRouter(tags=["server"])


def _shared_store(request: Request) -> str:
    link = request.app.state.redis
    if link is None:
        return "none"
    try:
        link.call(lambda r: r.ping())
    except StoreUnavailable:
        return "unavailable"
    return "ok"


@router.get("/health", response_model=Health)
def health(request: Request, registry: RegistryDep, runs: RunsDep, pool: PoolDep) -> Response:
    """Models loaded, runs kept and their bytes, jobs running or queued, which process
    answered, and whether the shared store (Redis, when configured) answers. Always 200
    while the process serves: a balancer may still send it what needs no Redis."""
    return OrjsonResponse(
        {
            "status": "ok",
            "models_loaded": [m for m in registry.ids if registry.is_loaded(m)],
            "runs": len(runs),
            "run_bytes": runs.nbytes,
            "run_cache_bytes": runs.max_bytes,
            "evictions": runs.evictions,
            "jobs": pool.admitted,
            "job_capacity": pool.capacity,
            "process": os.getpid(),
            "shared_store": _shared_store(request),
        }
    )


@router.get("/colormaps", response_model=Colormaps)
def colormaps() -> Response:
    """The stops of each colour map (evenly spaced from 0 to 1; see docs/API.md)."""
    return OrjsonResponse(COLORMAPS)
