"""Server facts: health and load, and the colour maps the heatmaps use."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from ..deps import PoolDep, RegistryDep, RunsDep
from ..heatmap import COLORMAPS
from ..schemas import Colormaps, Health
from ..serialize import OrjsonResponse

__all__ = ["router"]

router = APIRouter(tags=["server"])


@router.get("/health", response_model=Health)
def health(registry: RegistryDep, runs: RunsDep, pool: PoolDep) -> Response:
    """Models loaded, runs kept and their bytes, and jobs running or queued."""
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
        }
    )


@router.get("/colormaps", response_model=Colormaps)
def colormaps() -> Response:
    """The stops of each colour map (evenly spaced from 0 to 1; see docs/API.md)."""
    return OrjsonResponse(COLORMAPS)
