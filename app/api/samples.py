"""/samples: the built-in sample images a page can run without an upload."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from ..schemas import SampleList
from ..serialize import OrjsonResponse

__all__ = ["router"]

router = APIRouter(prefix="/samples", tags=["samples"])


@router.get("", response_model=SampleList)
def list_samples(
    request: Request,
    dataset: Annotated[
        str | None, Query(description="Only this dataset, e.g. cifar10 or mnist")
    ] = None,
) -> Response:
    """The sample images, each with its dataset, true label and URL."""
    return OrjsonResponse({"samples": request.app.state.samples.listing(dataset)})
